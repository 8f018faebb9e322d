"""The inventory pack's demo data, as `tessera demo` loads it: warehouses in a tree, a dozen
items, price lists with item prices, a bill of materials, and stock made by submitted
stock entries (receipts at two rates, a transfer, a manufacture, an issue; one draft).
Loading it twice changes nothing; the bins equal their ledger rows; no rollup drift."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

from engine import EngineModel, open_database
from runtime.app import load_definitions
from runtime.dataio import load_fixture_records
from tests.modules.inventory.conftest import API, Stock
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from tests.conftest import Instance


def load_demo(instance: Instance) -> int:
    settings = instance.settings
    project = load_definitions(settings)
    model = EngineModel.for_url(project, settings.database_url)

    async def run() -> int:
        database = await open_database(settings.database_url, pool_size=1)
        try:
            count, errors = await load_fixture_records(database, model, project, "demo")
        finally:
            await database.close()
        assert not errors, errors
        return count

    return asyncio.run(run())


def test_the_demo_posts_its_stock_once(inventory: Instance) -> None:
    first = load_demo(inventory)
    second = load_demo(inventory)
    assert second == first - 8  # the eight submitted entries are left as they are
    with inventory.client() as client:
        stock = Stock(client)
        stock.check_books()
        entries = stock.rows("stock_entry", sort="id")
        assert [e["docstatus"] for e in entries] == ["submitted"] * 8 + ["draft"]
        assert len(stock.rows("item")) == 24
        root = stock.rows("warehouse", name="All Warehouses")[0]
        assert len(stock.rows("warehouse", parent=root["id"])) == 2
        desk = stock.rows("item", sku="DESK-160")[0]
        # 20 bought at 226 and 12 made from the BOM (2,349.84)
        assert (desk["actual_qty"], desk["stock_value"]) == ("32.000", "6869.84")
        chair = stock.rows("item", sku="CHAIR-ERGO")[0]
        # 24 at 178, 80 at 180 and 12 at 184: 116 at 180.00, 10 of them moved to Lyon at that rate
        assert (chair["actual_qty"], chair["stock_value"]) == ("116.000", "20880.00")
        below = {i["sku"] for i in stock.rows("item", below_reorder="true")}
        assert below == {"SCREW-M6"}  # 12 boxes, 2.4 of them made into desks
        prices = stock.rows("item_price", code="Standard Selling / DESK-160")
        assert [p["rate"] for p in prices] == ["449.00"]
        assert Decimal(stock.rows("bin", sort="-stock_value")[0]["stock_value"]) > 0
        assert client.get(f"{API}/price_list").json()["data"]
    assert_no_drift(inventory.settings)
