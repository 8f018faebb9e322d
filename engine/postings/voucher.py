"""Applying a voucher's postings at submit, and reversing them at cancel.

At submit, the ``post`` and ``adjust`` actions have only *collected* what they would do
(``engine.postings.pending``). Here, in the submit's transaction:

1. every ledger row is validated, balanced vouchers are checked (a round-off row takes a
   difference within the tolerance) and period locks are checked — nothing written yet;
2. the balance rows the voucher moves are found, or inserted when missing, in key order;
3. every increment (balance rows and records) is applied **sorted by table, then row id**:
   each row is locked (``FOR NO KEY UPDATE`` on PostgreSQL), its new value computed in
   exact decimals and checked against the balance's limits, then written — on PostgreSQL
   a balance row in one guarded ``UPDATE`` that does all three (``book.guarded_move``),
   the locked read kept for a move it refuses, to say why. Two transactions
   therefore always lock the rows they share in the same order: one waits for the other,
   neither waits for a row the other will only lock later, so they cannot deadlock, and
   no update is lost (the second reads the first's committed value);
4. the ledger rows are appended (their ``after`` fields from the balances just moved), and
   the journal records every row and increment.

At cancel, the journal is read back: the increments are applied negated (same order, same
limits: a receipt whose stock has been issued cannot be cancelled) and every ledger row
gets a reversing row (amounts negated, ``is_reversal: true``). A refusal anywhere raises,
and the caller's transaction rolls everything back.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import Conflict, FieldError, RecordNotFound, ValidationFailed
from engine.fieldtypes import InvalidValue, kind_of
from engine.postings import batch, book
from engine.postings.pending import PendingAdjust, PendingPost, Voucher
from engine.postings.settling import balance_computed, moved_from
from engine.references import reference_id
from metadata import LEDGER_FIELDS, RuleEvent

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from engine.database import Connection
    from engine.postings.book import PostingStore
    from engine.postings.settling import Compute
    from engine.writes.context import PreparedCreate, WriteContext
    from metadata import LedgerDef

UNBALANCED = "unbalanced"
PERIOD_LOCKED = "period_locked"


@dataclass(slots=True)
class _Row:
    """A ledger row to append."""

    store: PostingStore
    body: dict[str, Any]
    values: dict[str, Any]
    """``body`` validated (and then completed by ``compute``, if its balance has one)."""
    at: str
    ctx: WriteContext
    after: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    validated: dict[str, Any] = field(default_factory=dict)
    """``body`` as validated, untouched: its create need not validate it again."""

    def __post_init__(self) -> None:
        self.validated = dict(self.values)


@dataclass(slots=True)
class _Increment:
    store: PostingStore
    kind: str
    deltas: dict[str, Decimal]
    at: str
    ctx: WriteContext
    key: dict[str, Any] | None = None
    id: int = 0
    row: _Row | None = None
    after: Mapping[str, str] | None = None
    compute: Compute | None = None
    """Ledger fields worked out from the locked row (``settling``), then added by ``add``."""
    add: Mapping[str, str] | None = None
    rule: str = ""

    @property
    def reads_posted(self) -> bool:
        return self.compute is not None and self.compute.reads_posted


async def settle(
    conn: Connection, store: PostingStore, record_id: int, event: RuleEvent, ctx: WriteContext
) -> None:
    """The postings of a document's submit (collected by its rules' actions), or the
    reversal of what its submit posted, at cancel."""
    voucher = Voucher(store.entity.qualified_name, record_id)
    if event is RuleEvent.SUBMIT:
        mine = [p for p in ctx.postings if getattr(p, "voucher", None) == voucher]
        if mine:  # taken out by identity (`in` compared every field of every pending item)
            taken = {id(p) for p in mine}
            ctx.postings[:] = [p for p in ctx.postings if id(p) not in taken]
            await _submit(conn, store.registry, voucher, mine, ctx)
    elif event is RuleEvent.CANCEL:
        await _cancel(conn, store.registry, voucher, ctx)


async def _submit(
    conn: Connection,
    registry: Any,
    voucher: Voucher,
    pending: list[Any],
    ctx: WriteContext,
) -> None:
    rows: list[_Row] = []
    increments: list[_Increment] = []
    errors: list[FieldError] = []
    for item in pending:
        try:
            if isinstance(item, PendingPost):
                _collect_post(registry, item, rows, increments)
            elif isinstance(item, PendingAdjust):
                _collect_adjust(registry, item, increments)
        except ValidationFailed as failed:
            errors.extend(failed.errors)
    if errors:
        raise ValidationFailed(errors)
    _balance(rows)
    await _check_locks(conn, registry, rows)
    kept: list[dict[str, Any]] = []  # audit rows: written with the ledger rows (batch.Tail)
    await _apply(conn, increments, ctx, sign=1, kept=kept)
    for seq, row in enumerate(rows):
        row.seq = seq
    moved = [
        book.Entry(
            offset,
            inc.kind,
            inc.store.entity.qualified_name,
            inc.id,
            inc.deltas,
            inc.at,
            inc.row.seq if inc.row is not None else None,
            inc.after,
        )
        for offset, inc in enumerate(increments, start=len(rows))
    ]
    journal = book.journal(_dialect(registry, voucher))
    await _append(
        conn, registry, rows, voucher, reversal=False, kept=kept, journal=(journal, moved)
    )


def _dialect(registry: Any, voucher: Voucher) -> Any:
    return registry.store_for(voucher.entity).dialect


def _refusal(rule: str, at: str, exc: ValidationFailed, target: str) -> ValidationFailed:
    """A ledger row's or target's field errors, pointed at the posting's line."""
    return ValidationFailed(
        [
            FieldError(at, e.code, f"rule '{rule}': {target}.{e.field}: {e.message}", rule=rule)
            for e in exc.errors
        ]
    )


