"""A voucher's ledger rows appended and its journal written: step 4 of
``engine.postings.voucher``, after every increment has moved (a row's ``after`` fields are
the balances as moved). Rows that can go in one statement do (``engine.postings.batch``);
the others go one by one through the create pipeline.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from engine.postings import batch, book
from engine.postings.parts import unbounded_coercer
from metadata import LEDGER_FIELDS, RuleEvent

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.postings.parts import Row
    from engine.postings.pending import Voucher
    from engine.writes.context import PreparedCreate


async def append_rows(
    conn: Connection,
    registry: Any,
    rows: list[Row],
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


def _ledger_entry(seq: int, row: Row, ident: int) -> book.Entry:
    return book.Entry(seq, "ledger", row.store.entity.qualified_name, ident, {})


def _journal_rows(
    rows: list[Row], ids: list[int], moved: list[book.Entry]
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


def _prepare(row: Row, voucher: Voucher, reversal: bool) -> tuple[dict[str, Any], PreparedCreate]:
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
        system[name] = None if value is None else unbounded_coercer(field_def)(value)
    prepared.values.update(system)
    return body, prepared
