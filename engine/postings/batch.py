"""PostgreSQL: a voucher's writes to one table in one statement, where the table's
definitions let the statement do exactly what the one-by-one path does
(``engine.postings.moving`` and ``appending``, which fall back to that path for anything
else).

- ``move``: the increments of several rows of a table, as one ``UPDATE``::

      WITH v AS (SELECT * FROM unnest($ids, $deltas…) AS v(id, d0…)),
           l AS (SELECT … FROM t WHERE id IN (SELECT id FROM v) ORDER BY id FOR NO KEY UPDATE)
      UPDATE t SET f = coalesce(f, 0) + v.d0, … FROM v JOIN l ON l.id = v.id
      WHERE t.id = v.id AND <each limit the move's direction checks> AND <the column holds it>
      RETURNING t.* [, l.*]

  ``l`` locks the rows in id order (the lock of a ``SELECT … ORDER BY … FOR NO KEY
  UPDATE`` is taken row by row after the sort), and the UPDATE only writes rows that ``l``
  has locked, so the locks are taken in the same fixed order as one row at a time: no
  deadlock. ``l`` gives each row as it was just before the move (the latest committed
  version, locked), for the audit trail and for rules that read ``old``. A row the
  guards refuse is not returned: the caller moves it one by one, which says why.
- ``append``: ledger rows, each with its audit row, as one statement of data-modifying
  CTEs (the create's own ``INSERT … RETURNING`` and audit ``INSERT`` per row); the last
  such statement of a voucher also writes its ``Tail``: the audit rows ``move_together``
  kept back and the journal, so a voucher's writes after its moves are one round trip.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import weakref
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, bindparam, func, insert, literal, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY

from engine.audit import AuditAction, changes_between
from engine.database import IntegrityViolation
from engine.fieldtypes import ReferenceByKey
from engine.fieldtypes.numeric import INT64_MAX, INT64_MIN, decimal_shape
from engine.postings.book import JOURNAL_COLUMNS, guardable
from engine.sql import CompiledSql, compile_sql
from engine.tables import audit_table, posting_table
from metadata import FieldType, RuleEvent

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from engine.database import Connection
    from engine.writes.context import PreparedCreate, WriteContext

BATCH = 32
"""Ledger rows per statement of ``append``."""


def moves_together(store: Any, *, records: bool) -> bool:
    """Whether several increments of ``store``'s rows can be one ``move``: PostgreSQL,
    nothing kept from the rows (rollups) and no computed fields (a balance's follow each
    move). For increments of records (``adjust`` by id), also nothing their update would
    do besides the write, its audit row and the rules on the record as stored: no lines,
    no ``required_if``, no expressions through references, no triggers on update."""
    derivation = store.derivation
    if store.dialect_name != "postgresql" or store.rollups is not None or derivation.computes:
        return False
    if not records:
        return True
    return not (
        store.children
        or store.traversed
        or derivation.required_if
        or store.triggers.runs_on(RuleEvent.UPDATE)
    )


def appends_together(store: Any) -> bool:
    """Whether ``store``'s creates can be written together (``append``): PostgreSQL, no lines,
    no numbering, nothing kept from them (rollups)."""
    return (
        store.dialect_name == "postgresql"
        and not store.children
        and not store.records.autonumbers
        and store.rollups is None
    )


def appends_as_prepared(prepared: PreparedCreate) -> bool:
    """Whether a prepared create needs nothing after its INSERT but its rules: derived
    already, no trigger, no reference written as a lookup."""
    return (
        prepared.derived
        and prepared.triggers_due is False
        and not any(isinstance(v, ReferenceByKey) for v in prepared.values.values())
    )


def together(group: Sequence[Any], sign: int) -> bool:
    """Whether the increments of one table (``engine.postings.moving``, sorted by id) can
    be one statement (``move``): more than one, of distinct rows, all of one kind (and for
    records of one writer), each within its fields' scales, of a table whose writes do
    nothing else (``moves_together``)."""
    if len(group) < 2:
        return False
    first = group[0]
    records = first.kind == "record"
    if any(inc.kind != first.kind for inc in group):
        return False
    if len({inc.id for inc in group}) < len(group):
        return False  # a row moved twice: each move checked on its own, one after the other
    if records and len({inc.ctx.user_id for inc in group}) > 1:
        return False
    if not moves_together(first.store, records=records):
        return False
    return all(
        guardable(inc.store, {name: delta * sign for name, delta in inc.deltas.items()})
        for inc in group
    )


async def move_together(
    conn: Connection,
    group: Sequence[Any],
    ctx: WriteContext,
    sign: int,
    one_by_one: Callable[[Connection, Any, WriteContext, int], Awaitable[None]],
    fill_after: Callable[[Any, Mapping[str, Any]], None],
    kept: list[dict[str, Any]] | None = None,
) -> None:
    """The increments of ``group`` (``together``) as one ``move``; a record's update then
    checked (its document's status, its rules on the record as stored, ``old`` too) and
    audited as ``EntityStore.update`` does, the audit rows written together (or, given
    ``kept``, added to it, for the voucher's last statement to write: ``Tail``);
    ``fill_after`` given each row as moved. An increment the statement refused (a limit, a
    column's size, a missing row) goes ``one_by_one``, in its place in the order, which
    says why (the audit rows before it written first)."""
    from engine.writes import documents  # the pipeline imports postings

    store = group[0].store
    records = group[0].kind == "record"
    user_id = group[0].ctx.user_id if records else ctx.user_id
    moves = [(inc.id, {name: d * sign for name, d in inc.deltas.items()}) for inc in group]
    moved = await move(conn, store, moves, user_id, with_old=records)
    audit = store.registry.audit
    audits: list[dict[str, Any]] = []
    for inc in group:
        found = moved.get(inc.id)
        if found is None:
            if kept:
                audits[:0] = kept
                kept.clear()
            await audit.add_many(conn, audits)  # the audit rows in the one-by-one order
            audits.clear()
            await one_by_one(conn, inc, ctx, sign)
            continue
        stored, old = found
        if old is not None:  # a record: what EntityStore.update checks and writes besides
            documents.check_update(store.entity, old, {}, inc.ctx)
            store._check_rules(RuleEvent.UPDATE, stored, old, inc.ctx, [])
            changes = changes_between(old, stored, stored.keys())
            if changes:
                name = store.entity.qualified_name
                audits.append(
                    audit.row(name, str(inc.id), AuditAction.UPDATE, changes, inc.ctx.user_id)
                )
        fill_after(inc, stored)
    if kept is not None:
        kept += audits
    else:
        await audit.add_many(conn, audits)


# -- move ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class _Move:
    sql: str
    constants: tuple[Any, ...]


_MOVES: weakref.WeakKeyDictionary[Any, dict[tuple[tuple[str, ...], bool], _Move]] = (
    weakref.WeakKeyDictionary()
)


def _move_sql(store: Any, fields: tuple[str, ...], with_old: bool) -> _Move:
    """The statement of ``move`` for ``fields``, compiled once per store and shape."""
    cache = _MOVES.get(store)
    if cache is None:
        cache = _MOVES[store] = {}
    sql = cache.get((fields, with_old))
    if sql is None:
        sql = cache[fields, with_old] = _build_move(store, fields, with_old)
    return sql


def _build_move(store: Any, fields: tuple[str, ...], with_old: bool) -> _Move:
    preparer = store.dialect.identifier_preparer
    quote = preparer.quote
    table = preparer.format_table(store.table)
    count = len(fields)
    constants: list[Any] = []

    def constant(value: Decimal) -> str:
        constants.append(value)
        return f"${count + 3 + len(constants)}::numeric"

    balance = store.entity.balance
    sets: list[str] = []
    guards: list[str] = []
    for i, name in enumerate(fields):
        column, delta = quote(name), f"v.d{i}"
        new = f"(coalesce(t.{column}, 0) + {delta})"
        sets.append(f"{column} = CASE WHEN {delta} IS NULL THEN t.{column} ELSE {new} END")
        checks: list[str] = []
        for limit in balance.limits_of(name) if balance is not None else ():
            if limit.min is not None:  # checked when the move goes down
                checks.append(f"({delta} >= 0 OR {new} >= {constant(limit.min)})")
            if limit.max is not None:  # checked when it goes up
                checks.append(f"({delta} <= 0 OR {new} <= {constant(limit.max)})")
        field = store.entity.fields[name]
        if field.type is FieldType.INTEGER:
            low, high = constant(Decimal(INT64_MIN)), constant(Decimal(INT64_MAX))
            checks.append(f"{new} BETWEEN {low} AND {high}")
        else:
            precision, scale = decimal_shape(field)
            checks.append(f"abs({new}) < {constant(Decimal(10) ** (precision - scale))}")
        guards.append(f"({delta} IS NULL OR ({' AND '.join(checks)}))")
    columns = [quote(name) for name in store.records.columns]
    returned = [f"t.{c}" for c in columns] + ([f"l.{c}" for c in columns] if with_old else [])
    arrays = ", ".join(["$1::bigint[]", *(f"${i + 2}::numeric[]" for i in range(count))])
    names = ", ".join(["id", *(f"d{i}" for i in range(count))])
    locked = ", ".join(columns) if with_old else quote("id")
    sql = (  # names quoted by the dialect, every value bound
        f"WITH v AS (SELECT * FROM unnest({arrays}) AS v({names})), "  # noqa: S608
        f"l AS (SELECT {locked} FROM {table} WHERE {table}.id IN (SELECT v.id FROM v) "
        f"ORDER BY {table}.id FOR NO KEY UPDATE) "
        f"UPDATE {table} AS t SET {', '.join(sets)}, "
        f"updated_at = ${count + 2}, updated_by = ${count + 3}, version = t.version + 1 "
        f"FROM v JOIN l ON l.id = v.id WHERE t.id = v.id AND {' AND '.join(guards)} "
        f"RETURNING {', '.join(returned)}"
    )
    return _Move(sql, tuple(constants))


async def move(
    conn: Connection,
    store: Any,
    moves: Sequence[tuple[int, Mapping[str, Decimal]]],
    user_id: str | None,
    *,
    with_old: bool,
) -> dict[int, tuple[dict[str, Any], dict[str, Any] | None]]:
    """Add each ``(id, deltas)`` of ``moves`` (distinct ids; deltas within the fields'
    scales, ``book.guardable``) to its row, locking the rows in id order: by row id, the
    row as moved and (``with_old``) as it was. A row that is missing, or that a move would
    take past a limit or the column's size, is left as it was and not in the answer."""
    fields = tuple(sorted({name for _, deltas in moves for name in deltas}))
    sql = _move_sql(store, fields, with_old)
    records = store.records
    args: list[Any] = [[ident for ident, _ in moves]]
    args += [[deltas.get(name) for _, deltas in moves] for name in fields]
    args += [records.timestamp(dt.datetime.now(dt.UTC)), user_id, *sql.constants]
    width = len(records.columns)
    moved: dict[int, tuple[dict[str, Any], dict[str, Any] | None]] = {}
    for row in await conn.fetch(sql.sql, args):
        values = tuple(row)
        new = records.decode(values[:width])
        moved[int(new["id"])] = (new, records.decode(values[width:]) if with_old else None)
    return moved


# -- append ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Tail:
    """What a voucher writes after its ledger rows, in the statement of the last of them
    (``append``): the audit rows of the records it moved together, kept back
    (``move_together``), and, at submit, its journal (``book.Journal``), whose entries for
    the rows of that statement name them by position (``row_ref``), their ids not being
    known before it runs. Two round trips fewer per voucher."""

    audits: Sequence[Mapping[str, Any]]
    journal: tuple[str, int, Sequence[tuple[Any, ...]]] | None = None
    """``(voucher type, voucher id, rows)``, each row ``book.journal_values`` of an entry
    followed by its ``row_ref`` (None where ``target_id`` is known)."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Append:
    sql: CompiledSql
    slots: tuple[tuple[int, str] | str | None, ...]
    """Where each parameter comes from: (row, column or audit parameter); the name of a
    ``Tail`` array; None: a constant."""


_APPENDS: weakref.WeakKeyDictionary[Any, dict[tuple[int, bool], _Append]] = (
    weakref.WeakKeyDictionary()
)
_SLOT = re.compile(r"p(\d+)_(.+)")
_AUDIT_COLUMNS = ("at", "user_id", "entity", "record_id", "action", "changes")
_JOURNAL_COLUMNS = JOURNAL_COLUMNS[2:]
"""``tessera_posting``'s columns after the voucher's two, as ``book.journal_values`` gives
them; ``Tail`` rows end with ``row_ref``."""


def _append_sql(store: Any, count: int, journal: bool) -> _Append:
    cache = _APPENDS.get(store)
    if cache is None:
        cache = _APPENDS[store] = {}
    if (count, journal) not in cache:
        ctes: list[Any] = []
        parts: list[Any] = []
        ids: list[Any] = []
        for i in range(count):
            written, audited = store.records.sql.audited_ctes(None, prefix=f"p{i}_")
            ctes += [written, audited]
            columns = [written.c[name] for name in store.records.columns]
            parts.append(select(literal(i, Integer()).label("_row"), *columns))
            ids.append(select(literal(i, Integer()).label("row_ref"), written.c.id))
        ctes.append(_tail_audits())
        if journal:
            ctes.append(_tail_journal(ids))
        statement = (parts[0] if count == 1 else union_all(*parts)).add_cte(*ctes)
        sql = compile_sql(statement, store.dialect)
        slots: list[tuple[int, str] | str | None] = []
        for name in sql.names:
            match = None if name in sql.constants else _SLOT.fullmatch(name)
            tail = name.startswith(("xa_", "xj_")) and name not in sql.constants
            slots.append((int(match[1]), match[2]) if match else name if tail else None)
        cache[count, journal] = _Append(sql, tuple(slots))
    return cache[count, journal]


def _tail_audits() -> Any:
    """``INSERT INTO tessera_audit … SELECT * FROM unnest($xa_at, …)``: any number of rows
    (none too) in one statement shape."""
    c = audit_table.c
    rows = (
        func.unnest(*(bindparam(f"xa_{n}", type_=ARRAY(c[n].type)) for n in _AUDIT_COLUMNS))
        .table_valued(*_AUDIT_COLUMNS)
        .render_derived()
    )
    select_rows = select(*(rows.c[n] for n in _AUDIT_COLUMNS))
    return insert(audit_table).from_select(list(_AUDIT_COLUMNS), select_rows).cte("xa")


def _tail_journal(ids: list[Any]) -> Any:
    """The journal's INSERT: its rows from arrays, an entry's ``target_id`` that is None
    taken from the ledger row its ``row_ref`` names (``ids``: that row's position and
    id, for each row the statement inserts)."""
    c = posting_table.c
    names = (*_JOURNAL_COLUMNS, "row_ref")
    types = [*(c[n].type for n in _JOURNAL_COLUMNS), Integer()]
    rows = (
        func.unnest(
            *(bindparam(f"xj_{n}", type_=ARRAY(t)) for n, t in zip(names, types, strict=True))
        )
        .table_valued(*names)
        .render_derived()
    )
    written = (ids[0] if len(ids) == 1 else union_all(*ids)).subquery("w")
    values = [
        bindparam("xj_voucher_type", type_=c.voucher_type.type),
        bindparam("xj_voucher_id", type_=c.voucher_id.type),
        *(
            func.coalesce(rows.c.target_id, written.c.id) if n == "target_id" else rows.c[n]
            for n in _JOURNAL_COLUMNS
        ),
    ]
    select_rows = select(*values).select_from(
        rows.outerjoin(written, written.c.row_ref == rows.c.row_ref)
    )
    columns = ["voucher_type", "voucher_id", *_JOURNAL_COLUMNS]
    return insert(posting_table).from_select(columns, select_rows).cte("xj")


def _tail_params(tail: Tail | None) -> dict[str, Any]:
    """The arrays (one per column) of the tail's rows."""
    params: dict[str, Any] = {}
    audits = tail.audits if tail is not None else ()
    for name in _AUDIT_COLUMNS:
        params[f"xa_{name}"] = [row[name] for row in audits]
    if tail is not None and tail.journal is not None:
        voucher_type, voucher_id, rows = tail.journal
        params["xj_voucher_type"] = voucher_type
        params["xj_voucher_id"] = voucher_id
        for i, name in enumerate((*_JOURNAL_COLUMNS, "row_ref")):
            params[f"xj_{name}"] = [row[i] for row in rows]
    return params


async def append(
    conn: Connection,
    store: Any,
    rows: Sequence[tuple[dict[str, Any], str | None]],
    tail: Tail | None = None,
) -> list[dict[str, Any]]:
    """INSERT ``rows`` (values as a create stores them, the writer's id), each with its
    audit row as a create writes it, in one statement per ``BATCH`` rows, the last of them
    writing ``tail`` too (its ``row_ref``s are positions in that statement: see
    ``tail_fits``); the records as stored, in order."""
    records = store.records
    stored: list[dict[str, Any]] = []
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        last = start + BATCH >= len(rows)
        journal = last and tail is not None and tail.journal is not None
        sql = _append_sql(store, len(chunk), journal)
        now = records.timestamp(dt.datetime.now(dt.UTC))
        params: list[dict[str, Any]] = []
        for values, user_id in chunk:
            own = records.encode(values)
            own.update(created_at=now, updated_at=now, created_by=user_id, updated_by=user_id)
            own["version"] = 1
            changes = changes_between(None, values, list(values))
            audit = records.registry.audit.row(
                store.entity.qualified_name, "", AuditAction.CREATE, changes, user_id
            )
            own.update(audit_at=audit["at"], audit_user=audit["user_id"])
            own["audit_changes"] = audit["changes"]
            params.append(own)
        constants = sql.sql.constants
        extra = _tail_params(tail if last else None)
        args = [
            constants.get(name)
            if slot is None
            else extra[slot]
            if isinstance(slot, str)
            else params[slot[0]].get(slot[1])
            for name, slot in zip(sql.sql.names, sql.slots, strict=True)
        ]
        try:
            found = await conn.fetch(sql.sql.sql, args)
        except IntegrityViolation as exc:
            raise await records.integrity_error(conn, exc, chunk[0][0]) from None
        by_row = {int(row[0]): records.decode(tuple(row)[1:]) for row in found}
        stored += [by_row[i] for i in range(len(chunk))]
    return stored


def tail_fits(count: int) -> bool:
    """Whether ``append`` of ``count`` rows writes them in one statement, so that a
    ``Tail``'s ``row_ref`` is a row's position among them."""
    return 0 < count <= BATCH
