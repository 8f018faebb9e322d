"""Sales orders and deliveries through HTTP, on SQLite and PostgreSQL: reservation at
submit, partial and full delivery walking the status, over-delivery, insufficient stock,
cancels walking everything back, returns, and the stock ledger equal to the bins."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.modules.orders.conftest import CONTACTS, INVENTORY, ORDERS, Shop


@pytest.fixture
def world(shop: Shop) -> dict[str, str]:
    """A customer with addresses, two items, a warehouse with 10 chairs and 4 tables."""
    billing = shop.made(
        f"{CONTACTS}/address",
        {
            "label": "Acme HQ",
            "street": "1 Main St",
            "city": "Hamburg",
            "postal_code": "20095",
            "country": "DE",
        },
    )
    account = shop.made(
        f"{CONTACTS}/account",
        {"name": "Acme", "type": "customer", "billing_address": billing["id"]},
    )
    chair = shop.made(
        f"{INVENTORY}/item", {"sku": "CHAIR", "name": "Chair", "standard_rate": "40.00"}
    )
    table = shop.made(
        f"{INVENTORY}/item", {"sku": "TABLE", "name": "Table", "standard_rate": "150.00"}
    )
    main = shop.made(f"{INVENTORY}/warehouse", {"name": "Main"})
    shop.stock_in(chair["id"], main["id"], "10")
    shop.stock_in(table["id"], main["id"], "4")
    return {
        "account": account["id"],
        "billing": billing["id"],
        "chair": chair["id"],
        "table": table["id"],
        "main": main["id"],
    }


def order(shop: Shop, w: dict[str, str], chairs: str = "6", tables: str = "2") -> dict[str, Any]:
    return shop.made(
        f"{ORDERS}/sales_order",
        {
            "account": w["account"],
            "order_date": "2026-02-03",
            "lines": [
                {"item": w["chair"], "quantity": chairs, "warehouse": w["main"]},
                {"item": w["table"], "quantity": tables, "rate": "140.00", "warehouse": w["main"]},
            ],
        },
    )


def delivery(
    shop: Shop, so: dict[str, Any], *lines: tuple[int, str], **extra: Any
) -> dict[str, Any]:
    body = {
        "sales_order": so["id"],
        "posting_date": "2026-02-10",
        "carrier": "DHL",
        "tracking_number": "JD0001",
        **extra,
        "lines": [
            {
                "item": so["lines"][i]["item"],
                "quantity": qty,
                "warehouse": so["lines"][i]["warehouse"],
                "sales_order_line": so["lines"][i]["id"],
            }
            for i, qty in lines
        ],
    }
    return shop.made(f"{ORDERS}/delivery", body)


def test_order_reserves_and_deliveries_walk_the_status(shop: Shop, world: dict[str, str]) -> None:
    w = world
    so = order(shop, w)
    assert so["status"] == "draft"
    assert so["number"] is None
    assert Decimal(so["total"]) == Decimal("520.00")  # 6 x 40 (standard rate) + 2 x 140
    assert so["lines"][0]["rate"] == "40.00"
    assert so["billing_address"] == w["billing"]
    submitted = shop.move("sales_order", so["id"])
    assert submitted["number"] == "SO-2026-00001"
    assert submitted["status"] == "to_deliver_and_bill"
    assert shop.bin(w["chair"], w["main"])["reserved_qty"] == 6
    assert shop.bin(w["table"], w["main"])["reserved_qty"] == 2

    first = delivery(shop, so, (0, "4"))
    shop.move("delivery", first["id"])
    after = shop.get(f"{ORDERS}/sales_order/{so['id']}")
    assert after["status"] == "to_deliver_and_bill"
    assert Decimal(after["lines"][0]["delivered_qty"]) == 4
    assert Decimal(after["per_delivered"]) == Decimal("50.00")
    chairs = shop.bin(w["chair"], w["main"])
    assert (chairs["actual_qty"], chairs["reserved_qty"]) == (6, 2)

    second = delivery(shop, so, (0, "2"), (1, "2"))
    shop.move("delivery", second["id"])
    done = shop.get(f"{ORDERS}/sales_order/{so['id']}")
    assert done["status"] == "to_bill"
    assert Decimal(done["per_delivered"]) == 100
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 4, "reserved_qty": 0, "ordered_qty": 0}
    assert shop.bin(w["table"], w["main"])["actual_qty"] == 2

    # cancelling the second delivery walks the status back, and the stock and reservation
    shop.move("delivery", second["id"], "cancel")
    back = shop.get(f"{ORDERS}/sales_order/{so['id']}")
    assert back["status"] == "to_deliver_and_bill"
    assert Decimal(back["lines"][0]["delivered_qty"]) == 4
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 6, "reserved_qty": 2, "ordered_qty": 0}
    for item in (w["chair"], w["table"]):
        assert shop.ledger_sum(item, w["main"]) == shop.bin(item, w["main"])["actual_qty"]