def _collect_post(
    registry: Any, item: PendingPost, rows: list[_Row], increments: list[_Increment]
) -> None:
    ledger: PostingStore = registry.store_for(item.ledger)
    try:
        values = ledger.validator.validate(dict(item.values))
    except ValidationFailed as failed:
        raise _refusal(item.rule, item.at, failed, item.ledger) from None
    row = _Row(ledger, dict(item.values), values, item.at, item.ctx)
    rows.append(row)
    if item.balance is None:
        return
    balance: PostingStore = registry.store_for(item.balance.entity)
    assert balance.entity.balance is not None  # checked at load time
    key = {name: values.get(name) for name in balance.entity.balance.key}
    _check_key(item.rule, item.at, balance, key)
    computed = {f.name for f in item.compute.fields} if item.compute is not None else set()
    deltas = {
        name: Decimal(values[source])
        for name, source in item.balance.add.items()
        if values.get(source) is not None and source not in computed
    }
    increments.append(
        _Increment(
            balance,
            "balance",
            deltas,
            item.at,
            item.ctx,
            key,
            row=row,
            after=dict(item.balance.after),
            compute=item.compute,
            add=item.balance.add,
            rule=item.rule,
        )
    )


def _check_key(rule: str, at: str, balance: PostingStore, key: Mapping[str, Any]) -> None:
    empty = [name for name, value in key.items() if value in (None, "")]
    if empty:
        message = (
            f"rule '{rule}': the {balance.entity.qualified_name} row is named by "
            f"{', '.join(balance.entity.balance.key if balance.entity.balance else ())}; "
            f"{', '.join(empty)} is empty"
        )
        raise ValidationFailed([FieldError(at, "required", message, rule=rule)])


