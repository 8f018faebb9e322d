"""The orders pack's roles through HTTP: a sales clerk submits orders but ships nothing, a
warehouse clerk ships and receives but takes no orders, a purchaser orders from vendors,
a viewer reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import bearer
from tests.modules.orders.conftest import CONTACTS, INVENTORY, ORDERS, Shop

if TYPE_CHECKING:
    from tests.conftest import Instance


def test_each_role_does_its_part(orders: Instance, shop: Shop) -> None:
    account = shop.made(f"{CONTACTS}/account", {"name": "Acme", "type": "customer"})
    vendor = shop.made(f"{CONTACTS}/account", {"name": "Woodworks", "type": "vendor"})
    chair = shop.made(f"{INVENTORY}/item", {"sku": "CHAIR", "name": "Chair"})
    main = shop.made(f"{INVENTORY}/warehouse", {"name": "Main"})
    shop.stock_in(chair["id"], main["id"], "5")
    line = {"item": chair["id"], "quantity": "2", "rate": "40.00", "warehouse": main["id"]}
    client = shop.client

    def as_(user: str, role: str) -> dict[str, str]:
        return bearer(orders.token(user, (role,)))

    sam, wes, pam, vic = (
        as_("sam", "sales_clerk"),
        as_("wes", "warehouse_clerk"),
        as_("pam", "purchaser"),
        as_("vic", "orders_viewer"),
    )
    so = client.post(
        f"{ORDERS}/sales_order", json={"account": account["id"], "lines": [line]}, headers=sam
    )
    assert so.status_code == 201, so.text
    so_id = so.json()["data"]["id"]
    assert client.post(f"{ORDERS}/sales_order/{so_id}/_submit", headers=wes).status_code == 403
    assert client.post(f"{ORDERS}/sales_order/{so_id}/_submit", headers=sam).status_code == 200
    order_line = client.get(f"{ORDERS}/sales_order/{so_id}", headers=vic).json()["data"]["lines"][0]

    body = {
        "sales_order": so_id,
        "lines": [
            {
                **{k: line[k] for k in ("item", "quantity", "warehouse")},
                "sales_order_line": order_line["id"],
            }
        ],
    }
    assert client.post(f"{ORDERS}/delivery", json=body, headers=sam).status_code == 403
    dn = client.post(f"{ORDERS}/delivery", json=body, headers=wes)
    assert dn.status_code == 201, dn.text
    dn_id = dn.json()["data"]["id"]
    assert client.post(f"{ORDERS}/delivery/{dn_id}/_submit", headers=wes).status_code == 200
    tracked = client.patch(
        f"{ORDERS}/delivery/{dn_id}", json={"tracking_number": "1Z999"}, headers=wes
    )
    assert tracked.status_code == 200, tracked.text
    assert client.get(f"{ORDERS}/sales_order/{so_id}", headers=vic).json()["data"]["status"] == (
        "to_bill"
    )

    po_body = {"account": vendor["id"], "lines": [line]}
    assert client.post(f"{ORDERS}/purchase_order", json=po_body, headers=sam).status_code == 403
    po = client.post(f"{ORDERS}/purchase_order", json=po_body, headers=pam)
    assert po.status_code == 201, po.text
    assert client.post(f"{ORDERS}/purchase_order", json=po_body, headers=vic).status_code == 403
    assert client.get(f"{INVENTORY}/bin", headers=vic).status_code == 200
