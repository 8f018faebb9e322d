"""Applying a voucher's postings at submit, and reversing them at cancel.

At submit, the ``post`` and ``adjust`` actions have only *collected* what they would do
(``engine.postings.pending``). Then, in the submit's transaction:

1. every ledger row is validated, balanced vouchers are checked (a round-off row takes a
   difference within the tolerance) and period locks are checked — nothing written yet
   (here; the rows and increments it makes are ``engine.postings.parts``);
2. the documents whose lines the voucher moves are locked first, in id order, as a write
   of the document locks it before its lines; then the balance rows the voucher moves are
   found, or inserted when missing, in key order (steps 2 and 3: ``engine.postings.moving``);
3. every increment (balance rows and records) is applied **sorted by table, then row id**:
   each row is locked (``FOR NO KEY UPDATE`` on PostgreSQL), its new value computed in
   exact decimals and checked against the balance's limits, then written — on PostgreSQL
   a balance row in one guarded ``UPDATE`` that does all three (``book.guarded_move``),
   the locked read kept for a move it refuses, to say why. Two transactions
   therefore always lock the rows they share in the same order: one waits for the other,
   neither waits for a row the other will only lock later, so they cannot deadlock, and
   no update is lost (the second reads the first's committed value);
4. the ledger rows are appended (their ``after`` fields from the balances just moved), and
   the journal records every row and increment (``engine.postings.appending``).

At cancel, the journal is read back: the increments are applied negated (same order, same
limits: a receipt whose stock has been issued cannot be cancelled) and every ledger row
gets a reversing row (amounts negated, ``is_reversal: true``). A refusal anywhere raises,
and the caller's transaction rolls everything back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.errors import Conflict, FieldError, ValidationFailed
from engine.fieldtypes import InvalidValue
from engine.postings import book
from engine.postings.appending import append_rows
from engine.postings.moving import apply_increments
from engine.postings.parts import Increment, Row, unbounded_coercer
from engine.postings.pending import PendingAdjust, PendingPost, Voucher
from engine.references import reference_id
from metadata import LEDGER_FIELDS, RuleEvent

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.database import Connection
    from engine.postings.book import PostingStore
    from engine.writes.context import WriteContext
    from metadata import LedgerDef

UNBALANCED = "unbalanced"
PERIOD_LOCKED = "period_locked"


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
    rows: list[Row] = []
    increments: list[Increment] = []
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
    await apply_increments(conn, increments, ctx, sign=1, kept=kept)
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
    await append_rows(
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
    registry: Any, item: PendingPost, rows: list[Row], increments: list[Increment]
) -> None:
    ledger: PostingStore = registry.store_for(item.ledger)
    try:
        values = ledger.validator.validate(dict(item.values))
    except ValidationFailed as failed:
        raise _refusal(item.rule, item.at, failed, item.ledger) from None
    row = Row(ledger, dict(item.values), values, item.at, item.ctx)
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
        Increment(
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


def _collect_adjust(registry: Any, item: PendingAdjust, increments: list[Increment]) -> None:
    target: PostingStore = registry.store_for(item.entity)
    deltas: dict[str, Decimal] = {}
    errors: list[FieldError] = []
    for name, value in item.add.items():
        if value in (None, ""):
            continue
        field_def = target.entity.fields[name]
        try:
            deltas[name] = Decimal(unbounded_coercer(field_def)(value))
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
        increments.append(Increment(target, "balance", deltas, item.at, item.ctx, key))
        return
    if item.id in (None, ""):
        return  # no record named (an optional reference): nothing to adjust
    ident = reference_id(item.id)
    if ident is None or len(ident) > 18:
        message = f"rule '{item.rule}': {item.id!r} is not an id of {item.entity}"
        raise ValidationFailed([FieldError(item.at, "rule", message, rule=item.rule)])
    increments.append(Increment(target, "record", deltas, item.at, item.ctx, id=int(ident)))


def _balance(rows: list[Row]) -> None:
    """Balanced ledgers: each one's debit sum equals its credit sum, exactly; a difference
    within the tolerance becomes a round-off row when one is declared."""
    by_ledger: dict[str, list[Row]] = {}
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
        rows.append(Row(store, body, values, "", group[0].ctx))


async def _check_locks(conn: Connection, registry: Any, rows: list[Row]) -> None:
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


async def _cancel(conn: Connection, registry: Any, voucher: Voucher, ctx: WriteContext) -> None:
    journal = book.journal(_dialect(registry, voucher))
    entries = await journal.entries(conn, voucher.entity, voucher.id)
    if not entries:
        return
    rows: dict[int, Row] = {}
    originals = await _originals(conn, registry, [e for e in entries if e.kind == "ledger"])
    for entry in entries:
        if entry.kind != "ledger":
            continue
        store: PostingStore = registry.store_for(entry.target)
        original = originals[entry.target, entry.target_id]
        body = _reversed(store.entity.ledger, store, original)
        values = store.validator.validate(dict(body))
        rows[entry.seq] = Row(store, body, values, entry.at, ctx)
    await _check_locks(conn, registry, list(rows.values()))
    increments = [
        Increment(
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
    await apply_increments(conn, increments, ctx, sign=-1, kept=kept)
    await append_rows(conn, registry, list(rows.values()), voucher, reversal=True, kept=kept)


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
