"""The SQL of postings: balance rows made on first use, rows locked before they move, the
latest lock date of a period lock, and the journal of what each voucher posted
(``tessera_posting``). Statements are compiled once per table and cached."""

from __future__ import annotations

import datetime as dt
import functools
import json
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import and_, bindparam, func, insert, select

from engine.sql import CompiledSql, compile_sql
from engine.tables import posting_table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Dialect

    from engine.database import Connection
    from engine.store import RecordStore
    from engine.validation import RecordValidator
    from engine.writes.context import PreparedCreate, WriteContext
    from metadata import EntityDef


class PostingStore(Protocol):
    """An entity's store as postings use it (``engine.writes.pipeline.EntityStore``)."""

    entity: EntityDef
    table: Table
    dialect: Dialect
    dialect_name: str
    records: RecordStore
    validator: RecordValidator

    @property
    def registry(self) -> Any: ...

    def prepare_create(self, data: Any, ctx: WriteContext) -> PreparedCreate: ...

    async def create(
        self, conn: Connection, data: Any, ctx: WriteContext, *, prepared: Any = None
    ) -> dict[str, Any]: ...

    async def get(self, conn: Connection, record_id: int) -> dict[str, Any]: ...

    async def update(
        self,
        conn: Connection,
        record_id: int,
        data: Any,
        ctx: WriteContext,
        *,
        old: dict[str, Any] | None = None,
        system_values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...


_STATEMENTS: weakref.WeakKeyDictionary[Any, _Statements] = weakref.WeakKeyDictionary()


def _statements(store: PostingStore) -> _Statements:
    """The store's statements, compiled on first use and dropped with the store (a reload
    of the definitions builds new stores)."""
    cached = _STATEMENTS.get(store)
    if cached is None:
        cached = _STATEMENTS[store] = _Statements(store)
    return cached


class _Statements:
    def __init__(self, store: PostingStore) -> None:
        self.store = store
        table, dialect = store.table, store.dialect
        columns = [table.c[name] for name in store.records.columns]
        locked = select(*columns).where(table.c.id == bindparam("id"))
        if store.dialect_name == "postgresql":
            locked = locked.with_for_update(key_share=True)  # FOR NO KEY UPDATE
        self.lock = compile_sql(locked, dialect)
        self.maxima: dict[str, CompiledSql] = {}
        balance = store.entity.balance
        self.key = balance.key if balance is not None else ()
        if self.key:
            where = and_(*(table.c[name] == bindparam(f"k_{name}") for name in self.key))
            self.by_key = compile_sql(select(table.c.id).where(where), dialect)

    @functools.cached_property
    def ensure(self) -> CompiledSql:
        """INSERT of a balance row by key, doing nothing when the key exists (a concurrent
        insert of the same key waits for the other transaction and then does nothing)."""
        from sqlalchemy.dialects.postgresql import insert as postgres_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        store = self.store
        make = postgres_insert if store.dialect_name == "postgresql" else sqlite_insert
        names = [n for n in store.records.columns if n != "id"]
        statement = (
            make(store.table)
            .values({name: bindparam(f"v_{name}") for name in names})
            .on_conflict_do_nothing(index_elements=list(self.key))
            .returning(store.table.c.id)
        )
        return compile_sql(statement, store.dialect)


async def balance_row(
    conn: Connection, store: PostingStore, key: Mapping[str, Any], user_id: str | None
) -> int:
    """The id of the balance row with ``key``, inserted (with its defaults) when missing."""
    sql = _statements(store)
    encoded = store.records.encode(key)
    params = {f"k_{name}": encoded[name] for name in sql.key}
    row = await conn.fetchrow(sql.by_key.sql, sql.by_key.args(params))
    if row is not None:
        return int(row[0])
    values = store.validator.validate(dict(key))
    now = store.records.timestamp(dt.datetime.now(dt.UTC))
    blank: dict[str, Any] = {name: None for name in store.records.columns if name != "id"}
    blank.update(store.records.encode(values))
    blank.update(created_at=now, updated_at=now, created_by=user_id, updated_by=user_id, version=1)
    params = {f"v_{name}": value for name, value in blank.items()}
    inserted = await conn.fetchrow(sql.ensure.sql, sql.ensure.args(params))
    if inserted is not None:
        return int(inserted[0])
    row = await conn.fetchrow(
        sql.by_key.sql, sql.by_key.args(params | {f"k_{name}": encoded[name] for name in sql.key})
    )
    assert row is not None  # the conflicting row was committed
    return int(row[0])


async def locked_row(
    conn: Connection, store: PostingStore, record_id: int
) -> dict[str, Any] | None:
    """The row, locked until the transaction ends (PostgreSQL; SQLite's writes are serial)."""
    sql = _statements(store).lock
    row = await conn.fetchrow(sql.sql, (record_id,))
    return store.records.decode(row) if row is not None else None


def _max_of(store: PostingStore, field: str) -> CompiledSql:
    maxima = _statements(store).maxima
    if field not in maxima:
        maxima[field] = compile_sql(select(func.max(store.table.c[field])), store.dialect)
    return maxima[field]


async def lock_date(conn: Connection, store: PostingStore, field: str) -> dt.date | None:
    """The latest ``field`` of ``store``'s records: postings dated on or before it are
    refused."""
    sql = _max_of(store, field)
    row = await conn.fetchrow(sql.sql, ())
    return as_date(row[0]) if row is not None else None


def as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a voucher's journal."""

    seq: int
    kind: str
    """``ledger`` (a row appended), ``balance`` or ``record`` (an increment)."""
    target: str
    target_id: int
    deltas: Mapping[str, Decimal]
    at: str = ""
    ledger_seq: int | None = None
    after: Mapping[str, str] | None = None


class Journal:
    """``tessera_posting``: compiled once per dialect."""

    BATCH = 32
    """Entries per INSERT: a voucher's journal is written in as few statements as that."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.names = [c.name for c in posting_table.c if c.name != "id"]
        self._inserts: dict[int, CompiledSql] = {}
        columns = [
            posting_table.c[name]
            for name in self.names
            if name not in ("voucher_type", "voucher_id")
        ]
        where = and_(
            posting_table.c.voucher_type == bindparam("voucher_type"),
            posting_table.c.voucher_id == bindparam("voucher_id"),
        )
        self.read = compile_sql(
            select(*columns).where(where).order_by(posting_table.c.seq), dialect
        )

    def _insert(self, count: int) -> CompiledSql:
        """One INSERT of ``count`` rows (parameters ``<column>_<row>``), compiled once."""
        if count not in self._inserts:
            rows: list[dict[str, Any]] = [
                {n: bindparam(f"{n}_{i}") for n in self.names} for i in range(count)
            ]
            self._inserts[count] = compile_sql(insert(posting_table).values(rows), self.dialect)
        return self._inserts[count]

    async def write(
        self, conn: Connection, voucher_type: str, voucher_id: int, entries: Sequence[Entry]
    ) -> None:
        for start in range(0, len(entries), self.BATCH):
            chunk = entries[start : start + self.BATCH]
            params: dict[str, Any] = {}
            for i, entry in enumerate(chunk):
                values = {
                    "voucher_type": voucher_type,
                    "voucher_id": voucher_id,
                    "seq": entry.seq,
                    "kind": entry.kind,
                    "target": entry.target,
                    "target_id": entry.target_id,
                    "deltas": json.dumps({k: str(v) for k, v in entry.deltas.items()}),
                    "at": entry.at[:400],
                    "ledger_seq": entry.ledger_seq,
                    "after": json.dumps(dict(entry.after)) if entry.after else None,
                }
                params.update({f"{name}_{i}": value for name, value in values.items()})
            statement = self._insert(len(chunk))
            await conn.execute(statement.sql, statement.args(params))

    async def entries(self, conn: Connection, voucher_type: str, voucher_id: int) -> list[Entry]:
        params = {"voucher_type": voucher_type, "voucher_id": voucher_id}
        rows = await conn.fetch(self.read.sql, self.read.args(params))
        return [
            Entry(
                seq=int(row[0]),
                kind=str(row[1]),
                target=str(row[2]),
                target_id=int(row[3]),
                deltas={k: Decimal(v) for k, v in json.loads(row[4]).items()},
                at=str(row[5]),
                ledger_seq=int(row[6]) if row[6] is not None else None,
                after=json.loads(row[7]) if row[7] else None,
            )
            for row in rows
        ]


@functools.cache
def journal(dialect: Dialect) -> Journal:
    return Journal(dialect)
