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


def test_over_delivery_is_refused_and_writes_nothing(shop: Shop, world: dict[str, str]) -> None:
    w = world
    so = order(shop, w)
    shop.move("sales_order", so["id"])
    too_many = delivery(shop, so, (0, "7"))
    response = shop.refused("delivery", too_many["id"])
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "over_delivery"
    assert shop.get(f"{ORDERS}/delivery/{too_many['id']}")["docstatus"] == "draft"
    assert shop.bin(w["chair"], w["main"]) == {
        "actual_qty": 10,
        "reserved_qty": 6,
        "ordered_qty": 0,
    }
    assert shop.get(f"{ORDERS}/sales_order/{so['id']}")["lines"][0]["delivered_qty"] == "0.000"


def test_insufficient_stock_is_a_409_at_the_line(shop: Shop, world: dict[str, str]) -> None:
    w = world
    so = order(shop, w, chairs="12", tables="1")
    shop.move("sales_order", so["id"])
    assert shop.bin(w["chair"], w["main"])["reserved_qty"] == 12  # reserving needs no stock
    short = delivery(shop, so, (1, "1"), (0, "12"))
    response = shop.refused("delivery", short["id"])
    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "insufficient_stock"
    assert [e["field"] for e in problem["errors"]] == ["lines[1].quantity"]
    assert shop.bin(w["table"], w["main"])["actual_qty"] == 4  # the first line neither
    assert shop.get(f"{ORDERS}/sales_order/{so['id']}")["status"] == "to_deliver_and_bill"


def test_a_return_puts_stock_back_and_reopens_the_order(shop: Shop, world: dict[str, str]) -> None:
    w = world
    so = order(shop, w, chairs="4", tables="1")
    shop.move("sales_order", so["id"])
    out = delivery(shop, so, (0, "4"), (1, "1"))
    shop.move("delivery", out["id"])
    assert shop.get(f"{ORDERS}/sales_order/{so['id']}")["status"] == "to_bill"
    back = delivery(shop, so, (0, "1"), is_return=True, return_against=out["id"])
    returned = shop.move("delivery", back["id"])
    assert returned["number"] == "DN-2026-00002"
    after = shop.get(f"{ORDERS}/sales_order/{so['id']}")
    assert after["status"] == "to_deliver_and_bill"
    assert after["lines"][0]["delivered_qty"] == "3.000"
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 7, "reserved_qty": 1, "ordered_qty": 0}
    rows = shop.get(f"{INVENTORY}/stock_ledger_entry?voucher_id={back['id']}")
    assert [r["qty_change"] for r in rows if r["voucher_type"] == "orders.delivery"] == ["1.000"]

    # returning more than was delivered is refused
    greedy = delivery(shop, so, (0, "4"), is_return=True, return_against=out["id"])
    assert shop.refused("delivery", greedy["id"]).json()["code"] == "over_return"

    # cancelling the return takes the stock out again
    shop.move("delivery", back["id"], "cancel")
    assert shop.get(f"{ORDERS}/sales_order/{so['id']}")["status"] == "to_bill"
    assert shop.bin(w["chair"], w["main"]) == {"actual_qty": 6, "reserved_qty": 0, "ordered_qty": 0}
    assert shop.ledger_sum(w["chair"], w["main"]) == 6


def test_cancelling_an_order_releases_it_once_nothing_is_delivered(
    shop: Shop, world: dict[str, str]
) -> None:
    w = world
    so = order(shop, w)
    shop.move("sales_order", so["id"])
    out = delivery(shop, so, (1, "1"))
    shop.move("delivery", out["id"])
    refused = shop.refused("sales_order", so["id"], "cancel")
    assert refused.status_code == 422
    assert refused.json()["code"] == "linked_documents"
    shop.move("delivery", out["id"], "cancel")
    cancelled = shop.move("sales_order", so["id"], "cancel")
    assert cancelled["status"] == "cancelled"
    assert shop.bin(w["chair"], w["main"])["reserved_qty"] == 0
    assert shop.bin(w["table"], w["main"]) == {"actual_qty": 4, "reserved_qty": 0, "ordered_qty": 0}
    amended = shop.client.post(f"{ORDERS}/sales_order/{so['id']}/_amend").json()["data"]
    assert amended["status"] == "draft"
    assert amended["lines"][0]["delivered_qty"] == "0.000"


