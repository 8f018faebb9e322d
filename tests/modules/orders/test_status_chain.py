"""The sales order's status through the whole chain, with the finance pack billing it, on
SQLite and PostgreSQL: billed before it is delivered (to_deliver), then delivered
(completed), and cancels walking it back; an order with invoices cannot be cancelled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, write_instance
from tests.modules.orders.conftest import CONTACTS, INVENTORY, ORDERS, Shop
from tests.support.fixture_records import migrate_with_fixtures
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.conftest import Instance

FINANCE = "/api/v1/finance"


@pytest.fixture
def books(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "i", db_url, ["orders", "finance"], [REPO / "modules"])
    migrate_with_fixtures(instance)  # the chart of accounts
    return instance


@pytest.fixture
def shop(books: Instance) -> Iterator[Shop]:
    with books.client() as client:
        yield Shop(client)
    assert_no_drift(books.settings)


def status(shop: Shop, order: dict[str, Any]) -> tuple[str, str, str]:
    data = shop.get(f"{ORDERS}/sales_order/{order['id']}")
    return data["status"], data["per_delivered"], data["per_billed"]


def test_billing_and_delivering_in_either_order(shop: Shop) -> None:
    acme = shop.made(f"{CONTACTS}/account", {"name": "Acme", "type": "customer"})["id"]
    chair = shop.made(f"{INVENTORY}/item", {"sku": "CHAIR", "name": "Chair"})["id"]
    main = shop.made(f"{INVENTORY}/warehouse", {"name": "Main"})["id"]
    shop.stock_in(chair, main, "5")
    order = shop.made(
        f"{ORDERS}/sales_order",
        {
            "account": acme,
            "order_date": "2026-02-03",
            "lines": [{"item": chair, "quantity": "2", "rate": "50.00", "warehouse": main}],
        },
    )
    shop.move("sales_order", order["id"])
    invoice = shop.made(
        f"{FINANCE}/sales_invoice",
        {
            "account": acme,
            "sales_order": order["id"],
            "posting_date": "2026-02-04",
            "lines": [
                {
                    "item": chair,
                    "quantity": "2",
                    "rate": "50.00",
                    "sales_order_line": order["lines"][0]["id"],
                }
            ],
        },
    )
    response = shop.client.post(f"{FINANCE}/sales_invoice/{invoice['id']}/_submit")
    assert response.status_code == 200, response.text
    assert status(shop, order) == ("to_deliver", "0.00", "100.00")

    dn = shop.made(
        f"{ORDERS}/delivery",
        {
            "sales_order": order["id"],
            "lines": [{"item": chair, "quantity": "2", "warehouse": main}],
        },
    )
    shop.move("delivery", dn["id"])
    assert status(shop, order) == ("completed", "100.00", "100.00")

    refused = shop.refused("sales_order", order["id"], "cancel")
    assert refused.json()["code"] == "linked_documents"
    response = shop.client.post(f"{FINANCE}/sales_invoice/{invoice['id']}/_cancel")
    assert response.status_code == 200, response.text
    assert status(shop, order) == ("to_bill", "100.00", "0.00")
    shop.move("delivery", dn["id"], "cancel")
    assert status(shop, order) == ("to_deliver_and_bill", "0.00", "0.00")
    assert shop.move("sales_order", order["id"], "cancel")["status"] == "cancelled"
    assert shop.bin(chair, main) == {"actual_qty": 5, "reserved_qty": 0, "ordered_qty": 0}
