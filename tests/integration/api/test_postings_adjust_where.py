"""``adjust`` with ``where``, on SQLite and PostgreSQL: a delivery line without an order
line is matched to the order's line of the same item (``_parent`` and ``item``); a line
that names its order line must still match (same order, same item); no match or several
refuse the submit at the line, writing nothing; cancel reverses the match it made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance
from tests.support.ledger_packs import API, FILES
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

DELIVER = """\
- name: deliver
  on: [submit]
  actions:
    - for_each: lines
      post:
        ledger: stock_ledger_entry
        field: quantity
        values:
          item: "{{ line.item }}"
          warehouse: "{{ line.warehouse }}"
          posting_date: "{{ posting_date }}"
          qty_change: "{{ -line.quantity }}"
        balance: {entity: bin, add: {actual_qty: qty_change}, after: {qty_after: actual_qty}}
    - for_each: lines
      adjust:
        entity: sales_order_line
        id: "{{ line.sales_order_line or '' }}"
        where: {_parent: "{{ sales_order }}", item: "{{ line.item }}"}
        add: {delivered_qty: "{{ line.quantity }}"}
        field: quantity
"""


@pytest.fixture
def stock(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "stock", {**FILES, "rules/delivery.yaml": DELIVER})


@pytest.fixture
def api(stock: Instance) -> Iterator[TestClient]:
    with stock.client() as client:
        yield client
    assert_no_drift(stock.settings)


def made(api: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
def world(api: TestClient) -> dict[str, Any]:
    items = [made(api, "item", {"sku": sku})["id"] for sku in ("A", "B", "C")]
    wh = made(api, "warehouse", {"name": "Main"})["id"]
    receipt = made(
        api,
        "stock_entry",
        {
            "purpose": "receipt",
            "lines": [{"item": i, "warehouse": wh, "quantity": "50"} for i in items],
        },
    )
    assert api.post(f"{API}/stock_entry/{receipt['id']}/_submit").status_code == 200
    order = made(
        api,
        "sales_order",
        {
            "lines": [
                {"item": items[0], "warehouse": wh, "quantity": "5"},
                {"item": items[1], "warehouse": wh, "quantity": "3"},
                {"item": items[2], "warehouse": wh, "quantity": "1"},
                {"item": items[2], "warehouse": wh, "quantity": "1"},
            ]
        },
    )
    other = made(
        api, "sales_order", {"lines": [{"item": items[0], "warehouse": wh, "quantity": "9"}]}
    )
    return {"items": items, "wh": wh, "order": order, "other": other}


def deliver(api: TestClient, w: dict[str, Any], *lines: dict[str, Any]) -> Any:
    body = {
        "sales_order": w["order"]["id"],
        "posting_date": "2026-12-01",
        "lines": [{"warehouse": w["wh"], **line} for line in lines],
    }
    delivery = made(api, "delivery", body)
    return delivery["id"], api.post(f"{API}/delivery/{delivery['id']}/_submit")


def delivered(api: TestClient, order: dict[str, Any]) -> list[str]:
    lines = api.get(f"{API}/sales_order/{order['id']}").json()["data"]["lines"]
    return [line["delivered_qty"] for line in lines]


def test_a_line_without_its_order_line_is_matched_by_item(
    api: TestClient, world: dict[str, Any]
) -> None:
    a, b, _ = world["items"]
    ident, response = deliver(
        api, world, {"item": b, "quantity": "2"}, {"item": a, "quantity": "1"}
    )
    assert response.status_code == 200, response.text
    assert delivered(api, world["order"]) == ["1.000", "2.000", "0.000", "0.000"]
    assert delivered(api, world["other"]) == ["0.000"]
    assert api.post(f"{API}/delivery/{ident}/_cancel").status_code == 200
    assert delivered(api, world["order"]) == ["0.000", "0.000", "0.000", "0.000"]


def test_a_named_order_line_must_match_too(api: TestClient, world: dict[str, Any]) -> None:
    a, b, _ = world["items"]
    line_a = world["order"]["lines"][0]["id"]
    _, ok = deliver(api, world, {"item": a, "quantity": "2", "sales_order_line": line_a})
    assert ok.status_code == 200, ok.text
    other_line = world["other"]["lines"][0]["id"]
    _, wrong_order = deliver(
        api, world, {"item": a, "quantity": "1", "sales_order_line": other_line}
    )
    _, wrong_item = deliver(api, world, {"item": b, "quantity": "1", "sales_order_line": line_a})
    for response in (wrong_order, wrong_item):
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert (error["field"], error["code"]) == ("lines[0].quantity", "not_found")
    assert delivered(api, world["order"])[0] == "2.000"
    assert delivered(api, world["other"]) == ["0.000"]


def test_no_match_or_several_refuse_the_submit_whole(
    api: TestClient, world: dict[str, Any]
) -> None:
    a, _, c = world["items"]
    stray = made(api, "item", {"sku": "STRAY"})["id"]
    for line, code in (({"item": stray}, "not_found"), ({"item": c}, "ambiguous")):
        ident, response = deliver(
            api, world, {"item": a, "quantity": "1"}, {**line, "quantity": "1"}
        )
        assert response.status_code == 422, response.text
        error = response.json()["errors"][0]
        assert (error["field"], error["code"]) == ("lines[1].quantity", code)
        assert "sales_order_line" in error["message"]
        assert api.get(f"{API}/delivery/{ident}").json()["data"]["docstatus"] == "draft"
    assert delivered(api, world["order"]) == ["0.000", "0.000", "0.000", "0.000"]
    assert api.get(f"{API}/stock_ledger_entry?qty_change__lt=0").json()["data"] == []
