"""Rebuilding rollups from their source records: what ``tessera recompute`` runs, and what
tests use to prove that no write left a kept value behind (drift).

Every target row of each group is refreshed with the same statements a write uses
(``RollupGroup.refresh``), in batches, without writing unless asked to (``fix``). Groups
are visited upstream first, so that a fixed order line's billed amount is what its order's
rollup then reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from engine.rollups._group import _same
from engine.sql import compile_sql

if TYPE_CHECKING:
    from collections.abc import Collection

    from engine.database import Database
    from engine.rollups._group import RollupGroup
    from engine.rollups._keep import RollupPlan

BATCH = 500


@dataclass(frozen=True, slots=True)
class Drift:
    """One kept value that differs from what its source records give."""

    field: str
    """``pack.entity.field``."""
    record_id: int
    stored: Any
    expected: Any

    def __str__(self) -> str:
        return (
            f"{self.field} of record {self.record_id}: "
            f"{self.stored} stored, {self.expected} expected"
        )


def selected_groups(plan: RollupPlan, names: Collection[str] = ()) -> list[RollupGroup]:
    """The groups keeping ``names`` (``pack.entity.field`` or ``pack.entity``; all when
    empty), upstream first; ``KeyError`` naming what no rollup keeps."""
    kept = {
        f"{g.target.entity.qualified_name}.{field}": g for g in plan.groups for field in g.fields
    }
    entities = {g.target.entity.qualified_name for g in plan.groups}
    unknown = [n for n in names if n not in kept and n not in entities]
    if unknown:
        raise KeyError(", ".join(unknown))
    wanted = [
        g
        for g in plan.groups
        if not names
        or g.target.entity.qualified_name in names
        or any(f"{g.target.entity.qualified_name}.{f}" in names for f in g.fields)
    ]
    return sorted(wanted, key=lambda g: (_depth(plan, g), g.order))


def selected_fields(plan: RollupPlan, names: Collection[str] = ()) -> list[str]:
    """The kept fields ``names`` select (``pack.entity.field`` or ``pack.entity``; all
    when empty), as ``pack.entity.field``, upstream first."""
    return [
        f"{entity}.{field}"
        for group in selected_groups(plan, names)
        for field in group.fields
        for entity in (group.target.entity.qualified_name,)
        if not names or entity in names or f"{entity}.{field}" in names
    ]


def _depth(plan: RollupPlan, group: RollupGroup, seen: frozenset[int] = frozenset()) -> int:
    upstream = [g for g in plan.groups if group in g.downstream and id(g) not in seen]
    return 1 + max((_depth(plan, g, seen | {id(group)}) for g in upstream), default=0)


async def drift(
    database: Database,
    plan: RollupPlan,
    names: Collection[str] = (),
    *,
    fix: bool = False,
) -> list[Drift]:
    """Every kept value of ``names`` (all rollups when empty) that differs from its source
    records; with ``fix``, each is rewritten (its record's ``version`` + 1). One short
    transaction per batch of target rows, so that a live instance is never locked long."""
    found: list[Drift] = []
    wanted = set(selected_fields(plan, names))
    for group in selected_groups(plan, names):
        table = group.target.table
        page = compile_sql(
            select(table.c.id)
            .where(table.c.id > bindparam("after"))
            .order_by(table.c.id)
            .limit(BATCH),
            group.dialect,
        )
        entity = group.target.entity.qualified_name
        after = 0
        while True:
            async with database.transaction() as conn:
                rows = await conn.fetch(page.sql, page.args({"after": after}))
                if not rows:
                    break
                ids = [int(row[0]) for row in rows]
                after = ids[-1]
                changes = await group.refresh(conn, ids, fix=fix)
            found.extend(
                Drift(f"{entity}.{name}", change.record_id, change.before[name], change.after[name])
                for change in changes
                for name in group.fields
                if f"{entity}.{name}" in wanted
                and not _same(change.before[name], change.after[name])
            )
    return found
