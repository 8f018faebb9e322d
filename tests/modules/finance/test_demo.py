"""The finance pack's demo data loads on top of the other packs' demo, on SQLite and
PostgreSQL, through the submit path: the books balance, the story's figures hold, loading
again changes nothing, and no rollup drifts."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tests.modules.finance.conftest import CONTACTS, FINANCE, ORDERS, Books
from tests.support.fixture_records import load_fixtures

if TYPE_CHECKING:
    from tests.conftest import Instance


def test_the_demo_tells_a_consistent_story(books: Books, finance: Instance) -> None:
    assert load_fixtures(finance, "demo") > 0
    books.trial_balance()
    invoices = {r["reference"]: r for r in books.get(f"{FINANCE}/sales_invoice?limit=100&sort=id")}
    assert invoices["DEMO-SINV-01"]["status"] == "paid"
    assert invoices["DEMO-SINV-02"]["outstanding"] == "1275.28"  # credited 188.02, paid 1000
    assert invoices["DEMO-SINV-02-CN"]["status"] == "returned"
    assert invoices["DEMO-SINV-03"]["status"] == "paid"
    assert invoices["DEMO-SINV-05"]["status"] in ("partly_paid", "overdue")
    assert invoices["DEMO-SINV-08"]["docstatus"] == "draft"
    numbers = sorted(r["number"] for r in invoices.values() if r["number"])
    assert numbers[0] == "SINV-2026-00001"
    assert len(numbers) == 26
    assert numbers[-1] == "SINV-2026-00026"  # gap-free
    statuses = {r["status"] for r in invoices.values()}
    assert statuses >= {"paid", "partly_paid", "unpaid", "overdue", "returned", "draft"}
    # past their due date and not paid: overdue, as the daily rule marks them
    for reference in ("DEMO-SINV-14", "DEMO-SINV-17", "DEMO-SINV-18", "DEMO-SINV-21"):
        assert invoices[reference]["status"] == "overdue", reference
    # the invoices bill the orders demo's orders: delivered and billed, they are completed
    orders = {o["reference"]: o for o in books.get(f"{ORDERS}/sales_order?limit=100")}
    for reference in ("SO-DEMO-01", "SO-DEMO-04", "SO-DEMO-07", "SO-DEMO-12", "SO-DEMO-18"):
        assert orders[reference]["status"] == "completed", reference
    assert orders["SO-DEMO-29"]["status"] == "to_deliver"  # invoiced in advance
    assert orders["SO-DEMO-27"]["status"] == "to_deliver_and_bill"  # shipped and billed in part
    assert orders["SO-DEMO-08"]["status"] == "to_bill"  # two chairs credited
    customer = books.get(f"{CONTACTS}/account?name=Brightwater%20Logistics%20GmbH")[0]
    assert customer["lifetime_value"] == str(Decimal("11502.54") + Decimal("3703.28"))
    assert customer["outstanding"] == "3703.28"
    assert customer["last_order_date"] == "2026-12-01"
    # each account's rollups are its invoices' sums
    accounts = books.get(f"{CONTACTS}/account?limit=100")
    for account in accounts:
        own = [r for r in invoices.values() if r["account"] == account["id"]]
        submitted = [r for r in own if r["docstatus"] == "submitted"]
        total = sum((Decimal(r["base_grand_total"]) for r in submitted), Decimal(0))
        assert Decimal(account["lifetime_value"]) == total, account["name"]
    assert len([a for a in accounts if Decimal(a["lifetime_value"]) > 0]) >= 20
    # loading again changes nothing
    before = len(books.gl())
    load_fixtures(finance, "demo")
    assert len(books.gl()) == before
