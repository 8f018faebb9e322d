"""Dates and working time through the API, on SQLite and PostgreSQL: computed fields over a
pack's calendar (``calendars/support.yaml``, German holidays), counts too large refused
with a 422, and calendar problems reported at load with their file:line:col."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from engine import dates
from metadata import DefinitionError, load_project
from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

API = "/api/v1/service"
PACK = {
    "module.yaml": "name: service\nversion: 1.0.0\n",
    "calendars/support.yaml": """\
timezone: Europe/Berlin
working_days: [mon, tue, wed, thu, fri]
hours: "09:00-17:00"
holidays:
  country: DE
  dates: [2026-12-24]
""",
    "entities/ticket.yaml": """\
fields:
  title: {type: string, required: true}
  opened_at: {type: datetime, required: true}
  closed_at: {type: datetime}
  start: {type: date}
  extra_days: {type: integer}
  response_by: {type: datetime, computed: "add_business_hours(opened_at, 8, 'support')"}
  hours_open:
    type: decimal
    scale: 2
    computed: "business_hours_between(opened_at, closed_at, 'support')"
  renew_on: {type: date, computed: "add_months(start, 1)"}
  follow_up: {type: date, computed: "add_days(start, extra_days)"}
""",
}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with pack_instance(tmp_path, db_url, "service", PACK, timezone="Europe/Berlin").client() as c:
        yield c
    dates.use_timezone(None)  # the process's other tests: UTC, as without tessera.yaml


def post(api: TestClient, body: dict[str, Any]) -> Any:
    return api.post(f"{API}/ticket", json={"title": "Printer", **body})


def test_response_by_is_eight_working_hours_later(api: TestClient) -> None:
    # Wednesday 23 December 2026, 16:00 in Berlin: one hour that day, then the 24th (the
    # calendar's), Christmas (a German holiday) and the weekend are skipped
    response = post(
        api,
        {
            "opened_at": "2026-12-23T15:00:00Z",
            "closed_at": "2026-12-28T12:00:00Z",
            "start": "2026-01-31",
            "extra_days": -31,
        },
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["response_by"].startswith("2026-12-28T15:00:00")  # Monday 16:00 Berlin
    assert data["hours_open"] == "5.00"  # 1 on Wednesday, 4 on Monday (09:00-13:00)
    assert data["renew_on"] == "2026-02-28"
    assert data["follow_up"] == "2025-12-31"


@pytest.mark.parametrize("extra_days", [10**12, 3_000_000])
def test_a_count_too_large_is_a_422_not_a_hang(api: TestClient, extra_days: int) -> None:
    body = {"opened_at": "2026-03-06T15:00:00Z", "start": "2026-01-01", "extra_days": extra_days}
    response = post(api, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "add_days" in response.text


def test_calendar_problems_are_reported_at_load(tmp_path: Path) -> None:
    files = {
        **PACK,
        "calendars/support.yaml": """\
timezone: Europe/Berlinn
working_days: [mon, funday]
hours: "17:00-09:00"
holidays: {country: XX}
""",
    }
    for relative, text in files.items():
        path = tmp_path / "service" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as raised:
        load_project(["service"], [tmp_path])
    text = str(raised.value)
    assert "support.yaml:1:11: 'Europe/Berlinn' is not a time zone" in text
    assert "did you mean 'Europe/Berlin'" in text
    assert "support.yaml:2:21: 'funday' is not one of" in text
    assert "support.yaml:3:8: hours end before they start" in text
    assert "support.yaml:4:21: no holidays for 'XX'" in text


def test_the_instance_time_zone_is_checked(tmp_path: Path) -> None:
    from runtime.settings import Settings

    config = tmp_path / "tessera.yaml"
    config.write_text("timezone: Europe/Berlin\n", encoding="utf-8")
    assert Settings.load(config).instance_names()["timezone"] == "Europe/Berlin"
    config.write_text("timezone: Mars/Olympus\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match="'Mars/Olympus' is not a time zone"):
        Settings.load(config)


def test_a_calendar_an_expression_names_must_exist(tmp_path: Path) -> None:
    files = {
        **PACK,
        "entities/ticket.yaml": PACK["entities/ticket.yaml"].replace("'support'", "'suport'", 1),
        "rules/ticket.yaml": """\
- name: answered_in_time
  assert: "closed_at is none or business_hours_between(opened_at, closed_at, 'desk') < 40"
  message: Too slow
""",
    }
    for relative, text in files.items():
        path = tmp_path / "service" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    with pytest.raises(DefinitionError) as raised:
        load_project(["service"], [tmp_path])
    text = str(raised.value)
    assert "ticket.yaml:7:43: no calendar 'suport'" in text
    assert "did you mean 'support'?" in text
    assert "rules/ticket.yaml:2:11: no calendar 'desk'" in text


@pytest.mark.parametrize(
    ("opened_at", "status"),
    [("9999-12-31T23:59:59Z", 422), ("0001-01-01T00:00:00Z", 201), ("2026-03-29T01:30:00Z", 201)],
)
def test_moments_at_the_ends_of_the_calendar(api: TestClient, opened_at: str, status: int) -> None:
    response = post(api, {"opened_at": opened_at, "start": "2026-01-01", "extra_days": 0})
    assert response.status_code == status, response.text
    if status == 422:
        assert "add_business_hours" in response.text
