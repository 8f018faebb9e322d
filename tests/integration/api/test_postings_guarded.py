"""Balance moves at their edges, on SQLite and PostgreSQL: on PostgreSQL a move is one
guarded UPDATE (``engine.postings.book.guarded_move``) that only holds within the limits
and the column's size, and a move it refuses falls back to the locked path that says why.
Here: a ``max`` limit on an integer field, a decimal column filled to its last digit and one
digit past it (422 at the line, nothing written), exact decimals in ``after``, a bin made on
first use, and the same bin moved twice by one voucher."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

API = "/api/v1/edges"
FILES = {
    "module.yaml": "name: edges\nversion: 1.0.0\n",
    "entities/item.yaml": "fields:\n  sku: {type: string, unique: true, required: true}\n",
    "entities/bin.yaml": """\
balance:
  key: [item]
  limits:
    - {field: qty, min: 0, code: insufficient_stock, message: not enough stock}
    - {field: units, max: 10, code: too_many, message: at most ten units}
fields:
  item:  {type: reference, to: item, required: true}
  qty:   {type: decimal, precision: 6, scale: 3, default: 0}
  units: {type: integer, default: 0}
""",
    "entities/move_entry.yaml": """\
ledger: {amounts: [qty_change]}
fields:
  item:       {type: reference, to: item, required: true}
  qty_change: {type: decimal, precision: 6, scale: 3, required: true}
  qty_after:  {type: decimal, precision: 6, scale: 3}
""",
    "entities/move.yaml": """\
document: true
fields:
  lines: {type: children, entity: move_line}
""",
    "entities/move_line.yaml": """\
fields:
  item:     {type: reference, to: item, required: true}
  quantity: {type: decimal, precision: 6, scale: 3, required: true}
  units:    {type: integer, default: 0}
""",
    "rules/move.yaml": """\
- name: move
  on: [submit]
  actions:
    - for_each: lines
      post:
        ledger: move_entry
        field: quantity
        values: {item: "{{ line.item }}", qty_change: "{{ line.quantity }}"}
        balance: {entity: bin, add: {qty: qty_change}, after: {qty_after: qty}}
    - for_each: lines
      adjust:
        entity: bin
        key: {item: "{{ line.item }}"}
        add: {units: "{{ line.units }}"}
        field: units
""",
}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with pack_instance(tmp_path, db_url, "edges", FILES).client() as client:
        yield client


def _move(api: TestClient, *lines: tuple[str, str, int]) -> Any:
    body = {"lines": [{"item": i, "quantity": q, "units": u} for i, q, u in lines]}
    made = api.post(f"{API}/move", json=body)
    assert made.status_code == 201, made.text
    return api.post(f"{API}/move/{made.json()['data']['id']}/_submit")


@pytest.fixture
def locked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the rows the locked path read (``book.locked_row``)."""
    from engine.postings import book

    calls: list[int] = []
    original = book.locked_row

    async def spy(conn: Any, store: Any, record_id: int) -> Any:
        calls.append(record_id)
        return await original(conn, store, record_id)

    monkeypatch.setattr(book, "locked_row", spy)
    return calls


def test_on_postgresql_a_move_within_its_limits_is_one_guarded_update(
    api: TestClient, backend: str, locked: list[int]
) -> None:
    item = api.post(f"{API}/item", json={"sku": "C"}).json()["data"]["id"]
    assert _move(api, (item, "5", 2)).status_code == 200  # the bin is made by this move
    assert _move(api, (item, "-1.25", 3)).status_code == 200
    assert _bin(api, item) == (Decimal("3.750"), 5)
    if backend == "postgresql":
        assert locked == []  # found, locked, checked and written by one UPDATE each
    else:
        assert len(locked) == 4  # SQLite: lock (a read: writes are serial), then write
    locked.clear()
    assert _move(api, (item, "-4", 0)).status_code == 409
    assert len(locked) == 1  # the refused move: read under its lock to say why


def _bin(api: TestClient, item: str) -> tuple[Decimal, int]:
    rows = api.get(f"{API}/bin", params={"item": item}).json()["data"]
    return Decimal(rows[0]["qty"]), int(rows[0]["units"])


def _after(api: TestClient) -> list[Decimal]:
    rows = api.get(f"{API}/move_entry", params={"sort": "id"}).json()["data"]
    return [Decimal(r["qty_after"]) for r in rows]


def test_a_move_to_the_columns_last_digit_holds_and_one_past_it_is_refused(
    api: TestClient,
) -> None:
    item = api.post(f"{API}/item", json={"sku": "A"}).json()["data"]["id"]
    assert _move(api, (item, "999.998", 0), (item, "0.001", 0)).status_code == 200
    assert _bin(api, item) == (Decimal("999.999"), 0)
    assert _after(api) == [Decimal("999.998"), Decimal("999.999")]
    refused = _move(api, (item, "0.001", 0))
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "lines[0].quantity"
    assert _bin(api, item) == (Decimal("999.999"), 0)
    assert len(_after(api)) == 2
    emptied = _move(api, (item, "-999.999", 0))
    assert emptied.status_code == 200, emptied.text
    below = _move(api, (item, "-0.001", 0))
    assert below.status_code == 409
    assert below.json()["code"] == "insufficient_stock"
    assert _bin(api, item) == (Decimal("0.000"), 0)


def test_a_max_limit_on_an_integer_field_refuses_a_move_past_it_and_not_one_away(
    api: TestClient,
) -> None:
    item = api.post(f"{API}/item", json={"sku": "B"}).json()["data"]["id"]
    assert _move(api, (item, "1", 4), (item, "1", 6)).status_code == 200  # one bin, twice
    assert _bin(api, item) == (Decimal("2.000"), 10)
    refused = _move(api, (item, "1", 1))
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "too_many"
    assert refused.json()["errors"][0]["field"] == "lines[0].units"
    assert _bin(api, item) == (Decimal("2.000"), 10)  # the qty move of that voucher undone
    assert _move(api, (item, "0.5", -7)).status_code == 200  # away from the max: not checked
    assert _bin(api, item) == (Decimal("2.500"), 3)
    assert _after(api) == [Decimal("1.000"), Decimal("2.000"), Decimal("2.500")]
