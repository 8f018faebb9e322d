"""Purchase orders and receipts through HTTP, on SQLite and PostgreSQL: the ordered
quantity raised at submit and lowered by receipts, stock posted in, the status following
the received quantities and walking back on cancel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.modules.orders.conftest import CONTACTS, INVENTORY, ORDERS, Shop


@pytest.fixture
def world(shop: Shop) -> dict[str, str]:
    vendor = shop.made(f"{CONTACTS}/account", {"name": "Woodworks", "type": "vendor"})
    chair = shop.made(
        f"{INVENTORY}/item", {"sku": "CHAIR", "name": "Chair", "standard_rate": "40.00"}
    )
    main = shop.made(f"{INVENTORY}/warehouse", {"name": "Main"})
    return {"vendor": vendor["id"], "chair": chair["id"], "main": main["id"]}


def purchase_order(shop: Shop, w: dict[str, str], quantity: str) -> dict[str, Any]:
    return shop.made(
        f"{ORDERS}/purchase_order",
        {
            "account": w["vendor"],
            "order_date": "2026-03-02",
            "lines": [
                {"item": w["chair"], "quantity": quantity, "rate": "25.00", "warehouse": w["main"]}
            ],
        },
    )


def receipt(shop: Shop, po: dict[str, Any], quantity: str) -> dict[str, Any]:
    line = po["lines"][0]
    return shop.made(
        f"{ORDERS}/purchase_receipt",
        {
            "purchase_order": po["id"],
            "posting_date": "2026-03-09",
            "lines": [
                {
                    "item": line["item"],
                    "quantity": quantity,
                    "warehouse": line["warehouse"],
                    "purchase_order_line": line["id"],
                }
            ],
        },
    )


def test_purchase_order_then_receipts(shop: Shop, world: dict[str, str]) -> None:
    w = world
    po = purchase_order(shop, w, "5")
    assert (po["status"], po["total"]) == ("draft", "125.00")
    submitted = shop.move("purchase_order", po["id"])
    assert (submitted["number"], submitted["status"]) == ("PO-2026-00001", "to_receive")
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 0, "reserved_qty": 0, "ordered_qty": 5}

    first = receipt(shop, po, "3")
    assert shop.move("purchase_receipt", first["id"])["number"] == "PR-2026-00001"
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 3, "reserved_qty": 0, "ordered_qty": 2}
    assert first["lines"][0]["rate"] == "25.000000"  # the order line's rate
    partly = shop.get(f"{ORDERS}/purchase_order/{po['id']}")
    assert (partly["status"], partly["per_received"]) == ("to_receive", "60.00")
    assert partly["lines"][0]["received_qty"] == "3.000"

    rest = receipt(shop, po, "2")
    shop.move("purchase_receipt", rest["id"])
    assert shop.get(f"{ORDERS}/purchase_order/{po['id']}")["status"] == "completed"
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 5, "reserved_qty": 0, "ordered_qty": 0}
    assert shop.ledger_sum(w["chair"], w["main"]) == 5

    more = receipt(shop, po, "1")
    response = shop.refused("purchase_receipt", more["id"])
    assert (response.status_code, response.json()["code"]) == (422, "over_receipt")

    # cancels walk back: the receipt, then (once nothing is received) the order
    shop.move("purchase_receipt", rest["id"], "cancel")
    assert shop.get(f"{ORDERS}/purchase_order/{po['id']}")["status"] == "to_receive"
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 3, "reserved_qty": 0, "ordered_qty": 2}
    refused = shop.refused("purchase_order", po["id"], "cancel")
    assert refused.json()["code"] == "linked_documents"
    shop.move("purchase_receipt", first["id"], "cancel")
    cancelled = shop.move("purchase_order", po["id"], "cancel")
    assert cancelled["status"] == "cancelled"
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 0, "reserved_qty": 0, "ordered_qty": 0}
    assert shop.ledger_sum(w["chair"], w["main"]) == Decimal(0)


def test_a_receipt_whose_stock_left_cannot_be_cancelled(shop: Shop, world: dict[str, str]) -> None:
    w = world
    po = purchase_order(shop, w, "2")
    shop.move("purchase_order", po["id"])
    got = receipt(shop, po, "2")
    shop.move("purchase_receipt", got["id"])
    issue = shop.made(
        f"{INVENTORY}/stock_entry",
        {
            "purpose": "issue",
            "posting_date": "2026-03-10",
            "lines": [{"item": w["chair"], "source_warehouse": w["main"], "quantity": "2"}],
        },
    )
    assert shop.client.post(f"{INVENTORY}/stock_entry/{issue['id']}/_submit").status_code == 200
    response = shop.refused("purchase_receipt", got["id"], "cancel")
    assert (response.status_code, response.json()["code"]) == (409, "insufficient_stock")
    assert shop.get(f"{ORDERS}/purchase_receipt/{got['id']}")["docstatus"] == "submitted"


def test_a_receipt_line_without_its_order_line_and_its_valuation(
    shop: Shop, world: dict[str, str]
) -> None:
    w = world
    po = purchase_order(shop, w, "4")
    shop.move("purchase_order", po["id"])
    body = {
        "purchase_order": po["id"],
        "lines": [{"item": w["chair"], "quantity": "3", "warehouse": w["main"], "rate": "25"}],
    }
    got = shop.made(f"{ORDERS}/purchase_receipt", body)
    shop.move("purchase_receipt", got["id"])
    assert shop.get(f"{ORDERS}/purchase_order/{po['id']}")["lines"][0]["received_qty"] == "3.000"
    chairs = shop.get(f"{INVENTORY}/bin?item={w['chair']}")[0]
    assert (chairs["actual_qty"], chairs["stock_value"], chairs["ordered_qty"]) == (
        "3.000",
        "75.00",
        "1.000",
    )
