"""The orders pack's demo data, as `tessera demo` loads it on top of the contacts and
inventory demos: a quarter of submitted sales orders reserving stock, deliveries (in full,
in parts, one return) matched to their order lines by item, purchase orders and a receipt.
Loading it twice changes nothing; the bins equal their ledger rows; no rollup drift."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

from tests.modules.orders.conftest import INVENTORY, ORDERS, Shop
from tests.support.fixture_records import load_fixtures

if TYPE_CHECKING:
    from tests.conftest import Instance


def test_the_demo_tells_one_consistent_story(orders: Instance, shop: Shop) -> None:
    first = load_fixtures(orders, "demo")
    assert load_fixtures(orders, "demo") < first  # submitted documents are left as they are
    statuses = {
        o["reference"]: o["status"]
        for o in shop.get(f"{ORDERS}/sales_order?sort=reference&limit=100")
    }
    # without the finance pack nothing is billed: a delivered order waits to be billed
    delivered = {f"SO-DEMO-{n:02d}" for n in (1, 4, *range(7, 26), 28)}
    waiting = {f"SO-DEMO-{n:02d}" for n in (2, 3, 5, 26, 27, 29, 30, 31)}
    assert statuses == {
        **dict.fromkeys(delivered, "to_bill"),
        **dict.fromkeys(waiting, "to_deliver_and_bill"),
        "SO-DEMO-06": "draft",
    }
    # one order shipped in two deliveries, one in part
    split = shop.get(f"{ORDERS}/sales_order?reference=SO-DEMO-18")[0]
    assert [line["delivered_qty"] for line in split["lines"]] == ["20.000", "20.000", "6.000"]
    part = shop.get(f"{ORDERS}/sales_order?reference=SO-DEMO-27")[0]
    assert [line["delivered_qty"] for line in part["lines"]] == ["30.000", "0.000", "15.000"]
    partial = shop.get(f"{ORDERS}/sales_order?reference=SO-DEMO-02")[0]
    assert [line["delivered_qty"] for line in partial["lines"]] == ["8.000", "0.000"]
    purchases = shop.get(f"{ORDERS}/purchase_order?sort=reference")
    assert [(p["status"], p["received_qty"]) for p in purchases] == [
        ("to_receive", "20.000"),
        ("to_receive", "0.000"),
    ]

    # every bin: actual = its ledger rows; reserved = what submitted orders still have to
    # ship; ordered = what submitted purchase orders still have to receive
    reserved: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for so in shop.get(f"{ORDERS}/sales_order?docstatus=submitted&limit=100"):
        for line in so["lines"]:
            pending = Decimal(line["quantity"]) - Decimal(line["delivered_qty"])
            reserved[line["item"], line["warehouse"]] += pending
    ordered: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for po in purchases:
        for line in po["lines"]:
            pending = Decimal(line["quantity"]) - Decimal(line["received_qty"])
            ordered[line["item"], line["warehouse"]] += pending
    bins = shop.get(f"{INVENTORY}/bin?limit=500")
    assert bins
    for row in bins:
        key = (row["item"], row["warehouse"])
        assert shop.ledger_sum(*key) == Decimal(row["actual_qty"]), row
        rows = shop.get(f"{INVENTORY}/stock_ledger_entry?item={key[0]}&warehouse={key[1]}")
        value = sum((Decimal(r["stock_value_difference"]) for r in rows), Decimal(0))
        assert value == Decimal(row["stock_value"]), row
        assert Decimal(row["reserved_qty"]) == reserved[key], row
        assert Decimal(row["ordered_qty"]) == ordered[key], row
