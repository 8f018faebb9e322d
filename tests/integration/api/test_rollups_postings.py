"""Rollups kept by postings, on SQLite and PostgreSQL (issue 17, item 7): an item's
``actual_qty`` is the sum of its bins (a balance moved by ``post``), its ``ledger_qty`` the
sum of its stock ledger entries (rows a ``post`` appends, reversed by a cancel); a stock
request's submit rule reads ``item.actual_qty`` as a plain traversal. No drift after."""

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
    **FILES,
    "entities/item.yaml": """\
fields:
  sku: {type: string, unique: true, required: true}
  actual_qty: {type: decimal, scale: 3}
  ledger_qty: {type: decimal, scale: 3}
""",
    "entities/bin.yaml": FILES["entities/bin.yaml"]
    + "rollups:\n  - {to: item.actual_qty, via: item, sum: actual_qty}\n",
    "entities/stock_ledger_entry.yaml": FILES["entities/stock_ledger_entry.yaml"]
    + "rollups:\n  - {to: item.ledger_qty, via: item, sum: qty_change}\n",
    "entities/stock_request.yaml": """\
document: true
fields:
  item: {type: reference, to: item, required: true}
  quantity: {type: decimal, scale: 3, required: true}
""",
    "rules/stock_request.yaml": """\
- name: in_stock
  on: [submit]
  assert: "quantity <= item.actual_qty"
  field: quantity
  code: insufficient_stock
  message: not enough stock of this item
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


def made(api: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def moved(api: TestClient, entity: str, record_id: str, action: str = "submit") -> Any:
    response = api.post(f"{API}/{entity}/{record_id}/_{action}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def entry(api: TestClient, purpose: str, *lines: tuple[str, str, str]) -> str:
    body = {
        "purpose": purpose,
        "posting_date": "2026-12-01",
        "lines": [{"item": i, "warehouse": w, "quantity": q} for i, w, q in lines],
    }
    record_id = made(api, "stock_entry", body)["id"]
    moved(api, "stock_entry", record_id)
    return str(record_id)


def stock_of(api: TestClient, item: str) -> tuple[Decimal, Decimal]:
    data = api.get(f"{API}/item/{item}").json()["data"]
    return Decimal(data["actual_qty"]), Decimal(data["ledger_qty"])


def test_postings_keep_the_items_stock_and_a_submit_rule_reads_it(api: TestClient) -> None:
    bolt = made(api, "item", {"sku": "BOLT"})["id"]
    nut = made(api, "item", {"sku": "NUT"})["id"]
    main, annex = (made(api, "warehouse", {"name": n})["id"] for n in ("main", "annex"))
    assert stock_of(api, bolt) == (0, 0)
    entry(api, "receipt", (bolt, main, "5"), (bolt, annex, "3"), (nut, main, "1"))
    assert stock_of(api, bolt) == (8, 8)
    assert stock_of(api, nut) == (1, 1)
    issue = entry(api, "issue", (bolt, annex, "2"))
    assert stock_of(api, bolt) == (6, 6)

    request = made(api, "stock_request", {"item": bolt, "quantity": "7"})["id"]
    refused = api.post(f"{API}/stock_request/{request}/_submit")
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "quantity"
    moved(api, "stock_entry", issue, "cancel")  # the reversal puts the 2 back
    assert stock_of(api, bolt) == (8, 8)
    assert moved(api, "stock_request", request)["docstatus"] == "submitted"
