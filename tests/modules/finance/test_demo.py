"""The finance pack's demo data loads on top of the other packs' demo, on SQLite and
PostgreSQL, through the submit path: the books balance, the story's figures hold, loading
again changes nothing, and no rollup drifts."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tests.modules.finance.conftest import CONTACTS, FINANCE, Books
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
    assert len(numbers) == 8
    customer = books.get(f"{CONTACTS}/account?name=Brightwater%20Logistics%20GmbH")[0]
    assert customer["lifetime_value"] == str(Decimal("11502.54") + Decimal("4274.48"))
    assert customer["outstanding"] == "4274.48"
    # loading again changes nothing
    before = len(books.gl())
    load_fixtures(finance, "demo")
    assert len(books.gl()) == before
