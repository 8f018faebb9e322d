"""Actions that map documents (SPEC §3.3): a ``create`` fills the new record's line items
from the record's (``lines: {from, to, map}``), an ``update`` writes another record
(``entity`` + ``id``, or those a ``where`` selects), and ``for_each: lines`` runs an action
once per line; each write is a normal write of its target (its validation, rules and audit)
in the triggering write's transaction, so that a failure rolls everything back. On SQLite
and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FLOW = {
    "module.yaml": 'name: flow\nversion: "1.0.0"\n',
    "entities/customer.yaml": "title: name\nfields:\n  name: {type: string, required: true}\n",
    "entities/opportunity.yaml": """\
fields:
  title:    {type: string, required: true}
  customer: {type: reference, to: customer, required: true}
  won:      {type: boolean, default: false}
  lost:     {type: boolean, default: false}
  lines:    {type: children, entity: opportunity_line}
""",
    "entities/opportunity_line.yaml": """\
fields:
  item:  {type: string, required: true}
  qty:   {type: integer, required: true}
  price: {type: decimal, precision: 12, scale: 2}
""",
    "entities/sales_order.yaml": """\
fields:
  customer:    {type: reference, to: customer, required: true}
  opportunity: {type: reference, to: opportunity}
  status:      {type: enum, values: [open, delivered, cancelled], default: open}
  items:       {type: children, entity: order_line}
  delivered:   {type: integer, computed: "items | sum(attribute='delivered_qty')"}
""",
    "entities/order_line.yaml": """\
fields:
  item:          {type: string, required: true}
  qty:           {type: integer, required: true}
  amount:        {type: decimal, precision: 12, scale: 2}
  delivered_qty: {type: integer, min: 0, default: 0}
""",
    "entities/delivery.yaml": """\
fields:
  order: {type: reference, to: sales_order, required: true}
  lines: {type: children, entity: delivery_line}
""",
    "entities/delivery_line.yaml": """\
fields:
  order_line: {type: integer, required: true}
  delivered:  {type: integer, required: true}
""",
    "rules/opportunity.yaml": """\
- name: won_makes_an_order
  on: update
  when: "won and changed('won')"
  actions:
    - create:
        entity: sales_order
        values: {customer: "{{ customer }}", opportunity: "{{ id }}"}
        lines:
          from: lines
          to: items
          map:
            item: "{{ line.item }}"
            qty: "{{ line.qty }}"
            amount: "{{ line.price and line.qty * line.price }}"
- name: lost_cancels_its_open_orders
  on: update
  when: "lost and changed('lost')"
  actions:
    - update:
        entity: sales_order
        where: {opportunity: "{{ id }}", status: open}
        values: {status: cancelled}
""",
    "rules/order_line.yaml": """\
- name: not_over_delivered
  assert: "delivered_qty is none or delivered_qty <= qty"
  field: delivered_qty
  message: More than ordered
""",
    "rules/delivery.yaml": """\
- name: delivering_marks_the_order
  on: create
  actions:
    - for_each: lines
      update:
        entity: order_line
        id: "{{ line.order_line }}"
        values: {delivered_qty: "{{ line.delivered }}"}
    - update: {entity: sales_order, id: "{{ order }}", values: {status: delivered}}
