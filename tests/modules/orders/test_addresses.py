"""PACKS §3 item 4 through HTTP, on SQLite and PostgreSQL: a sales order takes its
addresses from the customer; while it is a draft its address text follows the addresses
(an edited address, or the customer's address replaced by another); once submitted it
keeps the text it was submitted with, through deliveries and cancel."""

from __future__ import annotations

from typing import Any

from tests.modules.orders.conftest import CONTACTS, INVENTORY, ORDERS, Shop


def address(shop: Shop, label: str, street: str, city: str) -> str:
    body = {"label": label, "street": street, "city": city, "postal_code": "20095", "country": "DE"}
    return str(shop.made(f"{CONTACTS}/address", body)["id"])


def patch(shop: Shop, path: str, body: dict[str, Any]) -> Any:
    response = shop.client.patch(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_drafts_follow_the_address_and_submitted_orders_keep_their_text(shop: Shop) -> None:
    hq = address(shop, "Acme HQ", "1 Main St", "Hamburg")
    account = shop.made(f"{CONTACTS}/account", {"name": "Acme", "billing_address": hq})
    chair = shop.made(f"{INVENTORY}/item", {"sku": "CHAIR", "name": "Chair", "standard_rate": "4"})
    main = shop.made(f"{INVENTORY}/warehouse", {"name": "Main"})
    shop.stock_in(chair["id"], main["id"], "5")
    line = {"item": chair["id"], "quantity": "1", "warehouse": main["id"]}

    def new_order() -> dict[str, Any]:
        return shop.made(f"{ORDERS}/sales_order", {"account": account["id"], "lines": [line]})

    draft, submitted = new_order(), new_order()
    assert (draft["billing_address"], draft["shipping_address"]) == (hq, hq)
    assert draft["address_display"] == (
        "Bill to: Acme HQ, 1 Main St, 20095 Hamburg, DE\n"
        "Ship to: Acme HQ, 1 Main St, 20095 Hamburg, DE"
    )
    shop.move("sales_order", submitted["id"])
    as_submitted = shop.get(f"{ORDERS}/sales_order/{submitted['id']}")["address_display"]

    # the address is edited: the draft follows, the submitted order keeps its text
    patch(shop, f"{CONTACTS}/address/{hq}", {"street": "2 Harbour Rd"})
    followed = shop.get(f"{ORDERS}/sales_order/{draft['id']}")
    assert "2 Harbour Rd" in followed["address_display"]
    assert "1 Main St" not in followed["address_display"]
    assert shop.get(f"{ORDERS}/sales_order/{submitted['id']}")["address_display"] == as_submitted

    # the customer moves to another address: the draft takes it, for billing and shipping
    annex = address(shop, "Acme Annex", "9 Dock St", "Bremen")
    patch(shop, f"{CONTACTS}/account/{account['id']}", {"billing_address": annex})
    moved = shop.get(f"{ORDERS}/sales_order/{draft['id']}")
    assert (moved["billing_address"], moved["shipping_address"]) == (annex, annex)
    assert moved["address_display"].count("9 Dock St, 20095 Bremen") == 2
    kept = shop.get(f"{ORDERS}/sales_order/{submitted['id']}")
    assert (kept["billing_address"], kept["address_display"]) == (hq, as_submitted)

    # a delivery of the submitted order (a rollup and an adjust of its lines) and its cancel
    # leave the text as submitted
    order_line = kept["lines"][0]
    dn = shop.made(
        f"{ORDERS}/delivery",
        {"sales_order": submitted["id"], "lines": [{**line, "sales_order_line": order_line["id"]}]},
    )
    shop.move("delivery", dn["id"])
    assert shop.get(f"{ORDERS}/sales_order/{submitted['id']}")["address_display"] == as_submitted
    shop.move("delivery", dn["id"], "cancel")
    cancelled = shop.move("sales_order", submitted["id"], "cancel")
    assert cancelled["address_display"] == as_submitted
    # its amendment is a new draft, with today's address
    amended = shop.client.post(f"{ORDERS}/sales_order/{submitted['id']}/_amend").json()["data"]
    assert "9 Dock St" not in amended["address_display"]  # it kept hq as its address
    assert "2 Harbour Rd" in amended["address_display"]