def _collect_adjust(registry: Any, item: PendingAdjust, increments: list[_Increment]) -> None:
    target: PostingStore = registry.store_for(item.entity)
    deltas: dict[str, Decimal] = {}
    errors: list[FieldError] = []
    for name, value in item.add.items():
        if value in (None, ""):
            continue
        field_def = target.entity.fields[name]
        try:
            deltas[name] = Decimal(_unbounded_coercer(field_def)(value))
        except InvalidValue as exc:
            message = f"rule '{item.rule}': {item.entity}.{name}: {exc.message}"
            errors.append(FieldError(item.at, exc.code, message, rule=item.rule))
    if errors:
        raise ValidationFailed(errors)
    deltas = {name: delta for name, delta in deltas.items() if delta}
    if not deltas:
        return  # nothing moves: no row is made, locked or journalled
    if item.key is not None:
        try:
            key = target.validator.validate(dict(item.key), partial=True)
        except ValidationFailed as failed:
            raise _refusal(item.rule, item.at, failed, item.entity) from None
        _check_key(item.rule, item.at, target, key)
        increments.append(_Increment(target, "balance", deltas, item.at, item.ctx, key))
        return
    if item.id in (None, ""):
        return  # no record named (an optional reference): nothing to adjust
    ident = reference_id(item.id)
    if ident is None or len(ident) > 18:
        message = f"rule '{item.rule}': {item.id!r} is not an id of {item.entity}"
        raise ValidationFailed([FieldError(item.at, "rule", message, rule=item.rule)])
    increments.append(_Increment(target, "record", deltas, item.at, item.ctx, id=int(ident)))


def _unbounded(field_def: Any) -> Any:
    """The field without ``min``/``max``: a delta may be negative (the sum is checked)."""
    return dataclasses.replace(field_def, min=None, max=None)


_COERCERS: dict[int, tuple[Any, Callable[[Any], Any]]] = {}


def _unbounded_coercer(field_def: Any) -> Callable[[Any], Any]:
    """The coercer of ``_unbounded(field_def)``, made once per field definition (the
    definition is kept with it, so that its id is never reused while cached)."""
    cached = _COERCERS.get(id(field_def))
    if cached is None or cached[0] is not field_def:
        cached = _COERCERS[id(field_def)] = (
            field_def,
            kind_of(field_def).coercer(_unbounded(field_def)),
        )
    return cached[1]


def _balance(rows: list[_Row]) -> None:
    """Balanced ledgers: each one's debit sum equals its credit sum, exactly; a difference
    within the tolerance becomes a round-off row when one is declared."""
    by_ledger: dict[str, list[_Row]] = {}
    for row in rows:
        by_ledger.setdefault(row.store.entity.qualified_name, []).append(row)
    for name, group in by_ledger.items():
        ledger = group[0].store.entity.ledger
        rule = ledger.balanced if ledger is not None else None
        if rule is None:
            continue
        debit = sum((Decimal(r.values.get(rule.debit) or 0) for r in group), Decimal(0))
        credit = sum((Decimal(r.values.get(rule.credit) or 0) for r in group), Decimal(0))
        difference = debit - credit
        if not difference:
            continue
        if rule.round_off is None or abs(difference) > rule.tolerance:
            raise ValidationFailed(
                [
                    FieldError(
                        "",
                        UNBALANCED,
                        f"{name}: debits ({debit}) and credits ({credit}) of this voucher "
                        f"differ by {difference}"
                        + (
                            f" (round-off takes at most {rule.tolerance})" if rule.round_off else ""
                        ),
                    )
                ],
                code=UNBALANCED,
            )
        body = dict(rule.round_off.values)
        body[rule.credit if difference > 0 else rule.debit] = str(abs(difference))
        body.setdefault(rule.debit, "0")
        body.setdefault(rule.credit, "0")
        if ledger is not None and ledger.date is not None:
            body.setdefault(ledger.date, group[0].body.get(ledger.date))
        store = group[0].store
        try:
            values = store.validator.validate(body)
        except ValidationFailed as failed:
            raise _refusal("round_off", "", failed, name) from None
        rows.append(_Row(store, body, values, "", group[0].ctx))


async def _check_locks(conn: Connection, registry: Any, rows: list[_Row]) -> None:
    """No row dated on or before its ledger's lock date (409 ``period_locked``)."""
    dates: dict[tuple[str, str], Any] = {}
    for row in rows:
        ledger = row.store.entity.ledger
        if ledger is None or ledger.lock is None or ledger.date is None:
            continue
        lock = ledger.lock
        if (lock.entity, lock.field) not in dates:
            target = registry.store_for(lock.entity)
            dates[lock.entity, lock.field] = await book.lock_date(conn, target, lock.field)
        locked = dates[lock.entity, lock.field]
        posted = book.as_date(row.values.get(ledger.date))
        if locked is not None and posted is not None and posted <= locked:
            raise Conflict(
                f"the books are closed until {locked.isoformat()}: nothing dated "
                f"{posted.isoformat()} can be posted to {row.store.entity.qualified_name}",
                [
                    FieldError(
                        row.at or ledger.date, PERIOD_LOCKED, f"{posted} is in a closed period"
                    )
                ],
                code=PERIOD_LOCKED,
            )


