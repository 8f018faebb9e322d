"""Values a posting works out from the rows it locks, on SQLite and PostgreSQL
(docs/ledgers.md, "Values from the balance row"): a ``post``'s ``compute`` fills ledger
fields from its balance row as locked (a moving average: an issue valued at the bin's
rate, a transfer's incoming row at what its outgoing row took, through ``posted``), a
balance's computed fields follow every move and its reversal, and ``for_each`` runs over
the lines of a referenced record (a kit's parts). No rollup drift after."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.ledger_packs import API, FILES
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PACK = {
    "module.yaml": FILES["module.yaml"],
    "entities/warehouse.yaml": FILES["entities/warehouse.yaml"],
    "entities/item.yaml": """\
fields:
  sku: {type: string, unique: true, required: true}
  value: {type: decimal, scale: 2}
""",
    "entities/bin.yaml": """\
balance:
  key: [item, warehouse]
  limits:
    - {field: actual_qty, min: 0, code: insufficient_stock, message: "not enough stock"}
fields:
  item:       {type: reference, to: item, required: true}
  warehouse:  {type: reference, to: warehouse, required: true}
  actual_qty: {type: decimal, scale: 3, default: 0}
  value:      {type: decimal, scale: 2, default: 0}
  rate:
    type: decimal
    scale: 4
    computed: "value / actual_qty if actual_qty else (old.rate if old else 0)"
  doubled:    {type: decimal, scale: 3, computed: "actual_qty * 2"}
rollups:
  - {to: item.value, via: item, sum: value}
""",
    "entities/stock_ledger_entry.yaml": """\
ledger: {amounts: [qty_change, value_change], date: posting_date}
fields:
  item:         {type: reference, to: item, required: true}
  warehouse:    {type: reference, to: warehouse, required: true}
  posting_date: {type: date}
  qty_change:   {type: decimal, scale: 3, required: true}
  value_change: {type: decimal, scale: 2, default: 0}
  in_rate:      {type: decimal, scale: 4}
  rate_after:   {type: decimal, scale: 4}
""",
    "entities/kit.yaml": """\
fields:
  name: {type: string}
  parts: {type: children, entity: kit_part}
""",
    "entities/kit_part.yaml": """\
fields:
  item:     {type: reference, to: item, required: true}
  quantity: {type: decimal, scale: 3, required: true}
""",
    "entities/stock_entry.yaml": """\
document: true
fields:
  purpose:      {type: enum, values: [receipt, issue, transfer, kit], required: true}
  posting_date: {type: date}
  to_warehouse: {type: reference, to: warehouse}
  kit:          {type: reference, to: kit}
  lines:        {type: children, entity: stock_entry_line}
""",
    "entities/stock_entry_line.yaml": """\
fields:
  item:      {type: reference, to: item, required: true}
  warehouse: {type: reference, to: warehouse, required: true}
  quantity:  {type: decimal, scale: 3, required: true, min: 0.001}
  rate:      {type: decimal, scale: 4}
""",
    "rules/stock_entry.yaml": """\
- name: receive
  on: [submit]
  when: "purpose == 'receipt'"
  actions:
    - for_each: lines
      post:
        ledger: stock_ledger_entry
        field: quantity
        values: {item: "{{ line.item }}", warehouse: "{{ line.warehouse }}",
                 qty_change: "{{ line.quantity }}", in_rate: "{{ line.rate }}"}
        balance:
          entity: bin
          compute: {value_change: "entry.qty_change * (entry.in_rate or rate)"}
          add: {actual_qty: qty_change, value: value_change}
          after: {rate_after: rate}
- name: issue
  on: [submit]
  when: "purpose in ['issue', 'transfer']"
  actions:
    - for_each: lines
      post:
        ledger: stock_ledger_entry
        field: quantity
        values: {item: "{{ line.item }}", warehouse: "{{ line.warehouse }}",
                 qty_change: "{{ -line.quantity }}"}
        balance:
          entity: bin
          compute:
            value_change: "-value if -entry.qty_change >= actual_qty else entry.qty_change * rate"
          add: {actual_qty: qty_change, value: value_change}
          after: {rate_after: rate}
- name: transfer_in
  on: [submit]
  when: "purpose == 'transfer'"
  actions:
    - for_each: lines
      post:
        ledger: stock_ledger_entry
        field: quantity
        values: {item: "{{ line.item }}", warehouse: "{{ to_warehouse }}",
                 qty_change: "{{ line.quantity }}"}
        balance:
          entity: bin
          compute:
            value_change: "-posted.value_change"
            in_rate: "-posted.value_change / entry.qty_change"
          add: {actual_qty: qty_change, value: value_change}
          after: {rate_after: rate}
- name: kit_parts_out
  on: [submit]
  when: "purpose == 'kit'"
  actions:
    - for_each: kit.parts
      post:
        ledger: stock_ledger_entry
        field: kit
        values: {item: "{{ line.item }}", warehouse: "{{ to_warehouse }}",
                 qty_change: "{{ -line.quantity }}"}
        balance:
          entity: bin
          compute: {value_change: "entry.qty_change * rate"}
          add: {actual_qty: qty_change, value: value_change}
