"""A moment typed on a form is read in the reader's time zone (Europe/Berlin here), through
HTTP on SQLite and PostgreSQL: a local time outside what a field holds is refused at its
field saying so (not "must be an ISO 8601 datetime with an offset"), one the clocks skip
(the change to summer time) is refused naming the time meant, one they repeat is the first,
and one in Berlin's local mean time (before 1893, +00:53:28) is stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import write_instance
from tests.support.cli import REPO
from tests.support.identity import bearer, issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

PACKS = REPO / "docs" / "examples" / "locales" / "packs"
PASSWORD = "correct horse battery"
DEALS = "/app/deals/deal"


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "i", db_url, ["deals"], [PACKS], timezone="Europe/Berlin")
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    return instance


@pytest.fixture
def ada(shop: Instance) -> Iterator[TestClient]:
    with signed_in(shop, "ada", PASSWORD) as client:
        yield client


def save(client: TestClient, signed_at: str) -> tuple[int, str]:
    form = client.get(f"{DEALS}/new")
    answer = client.post(
        f"{DEALS}/new",
        data={"csrf_token": csrf_of(form), "name": "Deal", "signed_at": signed_at},
        follow_redirects=False,
    )
    return answer.status_code, answer.headers.get("location") or answer.text


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("0001-01-01T00:54", "0001-01-01T00:00:32+00:00"),  # the earliest minute in Berlin
        ("1850-06-01T12:00", "1850-06-01T11:06:32+00:00"),  # local mean time, +00:53:28
        ("2026-10-25T02:30", "2026-10-25T00:30:00+00:00"),  # twice that night: the first
        ("9999-12-31T23:59", "9999-12-31T22:59:00+00:00"),
    ],
)
def test_a_local_time_is_stored_as_the_moment_it_is_in_berlin(
    shop: Instance, ada: TestClient, typed: str, stored: str
) -> None:
    status, location = save(ada, typed)
    assert status == 303, location
    record_id = location.split("/")[-1].split("?")[0]
    token = issue_token(shop.settings.database_url, "ada")
    answer = ada.get(f"/api/v1/deals/deal/{record_id}", headers=bearer(token))
    assert answer.json()["data"]["signed_at"] == stored
    assert f'type="datetime-local" value="{typed}"' in ada.get(f"{DEALS}/{record_id}").text


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            "0001-01-01T00:00",
            "&#39;0001-01-01T00:00&#39; in Europe/Berlin is before the earliest time a field "
            "can hold: from 0001-01-01 00:00 to 9999-12-31 23:59 UTC",
        ),
        (
            "0001-01-01T00:53",
            "&#39;0001-01-01T00:53&#39; in Europe/Berlin is before the earliest time",
        ),
        (
            "2026-03-29T02:30",
            "&#39;2026-03-29T02:30&#39; does not exist in Europe/Berlin: the clocks skip it "
            "(a change of offset, such as to summer time); did you mean 03:30?",
        ),
        ("2026-03-29T02:00", "did you mean 03:00?"),
    ],
)
def test_a_local_time_berlin_cannot_hold_is_refused_at_its_field(
    ada: TestClient, typed: str, message: str
) -> None:
    status, page = save(ada, typed)
    assert status == 422, page
    assert message in page
    assert 'id="f-signed_at-error"' in page
    assert "with an offset" not in page
    assert f'type="datetime-local" value="{typed}"' in page  # shown back as typed
    assert '<span class="count">(0)</span>' in ada.get(DEALS).text  # nothing was saved
