"""History must not slow the present (docs/rollups.md, "What a write costs"): with
thousands of source records already counted, a write moves the kept values by its own
delta — no statement aggregates the source records of the targets it keeps — and the values
stay exact (``tessera recompute`` finds no drift), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from engine import EngineModel, open_database
from engine.rollups import drift
from runtime.app import load_definitions
from tests.conftest import Instance, pack_instance
from tests.integration.api.test_rollups import ACCOUNTS, FILES, INVOICES, ORDERS, made, move
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

HISTORY = 5000
AGGREGATE = re.compile(r"\b(sum|count|min|max)\s*\(|\bgroup by\b", re.IGNORECASE)


@pytest.fixture
def books(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "books", FILES)


@pytest.fixture
def api(books: Instance) -> Iterator[TestClient]:
    with books.client() as client:
        yield client


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement the engine sends, from now on."""
    import engine.database as database

    seen: list[str] = []
    for cls in (database._PostgresConnection, database._SqliteConnection):
        for method in ("fetch", "fetchrow", "execute"):
            original = getattr(cls, method)

            async def counted(self: Any, sql: str, args: Any, _original: Any = original) -> Any:
                seen.append(sql)
                return await _original(self, sql, args)

            monkeypatch.setattr(cls, method, counted)
    return seen


def _run(instance: Instance, statements: list[str]) -> None:
    url = instance.settings.database_url
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            for statement in statements:
                conn.execute(statement)
        return
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _columns(instance: Instance, table: str) -> list[str]:
    url = instance.settings.database_url
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
            (table,),
        )
        return [row[0] for row in rows]


def _fix(instance: Instance) -> int:
    """``tessera recompute --fix``: the kept values rebuilt from the rows inserted by hand."""
    settings = instance.settings
    model = EngineModel.for_url(load_definitions(settings), settings.database_url)

    async def run() -> int:
        database = await open_database(settings.database_url, pool_size=1)
        try:
            return len(await drift(database, model.rollups, fix=True))
        finally:
            await database.close()

    return asyncio.run(run())


def _history(instance: Instance, invoice_id: str) -> None:
    """``HISTORY`` copies of the submitted invoice ``invoice_id`` and of its line, written
    behind the engine (one INSERT each)."""
    series = f"WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < {HISTORY}) "
    invoice = [c for c in _columns(instance, "books_invoice") if c != "id"]
    line = [c for c in _columns(instance, "books_invoice_line") if c != "id"]
    parent = next(c for c in line if c.startswith("_parent") or c == "parent_id")
    copied_line = ", ".join("i.id" if c == parent else f"l.{c}" for c in line)
    _run(
        instance,
        [
            series + f"INSERT INTO books_invoice ({', '.join(invoice)}) "
            f"SELECT {', '.join('b.' + c for c in invoice)} FROM books_invoice b, n "
            f"WHERE b.id = {int(invoice_id)}",
            f"INSERT INTO books_invoice_line ({', '.join(line)}) "
            f"SELECT {copied_line} FROM books_invoice_line l, books_invoice i "
            f"WHERE l.{parent} = {int(invoice_id)} AND i.id > {int(invoice_id)}",
        ],
    )


def test_a_submit_with_thousands_of_invoices_behind_it_aggregates_none_of_them(
    books: Instance, api: TestClient, statements: list[str]
) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    order = made(api, ORDERS, {"name": "SO-1", "lines": [{"item": "bolt", "amount": "999999"}]})
    line = order["lines"][0]["id"]
    old = made(
        api,
        INVOICES,
        {
            "account": acme,
            "posting_date": "2026-01-05",
            "grand_total": "10.00",
            "lines": [{"order_line": line, "amount": "1.00"}],
        },
    )
    move(api, old["id"], "submit")
    _history(books, old["id"])
    assert _fix(books) > 0  # the copies counted by recompute --fix
    assert_no_drift(books.settings)
    before = api.get(f"{ACCOUNTS}/{acme}").json()["data"]
    assert Decimal(before["lifetime_value"]) == Decimal("10.00") * (HISTORY + 1)
    assert before["invoice_count"] == HISTORY + 1

    body = {
        "account": acme,
        "posting_date": "2026-03-01",
        "grand_total": "125.50",
        "lines": [{"order_line": line, "amount": "2.50"} for _ in range(10)],
    }
    invoice = made(api, INVOICES, body)
    statements.clear()
    move(api, invoice["id"], "submit")
    submit = list(statements)
    assert not [s for s in submit if AGGREGATE.search(s)], submit
    after = api.get(f"{ACCOUNTS}/{acme}").json()["data"]
    assert Decimal(after["lifetime_value"]) == Decimal("10.00") * (HISTORY + 1) + Decimal("125.50")
    assert after["last_invoice"] == "2026-03-01"
    assert Decimal(after["smallest"]) == Decimal("10.00")
    billed = api.get(f"{ORDERS}/{order['id']}").json()["data"]
    assert Decimal(billed["billed_amount"]) == Decimal(HISTORY + 1) + Decimal("25.00")

    statements.clear()
    move(api, invoice["id"], "cancel")
    assert not [s for s in statements if AGGREGATE.search(s)], statements
    assert_no_drift(books.settings)
    gone = api.get(f"{ACCOUNTS}/{acme}").json()["data"]
    assert Decimal(gone["lifetime_value"]) == Decimal("10.00") * (HISTORY + 1)