""",
}


@pytest.fixture
def stock(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "stock", PACK)


@pytest.fixture
def api(stock: Instance) -> Iterator[TestClient]:
    with stock.client() as client:
        yield client
    assert_no_drift(stock.settings)


def made(api: TestClient, entity: str, body: dict[str, Any]) -> str:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def entry(api: TestClient, purpose: str, *lines: tuple[str, ...], **more: Any) -> Any:
    body = {
        "purpose": purpose,
        "posting_date": "2026-12-01",
        "lines": [
            dict(zip(("item", "warehouse", "quantity", "rate"), line, strict=False))
            for line in lines
        ],
        **more,
    }
    record_id = made(api, "stock_entry", body)
    return api.post(f"{API}/stock_entry/{record_id}/_submit"), record_id


def bin_of(api: TestClient, item: str, warehouse: str) -> tuple[Decimal, ...]:
    rows = api.get(f"{API}/bin?item={item}&warehouse={warehouse}").json()["data"]
    row = rows[0]
    return tuple(Decimal(row[f]) for f in ("actual_qty", "value", "rate", "doubled"))


def test_a_moving_average_from_the_locked_row(api: TestClient) -> None:
    bolt = made(api, "item", {"sku": "BOLT"})
    main, annex = (made(api, "warehouse", {"name": n}) for n in ("main", "annex"))
    assert entry(api, "receipt", (bolt, main, "10", "5"))[0].status_code == 200
    second = entry(api, "receipt", (bolt, main, "20", "8"))
    assert second[0].status_code == 200, second[0].text
    assert bin_of(api, bolt, main) == (30, Decimal("210.00"), 7, 60)

    # a transfer out at the bin's rate, in at exactly what left (posted)
    response, transfer = entry(api, "transfer", (bolt, main, "3"), to_warehouse=annex)
    assert response.status_code == 200, response.text
    assert bin_of(api, bolt, main) == (27, Decimal("189.00"), 7, 54)
    assert bin_of(api, bolt, annex) == (3, Decimal("21.00"), 7, 6)
    rows = api.get(f"{API}/stock_ledger_entry?voucher_id={transfer}&sort=id").json()["data"]
    assert [(r["qty_change"], r["value_change"], r["in_rate"]) for r in rows] == [
        ("-3.000", "-21.00", None),
        ("3.000", "21.00", "7.0000"),
    ]

    # cancelling the transfer, then the second receipt, puts every value back exactly
    assert api.post(f"{API}/stock_entry/{transfer}/_cancel").status_code == 200
    assert api.post(f"{API}/stock_entry/{second[1]}/_cancel").status_code == 200
    assert bin_of(api, bolt, main) == (10, Decimal("50.00"), 5, 20)
    assert bin_of(api, bolt, annex) == (0, 0, 7, 0)  # an empty bin keeps its last rate
    assert api.get(f"{API}/item/{bolt}").json()["data"]["value"] == "50.00"


def test_an_issue_of_thirds_leaves_no_value_behind(api: TestClient) -> None:
    nut = made(api, "item", {"sku": "NUT"})
    main = made(api, "warehouse", {"name": "main"})
    assert entry(api, "receipt", (nut, main, "3", "0.3333"))[0].status_code == 200
    assert entry(api, "issue", (nut, main, "1"))[0].status_code == 200
    assert entry(api, "issue", (nut, main, "2"))[0].status_code == 200  # the rest: all value
    assert bin_of(api, nut, main) == (0, 0, Decimal("0.3350"), 0)  # 0.67 over 2, kept
    refused, _ = entry(api, "issue", (nut, main, "1"))
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "lines[0].quantity"


def test_for_each_runs_over_a_referenced_records_lines(api: TestClient) -> None:
    bolt, nut = (made(api, "item", {"sku": s}) for s in ("BOLT", "NUT"))
    main = made(api, "warehouse", {"name": "main"})
    entry(api, "receipt", (bolt, main, "10", "2"), (nut, main, "10", "1"))
    kit = made(
        api,
        "kit",
        {
            "name": "pair",
            "parts": [{"item": bolt, "quantity": "2"}, {"item": nut, "quantity": "3"}],
        },
    )
    response, record = entry(api, "kit", kit=kit, to_warehouse=main)
    assert response.status_code == 200, response.text
    assert bin_of(api, bolt, main)[:2] == (8, Decimal("16.00"))
    assert bin_of(api, nut, main)[:2] == (7, Decimal("7.00"))
    for _ in range(2):
        response, _ = entry(api, "kit", kit=kit, to_warehouse=main)
        assert response.status_code == 200
    refused, _ = entry(api, "kit", kit=kit, to_warehouse=main)
    assert refused.status_code == 409, refused.text
    assert refused.json()["errors"][0]["field"] == "kit"  # the document's field
    assert api.post(f"{API}/stock_entry/{record}/_cancel").status_code == 200
    assert bin_of(api, nut, main)[:2] == (4, Decimal("4.00"))
