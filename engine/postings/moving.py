"""A voucher's increments applied: steps 2 and 3 of ``engine.postings.voucher``, whose
docstring says why their fixed order (table, then row id) can neither deadlock nor lose an
update. The documents whose lines move are touched first, the balance rows found or
inserted in key order, then every row locked and moved in that order, one statement per
table where it can be (``engine.postings.batch``), else one by one, which says why a move
is refused.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import Conflict, FieldError, RecordNotFound, ValidationFailed
from engine.fieldtypes import InvalidValue
from engine.postings import batch, book
from engine.postings.parts import unbounded_coercer
from engine.postings.settling import balance_computed, moved_from

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.database import Connection
    from engine.postings.book import PostingStore
    from engine.postings.parts import Increment
    from engine.writes.context import WriteContext


async def apply_increments(
    conn: Connection,
    increments: list[Increment],
    ctx: WriteContext,
    *,
    sign: int,
    kept: list[dict[str, Any]] | None = None,
) -> None:
    """Every increment, its row locked first, in the fixed order (table, row id); the audit
    rows of records moved together added to ``kept`` (``batch.move_together``). Before
    any of them, the documents whose lines are moved (``_touch_documents``)."""
    await _touch_documents(conn, increments)
    balances = [i for i in increments if i.key is not None]
    balances.sort(key=lambda i: (i.store.table.name, _key_order(i.key or {})))
    by_table: dict[str, list[Increment]] = {}
    for inc in balances:
        by_table.setdefault(inc.store.table.name, []).append(inc)
    for group in by_table.values():  # in table order, each in key order (sorted above)
        keys = [inc.key or {} for inc in group]
        ids = await book.balance_ids(conn, group[0].store, keys, ctx.user_id)
        for inc, ident in zip(group, ids, strict=True):
            inc.id = ident
    ordered = sorted(increments, key=lambda i: (i.store.table.name, i.id))
    if any(inc.reads_posted for inc in increments):
        # moves that read the voucher's other rows settle after them: every row is locked
        # first, in the fixed order, so the order of the writes cannot cause a deadlock
        for inc in ordered:
            await book.locked_row(conn, inc.store, inc.id)
        ordered = [i for i in ordered if not i.reads_posted] + [
            i for i in increments if i.reads_posted
        ]
    unsettled = {id(inc.row) for inc in increments if inc.compute is not None}
    if not unsettled:  # each table's moves in one statement where they can be
        for _, run in itertools.groupby(ordered, key=lambda i: i.store.table.name):
            group = list(run)
            if batch.together(group, sign):
                await batch.move_together(conn, group, ctx, sign, _move, _fill_after, kept)
            else:
                for inc in group:
                    await _move(conn, inc, ctx, sign)
        return
    for inc in ordered:
        if inc.compute is not None:
            await _settle(conn, inc, increments, unsettled)
        await _move(conn, inc, ctx, sign)


async def _touch_documents(conn: Connection, increments: list[Increment]) -> None:
    """Lock the documents whose lines the voucher moves, and move their version on
    (``RecordStore.touch_documents``): first of all, by table, each in id order. A line is
    written as its document is, after it, so a voucher and a write of the document cannot
    deadlock; and a submit of the document that read its lines before this voucher's move
    fails its version check instead of keeping rollups from the lines' old values.

    A document the voucher adjusts itself (a ``record`` increment: a payment lowering an
    invoice's outstanding amount) is locked later, in the (table, id) order of every row.
    Vouchers that only adjust lines, or only documents, lock in one global order; one that
    adjusts a document another voucher adjusts the lines of, both sharing a third row, is
    the case this order does not cover (no shipped pack does that)."""
    lines: dict[tuple[str, str], tuple[PostingStore, set[int]]] = {}
    for inc in increments:
        entity = inc.store.entity
        if inc.kind == "record" and entity.is_child and entity.parent:
            key = (entity.parent, entity.qualified_name)
            lines.setdefault(key, (inc.store, set()))[1].add(inc.id)
    for key in sorted(lines):
        store, ids = lines[key]
        await store.records.touch_documents(conn, sorted(ids))


async def _settle(
    conn: Connection, inc: Increment, increments: list[Increment], unsettled: set[int]
) -> None:
    """Fill the ledger row's ``compute`` fields from the balance row as locked (before the
    move) and add them to the move."""
    assert inc.compute is not None
    assert inc.row is not None
    row = inc.row
    old = await book.locked_row(conn, inc.store, inc.id)
    if old is None:
        message = f"{inc.store.entity.qualified_name} {inc.id} does not exist"
        raise ValidationFailed([FieldError(inc.at, "not_found", message)])
    ledger = row.store.entity.ledger
    amounts = ledger.amounts if ledger is not None else ()
    posted = dict.fromkeys(amounts, Decimal(0))
    for other in {id(i.row): i.row for i in increments if i.row is not None}.values():
        if other is row or id(other) in unsettled or other.store is not row.store:
            continue
        if other.at == row.at:
            for name in amounts:
                posted[name] += Decimal(other.values.get(name) or 0)
    values = inc.compute.evaluate(row.store, old, row.values, posted, at=inc.at, rule=inc.rule)
    row.values.update(values)
    row.after.update(values)
    unsettled.discard(id(row))
    for name, source in (inc.add or {}).items():
        if source in values and values[source] is not None:
            inc.deltas[name] = Decimal(values[source])


def _key_order(key: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(value) for value in key.values())


async def _move(conn: Connection, inc: Increment, ctx: WriteContext, sign: int) -> None:
    store = inc.store
    if inc.kind == "balance":
        deltas = {name: delta * sign for name, delta in inc.deltas.items()}
        if book.guardable(store, deltas):  # PostgreSQL: lock, check and write in one UPDATE
            moved = await book.guarded_move(conn, store, inc.id, deltas, ctx.user_id)
            if moved is not None:
                derived = balance_computed(store, moved_from(moved, deltas), moved)
                if derived:  # the balance's computed fields follow the move
                    moved = await _write_balance(conn, store, inc.id, derived, ctx, notify=False)
                await _balance_written(conn, store, moved)
                _fill_after(inc, moved)
                return
            # it did not hold (a limit, the column's size, no row): lock the row, say why
    old = await book.locked_row(conn, store, inc.id)
    name = store.entity.qualified_name
    if old is None:
        message = f"{name} {inc.id} does not exist"
        raise ValidationFailed([FieldError(inc.at, "not_found", message)])
    balance = store.entity.balance
    keys = balance.key if balance is not None else ()
    new: dict[str, Any] = {}
    for field_name, delta in inc.deltas.items():
        delta = delta * sign
        before = Decimal(old.get(field_name) or 0)
        after = before + delta
        for limit in balance.limits_of(field_name) if balance is not None else ():
            crossed = (limit.min is not None and delta < 0 and after < limit.min) or (
                limit.max is not None and delta > 0 and after > limit.max
            )
            if crossed:
                where = ", ".join(f"{k} {old.get(k)}" for k in keys)
                detail = f"{limit.message}: {name} ({where}) {field_name} is {before}, " + (
                    f"{delta} would leave {after}"
                )
                raise Conflict(detail, [FieldError(inc.at, limit.code, detail)], code=limit.code)
        field_def = store.entity.fields[field_name]
        try:  # the column must hold the sum (digits before the point, 64-bit integers)
            new[field_name] = unbounded_coercer(field_def)(after)
        except InvalidValue as exc:
            message = f"{name}.{field_name} would be {after}: {exc.message}"
            raise ValidationFailed([FieldError(inc.at, exc.code, message)]) from None
    if inc.kind == "balance":
        new.update(balance_computed(store, old, {**old, **new}))
        stored = await _write_balance(conn, store, inc.id, new, ctx)
    else:
        # the locked row is the record, unless it has lines to read as well
        full = await store.get(conn, inc.id) if store.records.children else dict(old)
        try:
            stored = await store.update(
                conn, inc.id, {}, inc.ctx, old=full, system_values=new, document_touched=True
            )
        except RecordNotFound:
            raise ValidationFailed(
                [FieldError(inc.at, "not_found", f"{name} {inc.id} does not exist")]
            ) from None
    _fill_after(inc, stored)


def _fill_after(inc: Increment, stored: Mapping[str, Any]) -> None:
    """The ledger row's ``after`` fields, from the balance row as moved."""
    if inc.row is not None and inc.after:
        for ledger_field, balance_field in inc.after.items():
            inc.row.after[ledger_field] = stored.get(balance_field)


async def _write_balance(
    conn: Connection,
    store: PostingStore,
    record_id: int,
    values: dict[str, Any],
    ctx: WriteContext,
    *,
    notify: bool = True,
) -> dict[str, Any]:
    from engine.store import rows

    stored = await rows.update(store.records, conn, record_id, values, ctx.user_id, None)
    if notify:
        await _balance_written(conn, store, stored)
    return stored


async def _balance_written(conn: Connection, store: PostingStore, stored: dict[str, Any]) -> None:
    keeper = getattr(store, "rollups", None)
    if keeper is not None:  # fields kept from the balance (an item's stock: docs/rollups.md)
        await keeper.after_write(conn, None, stored)
