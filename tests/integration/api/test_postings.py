"""Postings on submit and their reversal on cancel, on SQLite and PostgreSQL: ledger rows
with voucher fields, balances kept by key and refused below their limit (409 naming the
line, nothing written), record increments that run the target's asserts (``code:``),
balanced vouchers with a round-off row, and period locks."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.ledger_packs import API, FILES

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance: Instance = pack_instance(tmp_path, db_url, "stock", FILES)
    with instance.client() as client:
        yield client


def made(api: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def submit(api: TestClient, entity: str, record_id: str) -> Any:
    return api.post(f"{API}/{entity}/{record_id}/_submit")


def entry(api: TestClient, purpose: str, *lines: tuple[str, str, str]) -> dict[str, Any]:
    body = {
        "purpose": purpose,
        "posting_date": "2026-12-01",
        "lines": [{"item": i, "warehouse": w, "quantity": q} for i, w, q in lines],
    }
    return made(api, "stock_entry", body)


def bins(api: TestClient) -> dict[tuple[str, str], dict[str, Any]]:
    rows = api.get(f"{API}/bin").json()["data"]
    return {(r["item"], r["warehouse"]): r for r in rows}


def ledger(api: TestClient, **filters: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.get(
        f"{API}/stock_ledger_entry", params={"sort": "id", **filters}
    ).json()["data"]
    return rows


@pytest.fixture
def stock(api: TestClient) -> tuple[str, str, str]:
    a = made(api, "item", {"sku": "A"})["id"]
    b = made(api, "item", {"sku": "B"})["id"]
    w = made(api, "warehouse", {"name": "Main"})["id"]
    return a, b, w


def test_a_receipt_posts_ledger_rows_and_moves_the_bins(
    api: TestClient, stock: tuple[str, str, str]
) -> None:
    a, b, w = stock
    receipt = entry(api, "receipt", (a, w, "10"), (b, w, "2.5"), (a, w, "1"))
    done = submit(api, "stock_entry", receipt["id"])
    assert done.status_code == 200, done.text
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 11
    assert Decimal(bins(api)[b, w]["actual_qty"]) == Decimal("2.5")
    rows = ledger(api)
    assert [Decimal(r["qty_change"]) for r in rows] == [10, Decimal("2.5"), 1]
    assert {r["voucher_type"] for r in rows} == {"stock.stock_entry"}
    assert {str(r["voucher_id"]) for r in rows} == {receipt["id"]}
    assert {r["is_reversal"] for r in rows} == {False}
    assert [Decimal(r["qty_after"]) for r in rows] == [10, Decimal("2.5"), 11]


def test_a_posting_below_zero_is_refused_naming_the_line_and_writes_nothing(
    api: TestClient, stock: tuple[str, str, str]
) -> None:
    a, b, w = stock
    assert submit(api, "stock_entry", entry(api, "receipt", (a, w, "5"))["id"]).status_code == 200
    issue = entry(api, "issue", (a, w, "2"), (b, w, "1"))
    refused = submit(api, "stock_entry", issue["id"])
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "insufficient_stock"
    assert problem["errors"][0]["field"] == "lines[1].quantity"
    assert problem["errors"][0]["code"] == "insufficient_stock"
    assert api.get(f"{API}/stock_entry/{issue['id']}").json()["data"]["docstatus"] == "draft"
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 5  # the first line's move rolled back
    assert len(ledger(api)) == 1
    over = entry(api, "issue", (a, w, "5.001"))
    assert submit(api, "stock_entry", over["id"]).json()["code"] == "insufficient_stock"
    exact = entry(api, "issue", (a, w, "5"))
    assert submit(api, "stock_entry", exact["id"]).status_code == 200
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 0


def test_cancel_reverses_exactly_what_the_submit_posted(
    api: TestClient, stock: tuple[str, str, str]
) -> None:
    a, _, w = stock
    receipt = entry(api, "receipt", (a, w, "8"))
    assert submit(api, "stock_entry", receipt["id"]).status_code == 200
    issue = entry(api, "issue", (a, w, "6"))
    assert submit(api, "stock_entry", issue["id"]).status_code == 200
    refused = api.post(f"{API}/stock_entry/{receipt['id']}/_cancel")
    assert refused.status_code == 409, refused.text  # its stock has been issued
    assert refused.json()["code"] == "insufficient_stock"
    assert api.get(f"{API}/stock_entry/{receipt['id']}").json()["data"]["docstatus"] == (
        "submitted"
    )
    cancelled = api.post(f"{API}/stock_entry/{issue['id']}/_cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 8
    rows = ledger(api, voucher_id=issue["id"])
    assert [(Decimal(r["qty_change"]), r["is_reversal"]) for r in rows] == [
        (-6, False),
        (6, True),
    ]
    assert Decimal(rows[1]["qty_after"]) == 8
    every = ledger(api)
    assert sum(Decimal(r["qty_change"]) for r in every) == Decimal(bins(api)[a, w]["actual_qty"])
    assert api.post(f"{API}/stock_entry/{receipt['id']}/_cancel").status_code == 200
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 0


def test_an_order_reserves_and_a_delivery_raises_delivered_qty_within_the_order(
    api: TestClient, stock: tuple[str, str, str]
) -> None:
    a, _, w = stock
    assert submit(api, "stock_entry", entry(api, "receipt", (a, w, "10"))["id"]).status_code == 200
    order = made(api, "sales_order", {"lines": [{"item": a, "warehouse": w, "quantity": "4"}]})
    assert submit(api, "sales_order", order["id"]).status_code == 200
    assert Decimal(bins(api)[a, w]["reserved_qty"]) == 4
    line = order["lines"][0]["id"]

    def delivery(quantity: str) -> dict[str, Any]:
        lines = [{"item": a, "warehouse": w, "quantity": quantity, "sales_order_line": line}]
        return made(api, "delivery", {"sales_order": order["id"], "lines": lines})

    too_much = delivery("5")
    refused = submit(api, "delivery", too_much["id"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "over_delivery"
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 10
    first = delivery("3")
    assert submit(api, "delivery", first["id"]).status_code == 200
    stored = api.get(f"{API}/sales_order/{order['id']}").json()["data"]["lines"][0]
    assert Decimal(stored["delivered_qty"]) == 3
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 7
    assert Decimal(bins(api)[a, w]["reserved_qty"]) == 1
    assert api.post(f"{API}/delivery/{first['id']}/_cancel").status_code == 200
    stored = api.get(f"{API}/sales_order/{order['id']}").json()["data"]["lines"][0]
    assert Decimal(stored["delivered_qty"]) == 0
    assert Decimal(bins(api)[a, w]["reserved_qty"]) == 4
    assert Decimal(bins(api)[a, w]["actual_qty"]) == 10


@pytest.fixture
def accounts(api: TestClient) -> dict[str, str]:
    return {code: made(api, "account", {"code": code})["id"] for code in ("BANK", "SALES", "ROUND")}


def journal(api: TestClient, date: str, *lines: tuple[str, str, str]) -> dict[str, Any]:
    body = {
        "posting_date": date,
        "lines": [{"account": a, "debit": d, "credit": c} for a, d, c in lines],
    }
    return made(api, "journal_entry", body)


def gl(api: TestClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.get(f"{API}/gl_entry", params={"sort": "id"}).json()["data"]
    return rows


def test_a_balanced_ledger_refuses_an_unbalanced_voucher_and_rounds_off_within_tolerance(
    api: TestClient, accounts: dict[str, str]
) -> None:
    bank, sales = accounts["BANK"], accounts["SALES"]
    even = journal(api, "2026-12-01", (bank, "100.10", "0"), (sales, "0", "100.10"))
    assert submit(api, "journal_entry", even["id"]).status_code == 200
    assert len(gl(api)) == 2
    off = journal(api, "2026-12-01", (bank, "100.00", "0"), (sales, "0", "99.00"))
    refused = submit(api, "journal_entry", off["id"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "unbalanced"
    assert refused.json()["errors"][0]["code"] == "unbalanced"
    assert "differ by 1.00" in refused.json()["errors"][0]["message"]
    assert len(gl(api)) == 2  # nothing written
    assert api.get(f"{API}/journal_entry/{off['id']}").json()["data"]["docstatus"] == "draft"
    near = journal(api, "2026-12-01", (bank, "10.00", "0"), (sales, "0", "9.97"))
    assert submit(api, "journal_entry", near["id"]).status_code == 200
    rows = [r for r in gl(api) if str(r["voucher_id"]) == near["id"]]
    assert len(rows) == 3
    round_off = rows[-1]
    assert round_off["account"] == accounts["ROUND"]
    assert (Decimal(round_off["debit"]), Decimal(round_off["credit"])) == (0, Decimal("0.03"))
    assert round_off["remark"] == "round-off"
    assert sum(Decimal(r["debit"]) for r in rows) == sum(Decimal(r["credit"]) for r in rows)
    assert api.post(f"{API}/journal_entry/{near['id']}/_cancel").status_code == 200
    rows = [r for r in gl(api) if str(r["voucher_id"]) == near["id"]]
    assert len(rows) == 6
    assert sum(Decimal(r["debit"]) - Decimal(r["credit"]) for r in rows) == 0
    assert [r["is_reversal"] for r in rows] == [False] * 3 + [True] * 3


def test_postings_dated_in_a_closed_period_are_refused(
    api: TestClient, accounts: dict[str, str]
) -> None:
    bank, sales = accounts["BANK"], accounts["SALES"]
    open_entry = journal(api, "2026-11-30", (bank, "5", "0"), (sales, "0", "5"))
    assert submit(api, "journal_entry", open_entry["id"]).status_code == 200
    made(api, "settings", {"books_closed_until": "2026-11-30"})
    late = journal(api, "2026-11-30", (bank, "5", "0"), (sales, "0", "5"))
    refused = submit(api, "journal_entry", late["id"])
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "period_locked"
    assert "2026-11-30" in refused.json()["detail"]
    cancel = api.post(f"{API}/journal_entry/{open_entry['id']}/_cancel")
    assert cancel.status_code == 409  # its reversal would be dated in the closed period
    assert cancel.json()["code"] == "period_locked"
    current = journal(api, "2026-12-01", (bank, "5", "0"), (sales, "0", "5"))
    assert submit(api, "journal_entry", current["id"]).status_code == 200
    assert len(gl(api)) == 4


def test_a_balance_that_would_overflow_its_column_is_refused_at_the_line(
    api: TestClient, stock: tuple[str, str, str]
) -> None:
    a, _, w = stock
    big = "900000000000000"  # 15 digits: a decimal(18, 3) holds one, not two
    assert submit(api, "stock_entry", entry(api, "receipt", (a, w, big))["id"]).status_code == 200
    again = entry(api, "receipt", (a, w, big))
    refused = submit(api, "stock_entry", again["id"])
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "lines[0].quantity"
    assert Decimal(bins(api)[a, w]["actual_qty"]) == Decimal(big)


def test_a_voucher_of_many_lines_is_journalled_and_cancelled_whole(
    api: TestClient, stock: tuple[str, str, str]
) -> None:
    a, b, w = stock
    lines = [(a if n % 2 else b, w, str(n + 1)) for n in range(40)]  # 80 journal entries
    receipt = entry(api, "receipt", *lines)
    assert submit(api, "stock_entry", receipt["id"]).status_code == 200
    assert Decimal(bins(api)[a, w]["actual_qty"]) == sum(n + 1 for n in range(40) if n % 2)
    assert api.post(f"{API}/stock_entry/{receipt['id']}/_cancel").status_code == 200
    assert {Decimal(r["actual_qty"]) for r in bins(api).values()} == {0}
    assert len(ledger(api, voucher_id=receipt["id"], limit="100")) == 80


def test_cancel_reverses_what_was_posted_even_after_the_rules_changed(
    db_url: str, tmp_path: Path
) -> None:
    instance = pack_instance(tmp_path, db_url, "stock", FILES)
    with instance.client() as api:
        a = made(api, "item", {"sku": "A"})["id"]
        w = made(api, "warehouse", {"name": "Main"})["id"]
        receipt = entry(api, "receipt", (a, w, "5"))
        assert submit(api, "stock_entry", receipt["id"]).status_code == 200
    rules = tmp_path / "packs" / "stock" / "rules" / "stock_entry.yaml"
    text = rules.read_text(encoding="utf-8")
    changed = text.replace("line.quantity if purpose", "line.quantity * 3 if purpose")
    assert changed != text
    rules.write_text(changed, encoding="utf-8")  # receipts now post three times the quantity
    with instance.client() as api:
        assert api.post(f"{API}/stock_entry/{receipt['id']}/_cancel").status_code == 200
        assert Decimal(bins(api)[a, w]["actual_qty"]) == 0
        rows = ledger(api, voucher_id=receipt["id"])
        assert [Decimal(r["qty_change"]) for r in rows] == [5, -5]