async def _apply(
    conn: Connection,
    increments: list[_Increment],
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
    by_table: dict[str, list[_Increment]] = {}
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


async def _touch_documents(conn: Connection, increments: list[_Increment]) -> None:
    """Lock the documents whose lines the voucher moves, and move their version on
    (``RecordStore.touch_documents``): first of all, by table, each in id order. A line is
    written as its document is, after it, so a voucher and a write of the document cannot
    deadlock; and a submit of the document that read its lines before this voucher's move
    fails its version check instead of keeping rollups from the lines' old values."""
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
    conn: Connection, inc: _Increment, increments: list[_Increment], unsettled: set[int]
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


async def _move(conn: Connection, inc: _Increment, ctx: WriteContext, sign: int) -> None:
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
            new[field_name] = _unbounded_coercer(field_def)(after)
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


def _fill_after(inc: _Increment, stored: Mapping[str, Any]) -> None:
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


async def _append(
    conn: Connection,
    registry: Any,
    rows: list[_Row],
    voucher: Voucher,
    *,
    reversal: bool,
    kept: list[dict[str, Any]],
    journal: tuple[book.Journal, list[book.Entry]] | None = None,
) -> list[int]:
    """Insert the ledger rows (their voucher fields and ``after`` values filled by the
    engine), in order; their ids. Consecutive rows of one ledger whose creates need nothing
    after the INSERT but their rules are written in one statement (``batch.append``), the
    others one by one through the create pipeline. The ``kept`` audit rows and, at submit,
    the journal (an entry per row, then ``journal``'s entries of the moves) are written
    with the last rows where those go in one statement (``batch.Tail``), else after them."""
    ids: list[int] = []
    by_ledger = itertools.groupby(rows, key=lambda row: row.store.entity.qualified_name)
    groups = [list(run) for _, run in by_ledger]
    done = False  # the audit rows and the journal written
    for n, group in enumerate(groups):
        store = group[0].store
        prepared = [(row, *_prepare(row, voucher, reversal)) for row in group]
        last = n == len(groups) - 1 and batch.tail_fits(len(group))
        if not (
            (len(group) > 1 or last)
            and batch.appends_together(store)
            and all(batch.appends_as_prepared(p) for _, _, p in prepared)
        ):
            for row, body, p in prepared:
                record = await store.create(conn, body, row.ctx, prepared=p)
                ids.append(int(record["id"]))
            continue
        for row, _, p in prepared:  # a writer whose rights are limited: the references' checks
            await store.references.resolve(conn, p.values, row.ctx)
        values = [(p.values, row.ctx.user_id) for row, _, p in prepared]
        tail = None
        if last:
            journal_rows = _journal_rows(rows, ids, journal[1]) if journal is not None else None
            tail = batch.Tail(
                kept, (voucher.entity, voucher.id, journal_rows) if journal_rows else None
            )
        written = await batch.append(conn, store, values, tail)
        done = tail is not None
        for (row, _, _), record in zip(prepared, written, strict=True):
            store._check_rules(RuleEvent.CREATE, record, None, row.ctx, [])
            ids.append(int(record["id"]))
    if not done:
        await registry.audit.add_many(conn, kept)
        if journal is not None:
            entries = [
                _ledger_entry(seq, row, ident)
                for seq, (row, ident) in enumerate(zip(rows, ids, strict=True))
            ]
            await journal[0].write(conn, voucher.entity, voucher.id, [*entries, *journal[1]])
    return ids


def _ledger_entry(seq: int, row: _Row, ident: int) -> book.Entry:
    return book.Entry(seq, "ledger", row.store.entity.qualified_name, ident, {})


def _journal_rows(
    rows: list[_Row], ids: list[int], moved: list[book.Entry]
) -> list[tuple[Any, ...]]:
    """The journal's rows for a ``batch.Tail``: a ledger row written already with its id,
    one of the tail's statement by its position there (``row_ref``), then the moves."""
    entries: list[tuple[Any, ...]] = []
    for seq, row in enumerate(rows):
        written = seq < len(ids)
        values = book.journal_values(_ledger_entry(seq, row, ids[seq] if written else 0))
        if written:
            entries.append((*values, None))
        else:
            entries.append((*values[:3], None, *values[4:], seq - len(ids)))
    entries += [(*book.journal_values(entry), None) for entry in moved]
    return entries


def _prepare(row: _Row, voucher: Voucher, reversal: bool) -> tuple[dict[str, Any], PreparedCreate]:
    """The body of a ledger row's create, and the create prepared as ``EntityStore.create``
    does, with the fields the engine fills."""
    store = row.store
    body = {k: v for k, v in row.body.items() if k not in row.after and k not in LEDGER_FIELDS}
    # the body as validated when the voucher was collected, unless fields were taken out
    validated = row.validated if len(body) == len(row.body) else None
    prepared = store.prepare_create(body, row.ctx, validated=validated)
    voucher_type, voucher_id, is_reversal = LEDGER_FIELDS
    system: dict[str, Any] = {voucher_type: voucher.entity, voucher_id: voucher.id}
    system[is_reversal] = reversal
    for name, value in row.after.items():
        field_def = store.entity.fields[name]
        system[name] = None if value is None else _unbounded_coercer(field_def)(value)
    prepared.values.update(system)
    return body, prepared


async def _cancel(conn: Connection, registry: Any, voucher: Voucher, ctx: WriteContext) -> None:
    journal = book.journal(_dialect(registry, voucher))
    entries = await journal.entries(conn, voucher.entity, voucher.id)
    if not entries:
        return
    rows: dict[int, _Row] = {}
    originals = await _originals(conn, registry, [e for e in entries if e.kind == "ledger"])
    for entry in entries:
        if entry.kind != "ledger":
            continue
        store: PostingStore = registry.store_for(entry.target)
        original = originals[entry.target, entry.target_id]
        body = _reversed(store.entity.ledger, store, original)
        values = store.validator.validate(dict(body))
        rows[entry.seq] = _Row(store, body, values, entry.at, ctx)
    await _check_locks(conn, registry, list(rows.values()))
    increments = [
        _Increment(
            registry.store_for(entry.target),
            entry.kind,
            dict(entry.deltas),
            entry.at,
            ctx,
            id=entry.target_id,
            row=rows.get(entry.ledger_seq) if entry.ledger_seq is not None else None,
            after=entry.after,
        )
        for entry in entries
        if entry.kind != "ledger"
    ]
    kept: list[dict[str, Any]] = []
    await _apply(conn, increments, ctx, sign=-1, kept=kept)
    await _append(conn, registry, list(rows.values()), voucher, reversal=True, kept=kept)


async def _originals(
    conn: Connection, registry: Any, entries: list[book.Entry]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The ledger rows the entries name, read with one query per ledger (a row that is
    gone answers as a read of it alone does)."""
    wanted: dict[str, list[int]] = {}
    for entry in entries:
        wanted.setdefault(entry.target, []).append(entry.target_id)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for target, ids in wanted.items():
        store: PostingStore = registry.store_for(target)
        records = await store.get_many(conn, ids)
        for ident in ids:
            record = records.get(str(ident))
            found[target, ident] = record if record is not None else await store.get(conn, ident)
    return found


def _reversed(
    ledger: LedgerDef | None, store: PostingStore, original: Mapping[str, Any]
) -> dict[str, Any]:
    """The body of the row reversing ``original``: its fields, amounts negated."""
    amounts = set(ledger.amounts if ledger is not None else ())
    body: dict[str, Any] = {}
    for name, field_def in store.entity.fields.items():
        if name in LEDGER_FIELDS or not field_def.is_stored or not field_def.is_writable:
            continue
        value = original.get(name)
        if name in amounts and value is not None:
            value = -Decimal(value)
            value = str(value.copy_abs() if value.is_zero() else value)
        body[name] = value
    return body