""",
}
URL = "/api/v1/flow"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "flow", FLOW)
    with instance.client() as client:
        yield client


def post(client: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{URL}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def orders(client: TestClient) -> list[dict[str, Any]]:
    response = client.get(f"{URL}/sales_order", params={"sort": "id"})
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["data"]
    return [client.get(f"{URL}/sales_order/{o['id']}").json()["data"] for o in listed]


def opportunity(client: TestClient) -> dict[str, Any]:
    acme = post(client, "customer", {"name": "Acme"})
    lines = [{"item": "bolt", "qty": 3, "price": "0.50"}, {"item": "nut", "qty": 10}]
    return post(client, "opportunity", {"title": "Big", "customer": acme["id"], "lines": lines})


def test_a_won_opportunity_becomes_an_order_with_its_lines(client: TestClient) -> None:
    deal = opportunity(client)
    assert orders(client) == []
    won = client.patch(f"{URL}/opportunity/{deal['id']}", json={"won": True})
    assert won.status_code == 200, won.text
    (order,) = orders(client)
    assert order["customer"] == deal["customer"]
    assert order["opportunity"] == deal["id"]
    assert [(x["item"], x["qty"], x["amount"], x["delivered_qty"]) for x in order["items"]] == [
        ("bolt", 3, "1.50", 0),
        ("nut", 10, None, 0),
    ]
    again = client.patch(f"{URL}/opportunity/{deal['id']}", json={"title": "Bigger"})
    assert again.status_code == 200, again.text
    assert len(orders(client)) == 1  # 'when' held only when it was won


def test_a_mapped_line_the_target_refuses_rolls_the_write_back(client: TestClient) -> None:
    deal = opportunity(client)
    bad = [{"id": deal["lines"][0]["id"], "item": "bolt", "qty": 3, "price": "1e20"}]
    refused = client.patch(f"{URL}/opportunity/{deal['id']}", json={"won": True, "lines": bad})
    assert refused.status_code == 422, refused.text
    assert orders(client) == []
    stored = client.get(f"{URL}/opportunity/{deal['id']}").json()["data"]
    assert stored["won"] is False
    assert [x["price"] for x in stored["lines"]] == ["0.50", None]


def delivered(client: TestClient) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    (order,) = orders(client)
    return order, [(x["item"], x["delivered_qty"]) for x in order["items"]]


def test_a_delivery_updates_each_order_line_and_the_order(client: TestClient) -> None:
    deal = opportunity(client)
    client.patch(f"{URL}/opportunity/{deal['id']}", json={"won": True})
    order, _ = delivered(client)
    bolt, nut = (int(x["id"]) for x in order["items"])
    body = {
        "order": order["id"],
        "lines": [{"order_line": bolt, "delivered": 2}, {"order_line": nut, "delivered": 10}],
    }
    post(client, "delivery", body)
    order, lines = delivered(client)
    assert lines == [("bolt", 2), ("nut", 10)]
    assert order["status"] == "delivered"
    assert order["delivered"] == 12  # the order reads its lines as the actions left them


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"delivered": -1}, "delivered_qty"),
        ({"delivered": 11}, "More than ordered"),  # the line entity's own assert
        ({"order_line": 999999}, "flow.order_line 999999 does not exist"),
        ({"order_line": -3}, "flow.order_line -3 does not exist"),
        ({"order_line": 2**62}, f"{2**62} is not an id of flow.order_line"),
    ],
)
def test_a_failed_line_update_rolls_the_delivery_back(
    client: TestClient, line: dict[str, Any], reason: str
) -> None:
    deal = opportunity(client)
    client.patch(f"{URL}/opportunity/{deal['id']}", json={"won": True})
    order, _ = delivered(client)
    bolt, nut = (int(x["id"]) for x in order["items"])
    lines = [{"order_line": bolt, "delivered": 2}, {"order_line": nut, "delivered": 1, **line}]
    refused = client.post(f"{URL}/delivery", json={"order": order["id"], "lines": lines})
    assert refused.status_code == 422, refused.text
    assert reason in refused.text
    order, lines_now = delivered(client)
    assert lines_now == [("bolt", 0), ("nut", 0)]  # the first line's update is rolled back
    assert order["status"] == "open"
    assert client.get(f"{URL}/delivery").json()["data"] == []


def test_a_lost_opportunity_cancels_the_open_orders_its_where_selects(
    client: TestClient,
) -> None:
    deal, other = opportunity(client), opportunity(client)
    mine = [
        post(client, "sales_order", {"customer": deal["customer"], "opportunity": deal["id"]}),
        post(
            client,
            "sales_order",
            {"customer": deal["customer"], "opportunity": deal["id"], "status": "delivered"},
        ),
        post(client, "sales_order", {"customer": deal["customer"], "opportunity": deal["id"]}),
    ]
    theirs = post(
        client, "sales_order", {"customer": other["customer"], "opportunity": other["id"]}
    )
    lost = client.patch(f"{URL}/opportunity/{deal['id']}", json={"lost": True})
    assert lost.status_code == 200, lost.text
    status = {o["id"]: o["status"] for o in orders(client)}
    assert [status[o["id"]] for o in mine] == ["cancelled", "delivered", "cancelled"]
    assert status[theirs["id"]] == "open"
    history = client.get(f"{URL}/sales_order/{mine[0]['id']}/_history")
    assert history.status_code == 200, history.text  # a normal, audited write
    entries = history.json()["data"]
    assert [e["action"] for e in entries] == ["create", "update"]
    assert entries[-1]["changes"] == {"status": ["open", "cancelled"]}


def test_the_meta_api_describes_the_mapping_actions(client: TestClient) -> None:
    meta = client.get("/api/v1/_meta/entities")
    assert meta.status_code == 200, meta.text
    rules = {e["name"]: e["rules"] for e in meta.json()["data"]}
    (each, header) = rules["flow.delivery"][0]["actions"]
    assert each == {
        "for_each": "lines",
        "update": {
            "entity": "flow.order_line",
            "values": {"delivered_qty": "{{ line.delivered }}"},
            "id": "{{ line.order_line }}",
        },
    }
    assert header["update"]["id"] == "{{ order }}"
    won, lost = rules["flow.opportunity"]
    assert won["actions"][0]["create"]["lines"] == {
        "from": "lines",
        "to": "items",
        "map": {
            "item": "{{ line.item }}",
            "qty": "{{ line.qty }}",
            "amount": "{{ line.price and line.qty * line.price }}",
        },
    }
    assert lost["actions"][0]["update"]["where"] == {"opportunity": "{{ id }}", "status": "open"}