def test_removing_the_extreme_asks_the_sources_for_the_next_one(
    api: TestClient, books: Instance, statements: list[str]
) -> None:
    """A cancelled invoice that held the account's smallest total: the next smallest is
    read (one indexed query of the account's submitted invoices), the sums still move by
    the delta."""
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    totals = ["30.00", "5.00", "20.00"]
    ids = []
    for total in totals:
        invoice = made(
            api, INVOICES, {"account": acme, "posting_date": "2026-02-01", "grand_total": total}
        )
        move(api, invoice["id"], "submit")
        ids.append(invoice["id"])
    statements.clear()
    move(api, ids[1], "cancel")
    extremes = [s for s in statements if AGGREGATE.search(s)]
    assert len(extremes) == 1, extremes
    assert "min(" in extremes[0].lower()
    assert "group by" not in extremes[0].lower()
    data = api.get(f"{ACCOUNTS}/{acme}").json()["data"]
    assert Decimal(data["smallest"]) == Decimal("20.00")
    assert Decimal(data["lifetime_value"]) == Decimal("50.00")
    assert_no_drift(books.settings)


def test_a_min_or_max_rollup_indexes_its_source_on_via_and_field(books: Instance) -> None:
    """So that the next extreme, when one is removed, is found without a scan."""
    invoice = load_definitions(books.settings).entity("books.invoice")
    assert ("account", "posting_date") in invoice.indexes
    assert ("account", "grand_total") in invoice.indexes


def test_re_parenting_editing_and_deleting_move_deltas_without_aggregating(
    api: TestClient, books: Instance, statements: list[str]
) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    globex = made(api, ACCOUNTS, {"name": "Globex"})["id"]
    for total in ("1.00", "2.00"):
        move(api, made(api, INVOICES, {"account": acme, "grand_total": total})["id"], "submit")
    draft = made(api, INVOICES, {"account": acme, "grand_total": "7.00"})
    statements.clear()
    edited = api.patch(f"{INVOICES}/{draft['id']}", json={"account": globex, "grand_total": "8"})
    assert edited.status_code == 200, edited.text
    assert api.delete(f"{INVOICES}/{draft['id']}").status_code == 204
    assert not [s for s in statements if AGGREGATE.search(s)], statements
    assert (api.get(f"{ACCOUNTS}/{acme}").json()["data"]["invoice_count"]) == 2
    assert (api.get(f"{ACCOUNTS}/{globex}").json()["data"]["invoice_count"]) == 0
    assert_no_drift(books.settings)


STAMPED = {
    **FILES,
    "rules/invoice.yaml": """\
- name: stamp
  on: [submit]
  actions:
    - update: {values: {posting_date: "2026-06-30"}}
""",
}


def test_a_submit_whose_rule_writes_the_invoice_again_keeps_both_writes_by_delta(
    db_url: str, tmp_path: Path, statements: list[str]
) -> None:
    """The submit's own change (old → as the submit left it) and its rule's update (each a
    delta of its own) add up to the invoice as it ends, without a sum over the invoices."""
    instance = pack_instance(tmp_path, db_url, "books", STAMPED)
    with instance.client() as api:
        acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
        ids = [
            made(api, INVOICES, {"account": acme, "posting_date": "2026-01-01", "grand_total": t})
            for t in ("4.00", "6.00")
        ]
        move(api, ids[0]["id"], "submit")
        statements.clear()
        submitted = move(api, ids[1]["id"], "submit")
        assert submitted["posting_date"] == "2026-06-30"
        sums = [s for s in statements if re.search(r"\b(sum|count)\s*\(|group by", s, re.I)]
        assert not sums, sums
        data = api.get(f"{ACCOUNTS}/{acme}").json()["data"]
        assert Decimal(data["lifetime_value"]) == Decimal("10.00")
        assert data["last_invoice"] == "2026-06-30"
    assert_no_drift(instance.settings)
