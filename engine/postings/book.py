"""The SQL of postings: balance rows made on first use, rows locked before they move, the
latest lock date of a period lock, and the journal of what each voucher posted
(``tessera_posting``). Statements are compiled once per table and cached."""

from __future__ import annotations

import datetime as dt
import functools
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import Numeric, and_, bindparam, func, insert, or_, select, update

from engine.fieldtypes.numeric import INT64_MAX, INT64_MIN, decimal_shape
from engine.sql import CompiledSql, compile_sql
from engine.tables import posting_table
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Dialect

    from engine.database import Connection
    from engine.store import RecordStore
    from engine.validation import RecordValidator
    from engine.writes.context import PreparedCreate, WriteContext
    from metadata import EntityDef, RuleEvent


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

    @property
    def references(self) -> Any: ...

    def prepare_create(
        self, data: Any, ctx: WriteContext, *, validated: dict[str, Any] | None = None
    ) -> PreparedCreate: ...

    def _check_rules(
        self,
        event: RuleEvent,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
        errors: list[Any],
    ) -> None: ...

    async def get_many(self, conn: Connection, ids: Sequence[int]) -> dict[str, dict[str, Any]]: ...

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
        document_touched: bool = False,
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
        self._by_keys: dict[int, CompiledSql] = {}
        self._moves: dict[tuple[tuple[str, bool, bool], ...], CompiledSql] = {}

    def by_keys(self, count: int) -> CompiledSql:
        """The ids and keys of ``count`` balance rows (parameters ``k_<field>_<i>``): one
        SELECT for the rows a voucher moves."""
        if count not in self._by_keys:
            table = self.store.table
            wheres = [
                and_(*(table.c[name] == bindparam(f"k_{name}_{i}") for name in self.key))
                for i in range(count)
            ]
            columns = [table.c.id, *(table.c[name] for name in self.key)]
            statement = select(*columns).where(or_(*wheres))
            self._by_keys[count] = compile_sql(statement, self.store.dialect)
        return self._by_keys[count]

    def move(self, guards: tuple[tuple[str, bool, bool], ...]) -> CompiledSql:
        """``UPDATE … SET f = f + :d_f … WHERE id = :id AND <guards> RETURNING *``: the row
        locked, moved and checked in one statement. ``guards`` holds, per field, whether its
        ``min`` and its ``max`` are checked (the direction of the move decides); the
        column's capacity always is, so the UPDATE never fails, it only matches no row."""
        if guards not in self._moves:
            store, table = self.store, self.store.table
            balance = store.entity.balance
            values: dict[str, Any] = {}
            conditions: list[Any] = [table.c.id == bindparam("id")]
            for name, low, high in guards:
                new = func.coalesce(table.c[name], 0) + bindparam(f"d_{name}", type_=Numeric())
                values[name] = new
                limits = balance.limits_of(name) if balance is not None else ()
                for j, limit in enumerate(limits):
                    if low and limit.min is not None:
                        conditions.append(new >= bindparam(f"min_{name}_{j}", type_=Numeric()))
                    if high and limit.max is not None:
                        conditions.append(new <= bindparam(f"max_{name}_{j}", type_=Numeric()))
                field = store.entity.fields[name]
                if field.type is FieldType.INTEGER:
                    conditions.append(new.between(INT64_MIN, INT64_MAX))
                else:
                    precision, scale = decimal_shape(field)
                    conditions.append(func.abs(new) < 10 ** (precision - scale))
            values.update(
                updated_at=bindparam("updated_at"),
                updated_by=bindparam("updated_by"),
                version=table.c.version + 1,
            )
            columns = [table.c[name] for name in store.records.columns]
            statement = update(table).where(*conditions).values(values).returning(*columns)
            self._moves[guards] = compile_sql(statement, store.dialect)
        return self._moves[guards]

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


async def balance_ids(
    conn: Connection, store: PostingStore, keys: Sequence[Mapping[str, Any]], user_id: str | None
) -> list[int]:
    """The ids of the balance rows with ``keys``, found with one SELECT per 32 keys; a
    missing row is inserted (``balance_row``), in the order of ``keys``."""
    sql = _statements(store)
    found: dict[tuple[str, ...], int] = {}
    named: list[tuple[str, ...]] = []
    distinct: dict[tuple[str, ...], dict[str, Any]] = {}
    for key in keys:
        encoded = store.records.encode(key)
        name = tuple(str(encoded[field]) for field in sql.key)
        named.append(name)
        distinct.setdefault(name, encoded)
    every = list(distinct.values())
    for start in range(0, len(every), Journal.BATCH):
        chunk = every[start : start + Journal.BATCH]
        statement = sql.by_keys(len(chunk))
        params = {
            f"k_{field}_{i}": encoded[field] for i, encoded in enumerate(chunk) for field in sql.key
        }
        for row in await conn.fetch(statement.sql, statement.args(params)):
            found[tuple(str(value) for value in row[1:])] = int(row[0])
    ids: list[int] = []
    for key, name in zip(keys, named, strict=True):
        if name not in found:  # not made yet (or a key whose text the driver spells apart)
            found[name] = await balance_row(conn, store, key, user_id)
        ids.append(found[name])
    return ids


@functools.cache
def _quantum(scale: int) -> Decimal:
    return Decimal(1).scaleb(-scale)


