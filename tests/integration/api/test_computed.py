"""Stored computed fields, recomputed on every write (line items and aggregates over them
included), filterable and sortable like any column, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

QUOTE = """\
fields:
  name:        {type: string, required: true}
  probability: {type: integer, min: 0, max: 100, default: 50}
  lines:       {type: children, entity: quote_line}
  total:       {type: decimal, scale: 2, computed: "lines | sum(attribute='amount')"}
  weighted:    {type: decimal, scale: 2, computed: "total * probability / 100"}
  big:         {type: boolean, computed: "total >= 1000"}
  units:       {type: integer, computed: "lines | sum(attribute='quantity')"}
"""
LINE = """\
fields:
  product:  {type: string, required: true}
  quantity: {type: integer, required: true, min: 1}
  price:    {type: decimal, scale: 2, required: true}
  amount:   {type: decimal, scale: 2, computed: "quantity * price"}
"""
URL = "/api/v1/sales/quote"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    pack = tmp_path / "packs" / "sales"
    (pack / "entities").mkdir(parents=True)
    (pack / "module.yaml").write_text("name: sales\nversion: 1.0.0\n")
    (pack / "entities" / "quote.yaml").write_text(QUOTE)
    (pack / "entities" / "quote_line.yaml").write_text(LINE)
    instance: Instance = write_instance(
        tmp_path / "acme", db_url, ["sales"], [tmp_path / "packs"], reload_interval=0
    )
    instance.migrate()
    with instance.client() as client:
        yield client


def test_computed_fields_follow_every_write(client: TestClient) -> None:
    created = client.post(
        URL,
        json={
            "name": "Fleet",
            "lines": [
                {"product": "Truck", "quantity": 2, "price": "450.00"},
                {"product": "Tyre", "quantity": 8, "price": "12.345"},
            ],
        },
    )
    assert created.status_code == 422  # price has two decimals at most: nothing computed
    created = client.post(
        URL,
        json={
            "name": "Fleet",
            "lines": [
                {"product": "Truck", "quantity": 2, "price": "450.00"},
                {"product": "Tyre", "quantity": 8, "price": "12.35"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    quote = created.json()["data"]
    assert [line["amount"] for line in quote["lines"]] == ["900.00", "98.80"]
    assert (quote["total"], quote["weighted"], quote["big"], quote["units"]) == (
        "998.80",
        "499.40",
        False,
        10,
    )
    item = f"{URL}/{quote['id']}"

    # A change of another field recomputes from the stored lines.
    patched = client.patch(item, json={"probability": 33}).json()["data"]
    assert (patched["total"], patched["weighted"]) == ("998.80", "329.60")  # 329.604 rounded

    # Changing the lines recomputes the lines, then the aggregates.
    truck = quote["lines"][0]
    patched = client.patch(
        item,
        json={"lines": [{"id": truck["id"], "product": "Truck", "quantity": 3, "price": "450.00"}]},
    ).json()["data"]
    assert [line["amount"] for line in patched["lines"]] == ["1350.00"]
    assert (patched["total"], patched["big"], patched["units"]) == ("1350.00", True, 3)
    assert client.get(item).json()["data"]["total"] == "1350.00"

    # Stored, so lists filter and sort on them.
    client.post(
        URL, json={"name": "Small", "lines": [{"product": "Pen", "quantity": 1, "price": "2"}]}
    )
    big = client.get(URL, params={"big": "true"}).json()["data"]
    assert [q["name"] for q in big] == ["Fleet"]
    by_total = client.get(URL, params={"sort": "-total"}).json()["data"]
    assert [q["name"] for q in by_total] == ["Fleet", "Small"]
    above = client.get(URL, params={"total__gte": "100"}).json()["data"]
    assert [q["name"] for q in above] == ["Fleet"]


def test_empty_inputs_give_an_empty_result(client: TestClient) -> None:
    created = client.post(URL, json={"name": "Draft", "probability": None})
    assert created.status_code == 201, created.text
    draft = created.json()["data"]
    assert (draft["total"], draft["weighted"], draft["units"]) == ("0.00", None, 0)


def test_computed_fields_cannot_be_written(client: TestClient) -> None:
    response = client.post(URL, json={"name": "Sneaky", "total": "1.00"})
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "field": "total",
        "code": "read_only",
        "message": "is read-only",
    }
