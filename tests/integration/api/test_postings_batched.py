"""A voucher's writes to one table made together (``engine.postings.batch``, PostgreSQL) answer
and store exactly what the one-by-one path does (SQLite, and PostgreSQL for what it cannot
batch): the moves, the order lines' audit rows and asserts (``old`` included), a refusal on
any line rolling back the whole submit, an adjust of a cancelled document refused, the
ledger rows' audit rows, and the cancel's reversal. On PostgreSQL a 5-line delivery's
submit and cancel take a fixed, small number of statements."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

API = "/api/v1/batched"
FILES = {
    "module.yaml": "name: batched\nversion: 1.0.0\n",
    "entities/item.yaml": "fields:\n  sku: {type: string, unique: true, required: true}\n",
    "entities/bin.yaml": """\
balance:
  key: [item]
  limits:
    - {field: qty, min: 0, code: insufficient_stock, message: not enough stock}
fields:
  item:  {type: reference, to: item, required: true}
  qty:   {type: decimal, scale: 3, default: 0}
  twice: {type: decimal, scale: 3, computed: "qty * 2"}
""",
    "entities/stock_move.yaml": """\
ledger: {amounts: [qty_change]}
fields:
  item:       {type: reference, to: item, required: true}
  qty_change: {type: decimal, scale: 3, required: true}
  qty_after:  {type: decimal, scale: 3}
""",
    "entities/order_line.yaml": """\
fields:
  item:      {type: reference, to: item, required: true}
  quantity:  {type: decimal, scale: 3, required: true}
  delivered: {type: decimal, scale: 3, read_only: true}
""",
    "rules/order_line.yaml": """\
- name: within_the_order
  assert: "(delivered or 0) <= quantity"
  field: delivered
  code: over_delivery
  message: more would be delivered than was ordered
- name: never_taken_back_below_what_it_was_halved
  assert: "(delivered or 0) >= (old.delivered or 0) / 2"
  field: delivered
  code: taken_back
  message: a delivery takes back at most half
""",
    "entities/delivery.yaml": """\
document: true
fields:
  lines: {type: children, entity: delivery_line}
""",
    "entities/delivery_line.yaml": """\
fields:
  item:       {type: reference, to: item, required: true}
  quantity:   {type: decimal, scale: 3, required: true}
  order_line: {type: reference, to: order_line}
""",
    "rules/delivery.yaml": """\
- name: deliver
  on: [submit]
  actions:
    - for_each: lines
      post:
        ledger: stock_move
        field: quantity
        values: {item: "{{ line.item }}", qty_change: "{{ -line.quantity }}"}
        balance: {entity: bin, add: {qty: qty_change}, after: {qty_after: qty}}
    - for_each: lines
      adjust:
        entity: order_line
        id: "{{ line.order_line or '' }}"
        add: {delivered: "{{ line.quantity }}"}
        field: quantity
""",
    "entities/invoice.yaml": """\
document: true
fields:
  total: {type: decimal, scale: 2, required: true}
  paid:  {type: decimal, scale: 2, default: 0, read_only: true, allow_on_submit: true}
""",
    "entities/payment.yaml": """\
document: true
fields:
  lines: {type: children, entity: payment_line}
""",
    "entities/payment_line.yaml": """\
fields:
  invoice: {type: reference, to: invoice, required: true}
  amount:  {type: decimal, scale: 2, required: true}
""",
    "rules/payment.yaml": """\
- name: pay
  on: [submit]
  actions:
    - for_each: lines
      adjust:
        entity: invoice
        id: "{{ line.invoice }}"
        add: {paid: "{{ line.amount }}"}
        field: amount
