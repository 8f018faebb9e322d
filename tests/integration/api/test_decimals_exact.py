"""Decimals are exact on both databases (issue 17, item 6): 18 significant digits round-trip,
filters and sorts compare them exactly, aggregate and rollup sums of many 0.1s are exact,
and so is a balance a posting moves. On SQLite a decimal is a whole number of its smallest
unit in an integer (``engine.fieldtypes.numeric.scaled_integer``); a double would keep 15
digits and add 0.1 ten times to 0.9999999999999999."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.ledger_packs import API, FILES
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PACK = {
    **FILES,
    "entities/fund.yaml": """\
fields:
  code:  {type: string, unique: true, required: true}
  total: {type: decimal, precision: 18, scale: 2}
""",
    "entities/gift.yaml": """\
fields:
  fund:   {type: reference, to: fund, required: true}
  amount: {type: decimal, precision: 18, scale: 2, required: true}
  rate:   {type: decimal, precision: 18, scale: 9}
  fee:    {type: decimal, precision: 10, scale: 2, default: 1.5}
  huge:   {type: decimal, precision: 24, scale: 2}
rollups:
  - {to: fund.total, via: fund, sum: amount}
""",
}
GIFTS = f"{API}/gift"
EIGHTEEN = ["9999999999999999.99", "-9999999999999999.99", "1234567890123456.78", "0.01"]


@pytest.fixture
def money(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "stock", PACK)


@pytest.fixture
def api(money: Instance) -> Iterator[TestClient]:
    with money.client() as client:
        yield client
    assert_no_drift(money.settings)


def made(api: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def gift(api: TestClient, fund: str, amount: str, **more: Any) -> dict[str, Any]:
    return made(api, "gift", {"fund": fund, "amount": amount, **more})


def test_eighteen_digits_round_trip(api: TestClient) -> None:
    fund = made(api, "fund", {"code": "F"})["id"]
    for text in EIGHTEEN:
        created = gift(api, fund, text, rate="123456789.123456789")
        assert created["amount"] == text
        assert created["rate"] == "123456789.123456789"
        assert created["fee"] == "1.50"  # the field's default
        read = api.get(f"{GIFTS}/{created['id']}").json()["data"]
        assert (read["amount"], read["rate"]) == (text, "123456789.123456789")
    refused = api.post(GIFTS, json={"fund": fund, "amount": "1.001"})
    assert refused.status_code == 422, refused.text


def test_filters_and_sorts_tell_the_last_digit_apart(api: TestClient) -> None:
    fund = made(api, "fund", {"code": "F"})["id"]
    for text in ("1234567890123456.77", "1234567890123456.78", "1234567890123456.79"):
        gift(api, fund, text)
    above = api.get(GIFTS, params={"amount__gt": "1234567890123456.77", "sort": "amount"})
    assert [g["amount"] for g in above.json()["data"]] == [
        "1234567890123456.78",
        "1234567890123456.79",
    ]
    exact = api.get(GIFTS, params={"amount": "1234567890123456.78"}).json()["data"]
    assert [g["amount"] for g in exact] == ["1234567890123456.78"]
    down = api.get(GIFTS, params={"sort": "-amount", "limit": 1}).json()["data"]
    assert down[0]["amount"] == "1234567890123456.79"


def test_sums_of_many_tenths_are_exact(api: TestClient) -> None:
    fund = made(api, "fund", {"code": "F"})["id"]
    other = made(api, "fund", {"code": "G"})["id"]
    for _ in range(100):
        gift(api, fund, "0.10")
    gift(api, other, "4999999999999999.99")
    gift(api, other, "0.01")
    totals = api.get(f"{API}/fund", params={"sort": "code"}).json()["data"]
    assert [f["total"] for f in totals] == ["10.00", "5000000000000000.00"]  # rollups
    grouped = api.get(
        f"{GIFTS}/_aggregate", params={"group_by": "fund", "measures": "amount__sum,amount__avg"}
    )
    assert grouped.status_code == 200, grouped.text
    by_fund = {row["fund"]: row for row in grouped.json()["data"]}
    assert by_fund[fund]["amount__sum"] == "10.00"
    assert by_fund[fund]["amount__avg"] == "0.10"
    assert by_fund[other]["amount__sum"] == "5000000000000000.00"
    assert by_fund[other]["amount__avg"] == "2500000000000000.00"
    tenths = api.get(f"{API}/fund", params={"total__gt": "9.99", "total__lt": "10.01"})
    assert [f["code"] for f in tenths.json()["data"]] == ["F"]


def test_a_posted_balance_is_exact(api: TestClient) -> None:
    item = made(api, "item", {"sku": "S"})["id"]
    store = made(api, "warehouse", {"name": "W"})["id"]
    lines = [{"item": item, "warehouse": store, "quantity": "0.100"} for _ in range(10)]
    lines.append({"item": item, "warehouse": store, "quantity": "123456789012345.678"})
    entry = made(
        api, "stock_entry", {"purpose": "receipt", "posting_date": "2026-12-01", "lines": lines}
    )
    submitted = api.post(f"{API}/stock_entry/{entry['id']}/_submit")
    assert submitted.status_code == 200, submitted.text
    bins = api.get(f"{API}/bin").json()["data"]
    assert [b["actual_qty"] for b in bins] == ["123456789012346.678"]
    ledger = api.get(
        f"{API}/stock_ledger_entry/_aggregate", params={"measures": "qty_change__sum"}
    ).json()["data"]
    assert ledger[0]["qty_change__sum"] == "123456789012346.678"


@pytest.mark.only_on("sqlite")  # the storage format of decimals on SQLite
def test_sqlite_holds_scaled_integers(api: TestClient, money: Instance, db_url: str) -> None:
    fund = made(api, "fund", {"code": "F"})["id"]
    gift(api, fund, "12.34", rate="0.000000001")
    path = db_url.split("///", 1)[1]
    with sqlite3.connect(path) as connection:
        row = connection.execute(
            "SELECT amount, typeof(amount), rate, typeof(rate), fee FROM stock_gift"
        ).fetchone()
    assert row == (1234, "integer", 1, "integer", 150)


def test_huge_and_malformed_decimals_are_refused(api: TestClient) -> None:
    fund = made(api, "fund", {"code": "F"})["id"]
    for bad in ("1e400", "99999999999999999.00", "NaN", "1\x00", "0x10", 1e300):
        response = api.post(GIFTS, json={"fund": fund, "amount": bad})
        assert response.status_code == 422, (bad, response.text)
    listed = api.get(GIFTS, params={"amount__gt": "1e400"})
    assert listed.status_code in (400, 422), listed.text
    assert Decimal(api.get(f"{API}/fund/{fund}").json()["data"]["total"] or 0) == 0


def test_cursor_pages_sorted_by_a_decimal(api: TestClient) -> None:
    fund = made(api, "fund", {"code": "F"})["id"]
    amounts = ["1234567890123456.77", "0.10", "-5.00", "0.20", "1234567890123456.78"]
    for text in amounts:
        gift(api, fund, text)
    seen: list[str] = []
    params: dict[str, Any] = {"sort": "amount", "limit": 2}
    for _ in range(5):
        body = api.get(GIFTS, params=params).json()
        seen += [g["amount"] for g in body["data"]]
        if body["meta"]["next_cursor"] is None:
            break
        params = {**params, "cursor": body["meta"]["next_cursor"]}
    assert seen == sorted(amounts, key=Decimal)


def test_sqlite_refuses_more_than_eighteen_digits(api: TestClient, db_url: str) -> None:
    fund = made(api, "fund", {"code": "F"})["id"]
    big = "1234567890123456789012.34"
    response = api.post(GIFTS, json={"fund": fund, "amount": "1", "huge": big})
    if db_url.startswith("sqlite"):
        assert response.status_code == 422, response.text
        assert "18 significant digits" in response.text
        assert api.get(GIFTS).json()["data"] == []
    else:
        assert response.status_code == 201, response.text
        assert response.json()["data"]["huge"] == big
    fits = gift(api, fund, "1", huge="9999999999999999.99")
    assert fits["huge"] == "9999999999999999.99"