def test_a_delivery_needs_a_submitted_order(shop: Shop, world: dict[str, str]) -> None:
    so = order(shop, world)
    early = delivery(shop, so, (0, "1"))
    response = shop.refused("delivery", early["id"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "sales_order"


def test_a_line_without_its_order_line_delivers_the_line_of_that_item(
    shop: Shop, world: dict[str, str]
) -> None:
    w = world
    so = order(shop, w)
    shop.move("sales_order", so["id"])
    body = {
        "sales_order": so["id"],
        "lines": [
            {"item": w["table"], "quantity": "2", "warehouse": w["main"]},
            {"item": w["chair"], "quantity": "1", "warehouse": w["main"]},
        ],
    }
    dn = shop.made(f"{ORDERS}/delivery", body)
    shop.move("delivery", dn["id"])
    lines = shop.get(f"{ORDERS}/sales_order/{so['id']}")["lines"]
    assert [line["delivered_qty"] for line in lines] == ["1.000", "2.000"]

    stray = shop.made(f"{INVENTORY}/item", {"sku": "LAMP", "name": "Lamp"})
    shop.stock_in(stray["id"], w["main"], "1")
    body["lines"] = [{"item": stray["id"], "quantity": "1", "warehouse": w["main"]}]
    wrong = shop.made(f"{ORDERS}/delivery", body)
    response = shop.refused("delivery", wrong["id"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "not_found"
    assert shop.bin(stray["id"], w["main"])["actual_qty"] == 1


def test_deliveries_are_valued_at_the_moving_average(shop: Shop, world: dict[str, str]) -> None:
    w = world  # 10 chairs in stock at 10.00
    so = order(shop, w, chairs="4", tables="1")
    shop.move("sales_order", so["id"])
    out = delivery(shop, so, (0, "4"))
    shop.move("delivery", out["id"])
    rows = shop.get(f"{INVENTORY}/stock_ledger_entry?voucher_id={out['id']}")
    (row,) = [r for r in rows if r["voucher_type"] == "orders.delivery"]
    assert (row["qty_change"], row["stock_value_difference"]) == ("-4.000", "-40.00")
    back = delivery(shop, so, (0, "1"), is_return=True, return_against=out["id"])
    shop.move("delivery", back["id"])
    rows = shop.get(f"{INVENTORY}/stock_ledger_entry?voucher_id={back['id']}")
    (row,) = [r for r in rows if r["voucher_type"] == "orders.delivery"]
    assert (row["qty_change"], row["stock_value_difference"]) == ("1.000", "10.00")
    chairs = shop.get(f"{INVENTORY}/bin?item={w['chair']}")[0]
    assert (chairs["actual_qty"], chairs["stock_value"]) == ("7.000", "70.00")


def test_rates_come_from_the_customers_price_list(shop: Shop, world: dict[str, str]) -> None:
    w = world
    wholesale = shop.made(f"{INVENTORY}/price_list", {"name": "Wholesale", "currency": "EUR"})
    shop.made(
        f"{INVENTORY}/item_price",
        {"price_list": wholesale["id"], "item": w["chair"], "rate": "35.00"},
    )
    response = shop.client.patch(
        f"{CONTACTS}/account/{w['account']}", json={"price_list": wholesale["id"]}
    )
    assert response.status_code == 200, response.text
    so = shop.made(
        f"{ORDERS}/sales_order",
        {
            "account": w["account"],
            "lines": [
                {"item": w["chair"], "quantity": "2", "warehouse": w["main"]},
                {"item": w["table"], "quantity": "1", "warehouse": w["main"]},
                {"item": w["chair"], "quantity": "1", "rate": "30.00", "warehouse": w["main"]},
            ],
        },
    )
    assert so["price_list"] == wholesale["id"]
    assert [line["rate"] for line in so["lines"]] == ["35.00", "150.00", "30.00"]
    assert so["total"] == "250.00"


def test_a_service_line_is_delivered_without_moving_stock(
    shop: Shop, world: dict[str, str]
) -> None:
    w = world
    service = shop.made(
        f"{INVENTORY}/item",
        {"sku": "SVC", "name": "Assembly", "is_stock_item": False, "standard_rate": "55.00"},
    )
    so = shop.made(
        f"{ORDERS}/sales_order",
        {
            "account": w["account"],
            "lines": [
                {"item": w["chair"], "quantity": "2", "warehouse": w["main"]},
                {"item": service["id"], "quantity": "3"},
            ],
        },
    )
    assert [line["is_stock_item"] for line in so["lines"]] == [True, False]
    shop.move("sales_order", so["id"])
    assert shop.get(f"{INVENTORY}/bin?item={service['id']}") == []
    dn = shop.made(
        f"{ORDERS}/delivery",
        {
            "sales_order": so["id"],
            "lines": [
                {"item": w["chair"], "quantity": "2", "warehouse": w["main"]},
                {"item": service["id"], "quantity": "3"},
            ],
        },
    )
    shop.move("delivery", dn["id"])
    assert shop.get(f"{ORDERS}/sales_order/{so['id']}")["status"] == "to_bill"
    assert shop.get(f"{INVENTORY}/bin?item={service['id']}") == []
    rows = shop.get(f"{INVENTORY}/stock_ledger_entry?voucher_type=orders.delivery")
    assert [r["item"] for r in rows] == [w["chair"]]
    shop.move("delivery", dn["id"], "cancel")
    shop.move("sales_order", so["id"], "cancel")
    assert shop.bin(w["chair"], w["main"]) == {
        "actual_qty": 10,
        "reserved_qty": 0,
        "ordered_qty": 0,
    }
