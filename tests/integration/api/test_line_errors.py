"""Errors of a line item point at the line (``lines[1].product``), and a delete blocked by
a restricting reference does not name the database's tables; SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from pathlib import Path

FILES = {
    "module.yaml": "name: shop\nversion: 1.0.0\n",
    "entities/product.yaml": """\
title: name
fields:
  name: {type: string, required: true, unique: true}
""",
    "entities/order.yaml": """\
fields:
  note:  {type: string}
  lines: {type: children, entity: order_line}
""",
    "entities/order_line.yaml": """\
fields:
  product: {type: reference, to: product, required: true, on_delete: restrict}
  qty:     {type: integer, required: true}
""",
}
ORDERS = "/api/v1/shop/order"


def test_a_lines_reference_errors_point_at_the_line(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "shop", FILES)
    with instance.client() as client:
        product = client.post("/api/v1/shop/product", json={"name": "Bolt"}).json()["data"]
        lines = [
            {"product": product["id"], "qty": 1},
            {"product": {"name": "Nut"}, "qty": 2},  # no such product
        ]
        refused = client.post(ORDERS, json={"lines": lines})
        assert refused.status_code == 422, refused.text
        assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
            ("lines[1].product", "reference")
        ]
        missing_id = client.post(ORDERS, json={"lines": [lines[0], {"product": 999999, "qty": 1}]})
        assert missing_id.status_code == 422, missing_id.text
        assert [e["field"] for e in missing_id.json()["errors"]] == ["lines[1].product"]

        order = client.post(ORDERS, json={"lines": [lines[0]]}).json()["data"]
        stranger = {"id": "987654", "product": product["id"], "qty": 1}
        patched = client.patch(
            f"{ORDERS}/{order['id']}", json={"lines": [*order["lines"], stranger]}
        )
        assert patched.status_code == 422, patched.text
        assert [e["field"] for e in patched.json()["errors"]] == ["lines[1].id"]
        assert client.get(f"{ORDERS}/{order['id']}").json()["data"]["lines"] == order["lines"]

        blocked = client.delete(f"/api/v1/shop/product/{product['id']}")
        assert blocked.status_code == 409, blocked.text
        assert "still referenced" in blocked.json()["detail"]
        assert "shop_order_line" not in blocked.text
        assert "table" not in blocked.text.lower()