""",
}


PLAIN = {**FILES, "entities/bin.yaml": FILES["entities/bin.yaml"].replace("  twice:", "  # twice:")}
"""The bins without a computed field: their moves are one statement on PostgreSQL."""


@pytest.fixture
def api(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    files = getattr(request, "param", FILES)
    with pack_instance(tmp_path, db_url, "batched", files).client() as client:
        yield client


def made(api: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.fixture
def world(api: TestClient) -> dict[str, Any]:
    """Five items, each with a bin of 10 (moved in by a delivery of -10), and an order line
    of 5 of each."""
    items = [made(api, "item", {"sku": f"S{i}"})["id"] for i in range(5)]
    stock = made(api, "delivery", {"lines": [{"item": i, "quantity": "-10"} for i in items]})
    assert api.post(f"{API}/delivery/{stock['id']}/_submit").status_code == 200
    lines = [made(api, "order_line", {"item": i, "quantity": "5"}) for i in items]
    return {"items": items, "lines": lines}


def deliver(api: TestClient, lines: list[dict[str, Any]], quantities: list[str]) -> Any:
    body = {
        "lines": [
            {"item": line["item"], "quantity": q, "order_line": line["id"]}
            for line, q in zip(lines, quantities, strict=True)
        ]
    }
    return made(api, "delivery", body)


def state(api: TestClient) -> tuple[list[Decimal], list[Decimal | None], int]:
    bins = api.get(f"{API}/bin", params={"sort": "item"}).json()["data"]
    lines = api.get(f"{API}/order_line", params={"sort": "id"}).json()["data"]
    moves = api.get(f"{API}/stock_move", params={"limit": 1000}).json()["data"]
    delivered = [Decimal(x["delivered"]) if x["delivered"] is not None else None for x in lines]
    return [Decimal(b["qty"]) for b in bins], delivered, len(moves)


def test_a_delivery_moves_every_line_audits_each_and_its_cancel_reverses_them(
    api: TestClient, world: dict[str, Any]
) -> None:
    delivery = deliver(api, world["lines"], ["1", "2", "3", "1.5", "0.25"])
    done = api.post(f"{API}/delivery/{delivery['id']}/_submit")
    assert done.status_code == 200, done.text
    assert done.json()["data"]["lines"][4]["quantity"] == "0.250"
    bins, delivered, moves = state(api)
    assert bins == [9, 8, 7, Decimal("8.5"), Decimal("9.75")]
    assert delivered == [1, 2, 3, Decimal("1.5"), Decimal("0.25")]
    assert moves == 10
    twice = [b["twice"] for b in api.get(f"{API}/bin", params={"sort": "item"}).json()["data"]]
    assert twice == ["18.000", "16.000", "14.000", "17.000", "19.500"]  # computed, each move
    rows = api.get(f"{API}/stock_move", params={"voucher_id": delivery["id"], "sort": "id"})
    assert [r["qty_after"] for r in rows.json()["data"]] == [
        "9.000",
        "8.000",
        "7.000",
        "8.500",
        "9.750",
    ]
    for row in rows.json()["data"]:
        trail = api.get(f"{API}/stock_move/{row['id']}/_history").json()["data"]
        assert [e["action"] for e in trail] == ["create"]
        assert trail[0]["changes"]["qty_change"] == [None, row["qty_change"]]
    line = world["lines"][3]
    trail = api.get(f"{API}/order_line/{line['id']}/_history").json()["data"]
    assert trail[-1]["action"] == "update"
    assert trail[-1]["changes"] == {"delivered": [None, "1.500"]}
    again = deliver(api, world["lines"], ["1", "1", "1", "1", "0.25"])
    assert api.post(f"{API}/delivery/{again['id']}/_submit").status_code == 200
    trail = api.get(f"{API}/order_line/{line['id']}/_history").json()["data"]
    assert trail[-1]["changes"] == {"delivered": ["1.500", "2.500"]}
    cancelled = api.post(f"{API}/delivery/{again['id']}/_cancel")
    assert cancelled.status_code == 200, cancelled.text
    bins, delivered, moves = state(api)
    assert bins == [9, 8, 7, Decimal("8.5"), Decimal("9.75")]
    assert delivered == [1, 2, 3, Decimal("1.5"), Decimal("0.25")]
    assert moves == 20
    twice = [b["twice"] for b in api.get(f"{API}/bin", params={"sort": "item"}).json()["data"]]
    assert twice == ["18.000", "16.000", "14.000", "17.000", "19.500"]
    trail = api.get(f"{API}/order_line/{line['id']}/_history").json()["data"]
    assert trail[-1]["changes"] == {"delivered": ["2.500", "1.500"]}


@pytest.mark.parametrize(
    ("quantities", "status", "code", "field"),
    [
        (["1", "6", "1", "1", "1"], 422, "over_delivery", "delivered"),
        (["1", "1", "1", "1", "11"], 409, "insufficient_stock", "lines[4].quantity"),
    ],
)
def test_a_refusal_on_any_line_writes_nothing(
    api: TestClient,
    world: dict[str, Any],
    quantities: list[str],
    status: int,
    code: str,
    field: str,
) -> None:
    """The second line over-delivers its order line; the fifth takes its bin below zero."""
    refused_with(api, world, quantities, status, code, field)


def test_an_order_lines_rule_on_its_old_value_judges_the_adjust(
    api: TestClient, world: dict[str, Any]
) -> None:
    first = deliver(api, world["lines"], ["1", "4", "1", "1", "1"])
    assert api.post(f"{API}/delivery/{first['id']}/_submit").status_code == 200
    refused_with(api, world, ["1", "-3", "1", "1", "1"], 422, "taken_back", "delivered")
    back = deliver(api, world["lines"], ["1", "-2", "1", "1", "1"])
    assert api.post(f"{API}/delivery/{back['id']}/_submit").status_code == 200
    assert state(api)[1] == [2, 2, 2, 2, 2]


def refused_with(
    api: TestClient,
    world: dict[str, Any],
    quantities: list[str],
    status: int,
    code: str,
    field: str,
) -> None:
    before = state(api)
    delivery = deliver(api, world["lines"], quantities)
    refused = api.post(f"{API}/delivery/{delivery['id']}/_submit")
    assert refused.status_code == status, refused.text
    problem = refused.json()
    assert problem["code"] == code
    assert [e["field"] for e in problem["errors"]] == [field]
    assert state(api) == before
    assert api.get(f"{API}/delivery/{delivery['id']}").json()["data"]["docstatus"] == "draft"


def test_a_payment_cannot_adjust_a_cancelled_invoice(api: TestClient) -> None:
    invoices = [made(api, "invoice", {"total": "100"})["id"] for _ in range(3)]
    for invoice in invoices:
        assert api.post(f"{API}/invoice/{invoice}/_submit").status_code == 200
    body = {"lines": [{"invoice": i, "amount": "40.5"} for i in invoices]}
    payment = made(api, "payment", body)
    assert api.post(f"{API}/payment/{payment['id']}/_submit").status_code == 200
    paid = [api.get(f"{API}/invoice/{i}").json()["data"]["paid"] for i in invoices]
    assert paid == ["40.50", "40.50", "40.50"]
    assert api.post(f"{API}/invoice/{invoices[2]}/_cancel").status_code == 200
    late = made(api, "payment", body)
    refused = api.post(f"{API}/payment/{late['id']}/_submit")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "cancelled"
    paid = [api.get(f"{API}/invoice/{i}").json()["data"]["paid"] for i in invoices]
    assert paid == ["40.50", "40.50", "40.50"]


@pytest.mark.parametrize("api", [PLAIN], indirect=True, ids=["plain_bins"])
@pytest.mark.only_on("postgresql")  # SQLite writes one row at a time
def test_on_postgresql_a_delivery_takes_a_fixed_number_of_statements(
    api: TestClient, world: dict[str, Any], backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the document with its lines, its status with its audit row (one statement),
    one SELECT finding the bins, one UPDATE moving them, one UPDATE of the order lines, and
    one INSERT of the ledger rows with their audit rows, the order lines' audit rows and
    the journal (batch.Tail). The cancel reads the journal and the ledger rows instead of
    the bins, and writes no journal."""
    import engine.database as database

    statements: list[str] = []
    for method in ("fetch", "fetchrow", "execute"):
        original = getattr(database._PostgresConnection, method)

        async def counted(self: Any, sql: str, args: Any, _original: Any = original) -> Any:
            statements.append(sql)
            return await _original(self, sql, args)

        monkeypatch.setattr(database._PostgresConnection, method, counted)
    first = deliver(api, world["lines"], ["1", "1", "1", "1", "1"])
    assert api.post(f"{API}/delivery/{first['id']}/_submit").status_code == 200
    delivery = deliver(api, world["lines"], ["1", "1", "1", "1", "1"])
    statements.clear()
    assert api.post(f"{API}/delivery/{delivery['id']}/_submit").status_code == 200
    assert len(statements) == 6, statements
    assert "INSERT INTO tessera_posting" in statements[-1], statements[-1]
    assert "INSERT INTO tessera_audit" in statements[-1], statements[-1]
    statements.clear()
    assert api.post(f"{API}/delivery/{delivery['id']}/_cancel").status_code == 200
    assert len(statements) == 7, statements