def guardable(store: PostingStore, deltas: Mapping[str, Decimal]) -> bool:
    """Whether ``guarded_move`` can apply ``deltas`` exactly: PostgreSQL, and every delta
    of a decimal field within its scale or of an integer field whole."""
    if store.dialect_name != "postgresql":
        return False
    for name, delta in deltas.items():
        field = store.entity.fields[name]
        if field.type is FieldType.INTEGER:
            if delta != delta.to_integral_value():
                return False
        elif field.type is FieldType.DECIMAL:
            scale = decimal_shape(field)[1]
            if delta.same_quantum(_quantum(scale)):
                continue  # exactly the field's scale (a delta coerced by a field of it)
            exponent = delta.as_tuple().exponent
            if not isinstance(exponent, int) or exponent < -scale:
                return False
        else:
            return False
    return True


async def guarded_move(
    conn: Connection,
    store: PostingStore,
    record_id: int,
    deltas: Mapping[str, Decimal],
    user_id: str | None,
) -> dict[str, Any] | None:
    """PostgreSQL: add ``deltas`` to the balance row in one statement that locks it and
    holds only where no limit is crossed and the columns hold the sums; the row as stored,
    or None when it did not hold (nothing written: the caller locks the row and says why).
    One round trip instead of three (find, lock, write)."""
    sql = _statements(store)
    balance = store.entity.balance
    guards = tuple((name, delta < 0, delta > 0) for name, delta in sorted(deltas.items()))
    statement = sql.move(guards)
    params: dict[str, Any] = {
        "id": record_id,
        "updated_at": store.records.timestamp(dt.datetime.now(dt.UTC)),
        "updated_by": user_id,
    }
    for name, delta in deltas.items():
        params[f"d_{name}"] = delta
        for j, limit in enumerate(balance.limits_of(name) if balance is not None else ()):
            params[f"min_{name}_{j}"] = limit.min
            params[f"max_{name}_{j}"] = limit.max
    row = await conn.fetchrow(statement.sql, statement.args(params))
    return store.records.decode(row) if row is not None else None


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


JOURNAL_COLUMNS = (
    "voucher_type",
    "voucher_id",
    "seq",
    "kind",
    "target",
    "target_id",
    "deltas",
    "at",
    "ledger_seq",
    "after",
)


class Journal:
    """``tessera_posting``: compiled once per dialect."""

    BATCH = 32
    """Entries per INSERT: a voucher's journal is written in as few statements as that."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.names = [c.name for c in posting_table.c if c.name != "id"]
        assert self.names == list(JOURNAL_COLUMNS), (
            "Journal._values gives the columns in this order"
        )
        self._inserts: dict[int, CompiledSql] = {}
        self._in_order: dict[int, bool] = {}
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
            sql = compile_sql(insert(posting_table).values(rows), self.dialect)
            self._inserts[count] = sql
            in_order = [f"{n}_{i}" for i in range(count) for n in self.names]
            self._in_order[count] = list(sql.names) == in_order and not sql.constants
        return self._inserts[count]

    async def write(
        self, conn: Connection, voucher_type: str, voucher_id: int, entries: Sequence[Entry]
    ) -> None:
        for start in range(0, len(entries), self.BATCH):
            chunk = entries[start : start + self.BATCH]
            statement = self._insert(len(chunk))
            rows = [self._values(voucher_type, voucher_id, entry) for entry in chunk]
            if self._in_order[len(chunk)]:  # the parameters are the rows' values in order
                args = [value for row in rows for value in row]
            else:
                params = {
                    f"{n}_{i}": v
                    for i, row in enumerate(rows)
                    for n, v in zip(self.names, row, strict=True)
                }
                args = statement.args(params)
            await conn.execute(statement.sql, args)

    @staticmethod
    def _values(voucher_type: str, voucher_id: int, entry: Entry) -> tuple[Any, ...]:
        """The row of ``entry``, in the order of ``names``."""
        return (voucher_type, voucher_id, *journal_values(entry))

    async def entries(self, conn: Connection, voucher_type: str, voucher_id: int) -> list[Entry]:
        params = {"voucher_type": voucher_type, "voucher_id": voucher_id}
        rows = await conn.fetch(self.read.sql, self.read.args(params))
        return [
            Entry(
                seq=int(row[0]),
                kind=str(row[1]),
                target=str(row[2]),
                target_id=int(row[3]),
                deltas={k: Decimal(v) for k, v in orjson.loads(row[4]).items()},
                at=str(row[5]),
                ledger_seq=int(row[6]) if row[6] is not None else None,
                after=orjson.loads(row[7]) if row[7] else None,
            )
            for row in rows
        ]


def journal_values(entry: Entry) -> tuple[Any, ...]:
    """A journal row's columns after its voucher's two (``seq`` … ``after``). orjson: a
    voucher has a few of these per line, and ``json.dumps`` took most of the journal's
    time."""
    deltas = orjson.dumps({k: str(v) for k, v in entry.deltas.items()}).decode()
    after = orjson.dumps(dict(entry.after)).decode() if entry.after else None
    return (
        entry.seq,
        entry.kind,
        entry.target,
        entry.target_id,
        deltas,
        entry.at[:400],
        entry.ledger_seq,
        after,
    )


@functools.cache
def journal(dialect: Dialect) -> Journal:
    return Journal(dialect)
