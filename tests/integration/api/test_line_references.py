"""A line item's expressions traverse its references (``product.standard_rate``) on every
write path of the parent (create, PATCH, upsert, ``_bulk``), the parent's expressions read
the lines' computed values, ``required_if`` applies to line fields, and every error points at
``lines[i].field``; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance
from tests.integration.api.test_references import StatementLog, _LoggingDatabase

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

SHOP = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/product.yaml": """\
title: name
fields:
  code:          {type: string, required: true, unique: true}
  name:          {type: string, required: true}
  standard_rate: {type: decimal, precision: 12, scale: 2}
  active:        {type: boolean, default: true}
""",
    "entities/order.yaml": """\
fields:
  ref:   {type: string, required: true, unique: true}
  lines: {type: children, entity: order_line}
  total:
    type: decimal
    precision: 14
    scale: 2
    computed: "lines | rejectattr('amount', 'none') | sum(attribute='amount')"
""",
    "entities/order_line.yaml": """\
fields:
  product:  {type: reference, to: product, required: true}
  qty:      {type: integer, required: true, min: 1}
  rate:     {type: decimal, precision: 12, scale: 2, computed: "product.standard_rate"}
  amount:   {type: decimal, precision: 14, scale: 2, computed: "qty * rate"}
  label:    {type: string, computed: "product.name ~ ' x' ~ qty"}
  discount: {type: integer, min: 0, max: 100}
  reason:   {type: string, required_if: "discount and discount > 10"}
  note:     {type: string, default: "{{ product.name }} ({{ product.code }})"}
""",
    "rules/order.yaml": """\
- name: within_budget
  assert: "total is none or total <= 10000"
  field: total
  message: An order is at most 10000
""",
    "rules/order_line.yaml": """\
- name: product_is_active
  assert: "product.active"
  field: product
  message: The product is discontinued
- name: rate_known
  when: "qty > 100"
  assert: "product.standard_rate is not none"
  field: qty
  message: Large quantities need a product with a standard rate
