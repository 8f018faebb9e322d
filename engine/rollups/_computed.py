"""Computed fields of a record kept by rollups that read what the rollups keep (an order's
``billed_percent: "total and billed_amount / total * 100"`` over its rolled-up
``billed_amount``): recomputed, in the same transaction, whenever a rollup changes the
record, since no write of the record itself will.

They are evaluated as a write evaluates them (``engine.computed``), over the record as
stored with its lines and the references its expressions traverse, and only the values that
changed are written (the rollup's update already counted the record's new ``version``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import bindparam, update

from engine.expressions import Scope
from engine.sql import compile_sql
from engine.writes.context import WriteContext
from metadata import expression_names

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from engine.database import Connection
    from engine.store import RecordStore


class ComputingStore(Protocol):
    """What recomputing needs of an entity's store (``engine.writes.pipeline.EntityStore``)."""

    records: RecordStore
    computed: Any
    """``engine.computed.ComputedFields``."""
    references: Any
    """``engine.writes.references.References``."""


def reading(store: ComputingStore, kept: Collection[str]) -> bool:
    """Whether a computed field of ``store``'s entity reads one of ``kept`` (directly or
    through other computed fields)."""
    computed = {
        f.name: f.computed or "" for f in store.records.entity.fields.values() if f.computed
    }
    touched = set(kept)
    while True:
        found = {
            n for n, e in computed.items() if n not in touched and expression_names(e) & touched
        }
        if not found:
            return bool(touched - set(kept))
        touched |= found


class Recomputer:
    """The computed fields of one target entity, re-evaluated after rollups changed it."""

    def __init__(self, store: ComputingStore) -> None:
        self.store = store
        entity = store.records.entity
        self.names = tuple(f.name for f in entity.fields.values() if f.computed and f.is_stored)
        table = store.records.table
        self._update = compile_sql(
            update(table)
            .where(table.c.id == bindparam("computed_id"))
            .values({name: bindparam(f"c_{name}") for name in self.names}),
            store.records.dialect,
        )

    async def run(self, conn: Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Re-evaluate the computed fields of records ``ids``; the values that changed."""
        records = await self.store.records.get_many(conn, sorted(ids))
        ctx = WriteContext()
        await self.store.references.load(conn, records.values(), ctx)
        changed: dict[int, dict[str, Any]] = {}
        for record in records.values():
            scope = Scope(self.store.references.view(record, ctx))
            values = self.store.computed.compute(scope)
            if all(values.get(n) == record.get(n) for n in self.names):
                continue
            encoded = self.store.records.encode(values)
            params: dict[str, Any] = {f"c_{n}": encoded.get(n) for n in self.names}
            params["computed_id"] = int(record["id"])
            await conn.execute(self._update.sql, self._update.args(params))
            changed[int(record["id"])] = {n: values.get(n) for n in self.names}
        return changed
