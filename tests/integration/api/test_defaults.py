"""Default expressions: a field's ``default`` with ``{{ }}`` is evaluated when a record is
created without the field, over the record as sent (references traversed), then
converted to the field's type; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\n",
    "entities/account.yaml": """\
title: name
fields:
  name:     {type: string, required: true, unique: true}
  currency: {type: string, default: EUR}
""",
    "entities/deal.yaml": """\
title: name
fields:
  name:       {type: string, required: true}
  account:    {type: reference, to: account, required: true}
  currency:   {type: string, max_length: 3, default: "{{ account.currency }}"}
  opened_on:  {type: date, default: "{{ today() }}"}
  amount:     {type: decimal, scale: 2}
  commission: {type: decimal, scale: 2, default: "{{ (amount or 0) / 10 }}"}
  summary:    {type: string, default: "{{ name }} for {{ account.name }}"}
  weighted:   {type: decimal, scale: 2, computed: "commission * 2"}
""",
}
URL = "/api/v1/crm"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    pack = tmp_path / "packs" / "crm"
    for relative, text in FILES.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text)
    instance: Instance = write_instance(
        tmp_path / "acme", db_url, ["crm"], [tmp_path / "packs"], reload_interval=0
    )
    instance.migrate()
    with instance.client() as client:
        yield client


def create(client: TestClient, entity: str, **values: Any) -> dict[str, Any]:
    response = client.post(f"{URL}/{entity}", json=values)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["data"]
    return record


def test_defaults_are_evaluated_when_the_field_is_not_sent(client: TestClient) -> None:
    acme = create(client, "account", name="Acme", currency="CHF")
    deal = create(client, "deal", name="Fleet", account=acme["id"], amount="250.00")
    today = dt.datetime.now(dt.UTC).date()
    assert deal["currency"] == "CHF"
    assert deal["opened_on"] == today.isoformat()
    assert deal["commission"] == "25.00"
    assert deal["summary"] == "Fleet for Acme"
    assert deal["weighted"] == "50.00"  # computed fields see the defaults


def test_a_value_sent_wins_and_updates_never_apply_defaults(client: TestClient) -> None:
    acme = create(client, "account", name="Acme")
    deal = create(
        client, "deal", name="Boats", account=acme["id"], currency="USD", opened_on="2026-01-02"
    )
    assert (deal["currency"], deal["opened_on"]) == ("USD", "2026-01-02")
    cleared = client.patch(f"{URL}/deal/{deal['id']}", json={"currency": None})
    assert cleared.json()["data"]["currency"] is None


def test_a_default_that_does_not_fit_the_field_is_a_422(client: TestClient) -> None:
    acme = create(client, "account", name="Acme", currency="EURO")
    refused = client.post(f"{URL}/deal", json={"name": "Too long", "account": acme["id"]})
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert (error["field"], error["code"]) == ("currency", "max_length")
    assert error["message"].startswith("default ")