""",
}
URL = "/api/v1/shop"
ORDERS = f"{URL}/order"


@pytest.fixture
def logged(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, StatementLog]]:
    instance = pack_instance(tmp_path, db_url, "shop", SHOP)
    log = StatementLog()
    with instance.client() as client:
        holder = client.app.state.database  # type: ignore[attr-defined]
        real = holder.database
        holder.database = _LoggingDatabase(real, log)
        try:
            yield client, log
        finally:
            holder.database = real


def product(client: TestClient, code: str, rate: str | None, **values: Any) -> str:
    body = {"code": code, "name": code.title(), "standard_rate": rate, **values}
    response = client.post(f"{URL}/product", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def errors(response: Any) -> list[tuple[str, str, int | None]]:
    assert response.status_code == 422, response.text
    return sorted((e["field"], e["message"], e.get("index")) for e in response.json()["errors"])


def amounts(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(line["rate"], line["amount"], line["label"]) for line in record["lines"]]


def test_line_expressions_read_the_lines_references_on_every_write(
    logged: tuple[TestClient, StatementLog],
) -> None:
    client, _ = logged
    bolt, nut = product(client, "bolt", "0.25"), product(client, "nut", "0.10")
    old = product(client, "old", "1.00", active=False)
    free = product(client, "free", None)

    created = client.post(
        ORDERS,
        json={"ref": "O-1", "lines": [{"product": bolt, "qty": 8}, {"product": nut, "qty": 5}]},
    )
    assert created.status_code == 201, created.text
    order = created.json()["data"]
    assert amounts(order) == [("0.25", "2.00", "Bolt x8"), ("0.10", "0.50", "Nut x5")]
    assert order["total"] == "2.50"  # the parent reads its lines' computed amounts
    assert [line["note"] for line in order["lines"]] == ["Bolt (bolt)", "Nut (nut)"]

    by_key = client.post(
        ORDERS,
        json={"ref": "O-2", "lines": [{"product": {"code": "nut"}, "qty": 3, "note": "mine"}]},
    )
    assert by_key.status_code == 201, by_key.text
    assert amounts(by_key.json()["data"]) == [("0.10", "0.30", "Nut x3")]
    assert by_key.json()["data"]["lines"][0]["note"] == "mine"  # a default gives way
    assert by_key.json()["data"]["total"] == "0.30"

    url = f"{ORDERS}/{order['id']}"
    first = {k: order["lines"][0][k] for k in ("id", "product", "qty")}
    patched = client.patch(
        url, json={"lines": [{**first, "product": nut}, {"product": bolt, "qty": 1}]}
    )
    assert patched.status_code == 200, patched.text
    assert amounts(patched.json()["data"]) == [
        ("0.10", "0.80", "Nut x8"),
        ("0.25", "0.25", "Bolt x1"),
    ]
    assert patched.json()["data"]["total"] == "1.05"
    kept = [
        {k: line[k] for k in ("id", "product", "qty")} for line in patched.json()["data"]["lines"]
    ]
    qty_only = client.patch(url, json={"lines": [{**kept[0], "qty": 10}, kept[1]]})
    assert qty_only.status_code == 200, qty_only.text
    assert amounts(qty_only.json()["data"]) == [
        ("0.10", "1.00", "Nut x10"),
        ("0.25", "0.25", "Bolt x1"),
    ]
    assert qty_only.json()["data"]["total"] == "1.25"

    upserted = client.put(f"{ORDERS}/by/ref/O-3", json={"lines": [{"product": bolt, "qty": 4}]})
    assert upserted.status_code == 201, upserted.text
    assert upserted.json()["data"]["total"] == "1.00"
    updated = client.put(
        f"{ORDERS}/by/ref/O-3", json={"lines": [{"product": {"code": "nut"}, "qty": 4}]}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"]["total"] == "0.40"

    bad = [
        {"product": old, "qty": 1},
        {"product": free, "qty": 101},
        {"product": bolt, "qty": 50000},
    ]
    refused = client.post(ORDERS, json={"ref": "O-4", "lines": bad})
    assert errors(refused) == [  # the lines' rules with the parent's, at once
        ("lines[0].product", "The product is discontinued", None),
        ("lines[1].qty", "Large quantities need a product with a standard rate", None),
        ("total", "An order is at most 10000", None),
    ]
    refused = client.patch(url, json={"lines": [kept[0], *bad[:2]]})
    assert errors(refused) == [
        ("lines[1].product", "The product is discontinued", None),
        ("lines[2].qty", "Large quantities need a product with a standard rate", None),
    ]
    reasonless = {"product": bolt, "qty": 1, "discount": 20}
    refused = client.put(f"{ORDERS}/by/ref/O-3", json={"lines": [kept[0], reasonless]})
    assert errors(refused) == [
        ("lines[1].reason", "is required when discount and discount > 10", None)
    ]
    refused = client.patch(url, json={"lines": [{**kept[0], "discount": 11}, reasonless]})
    assert errors(refused) == [
        ("lines[0].reason", "is required when discount and discount > 10", None),
        ("lines[1].reason", "is required when discount and discount > 10", None),
    ]
    unknown = client.post(
        ORDERS, json={"ref": "O-5", "lines": [kept[1], {"product": {"code": "nope"}, "qty": 1}]}
    )
    assert errors(unknown) == [
        ("lines[1].product", "no shop.product record with code = 'nope'", None)
    ]
    gone = {"product": "987654", "qty": 1}  # read as a missing record, not as an expression
    unknown = client.post(ORDERS, json={"ref": "O-5", "lines": [reasonless, gone]})
    assert errors(unknown) == [
        ("lines[0].reason", "is required when discount and discount > 10", None),
        ("lines[1].product", "refers to a record that does not exist", None),
    ]
    reasoned = client.patch(url, json={"lines": [{**reasonless, "reason": "bulk deal"}]})
    assert reasoned.status_code == 200, reasoned.text
    assert reasoned.json()["data"]["total"] == "0.25"
    assert len(client.get(ORDERS).json()["data"]) == 3


def test_a_bulk_request_loads_the_lines_references_once_per_entity(
    logged: tuple[TestClient, StatementLog],
) -> None:
    client, log = logged
    products = [product(client, f"p{n}", f"{n}.50") for n in range(4)]
    items = [
        {
            "ref": f"B-{n}",
            "lines": [{"product": products[(n + i) % 4], "qty": i + 1} for i in range(3)],
        }
        for n in range(20)
    ]
    log.statements.clear()
    created = client.post(f"{ORDERS}/_bulk", json=items)
    assert created.status_code == 201, created.text
    records = created.json()["data"]
    assert records[1]["lines"][0]["rate"] == "1.50"
    assert records[1]["total"] == "17.00"  # 1 x 1.50 + 2 x 2.50 + 3 x 3.50
    assert log.reading("shop_product") == 1  # one batch for 20 orders, 60 lines, 4 products

    refused = client.post(
        f"{ORDERS}/_bulk",
        json=[
            {"ref": "C-1"},
            {"ref": "C-2", "lines": [{"product": products[0], "qty": 1, "discount": 50}]},
        ],
    )
    assert errors(refused) == [
        ("lines[0].reason", "is required when discount and discount > 10", 1)
    ]
