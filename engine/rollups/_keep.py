"""Which rollups a write touches, and keeping them in the write's transaction.

A ``Keeper`` is compiled once for each store whose writes can change a rollup: the store
of a source entity, and the store of the parent of a line source (its writes add, change
and remove lines). Every other store has none, and its writes pay nothing (the pipeline
checks ``store.rollups is None``).

After a write, the keeper compares the record before and after (and its lines) on the
fields each group reads, collects the target ids touched (the old *and* the new ``via``:
a re-parented invoice changes both accounts), and the ``RollupPlan`` refreshes them:
groups in a fixed order (target table, then ids ascending), then the groups downstream of
the rows that changed (an order line's billed amount feeding its order's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from engine.sql import compile_sql
from engine.tables import PARENT_COLUMN
from metadata._rollup_model import PARENT

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from engine.database import Connection
    from engine.rollups._group import Change, RollupGroup
    from engine.sql import CompiledSql
    from engine.store import RecordStore

Due = dict["RollupGroup", set[int]]


class RollupPlan:
    """Every rollup group of a project, and how refreshes cascade between them."""

    def __init__(self, groups: Sequence[RollupGroup]) -> None:
        self.groups = tuple(sorted(groups, key=lambda g: g.order))
        for group in self.groups:
            group.link(
                [
                    g
                    for g in self.groups
                    if g.source.entity.qualified_name == group.target.entity.qualified_name
                    and g.reads & set(group.fields)
                ]
            )

    async def refresh(
        self, conn: Connection, due: Mapping[RollupGroup, Iterable[int]]
    ) -> dict[tuple[str, int], dict[str, Any]]:
        """Refresh the target rows ``due`` (and what depends on them); the values written,
        by (target entity, id), with ``version`` counting the updates of each row."""
        written: dict[tuple[str, int], dict[str, Any]] = {}
        pending = {group: set(ids) for group, ids in due.items() if ids}
        while pending:
            following: dict[RollupGroup, set[int]] = {}
            for group in sorted(pending, key=lambda g: g.order):
                await group.lock_downstream(conn, sorted(pending[group]))
                changes = await group.refresh(conn, sorted(pending[group]))
                _record(written, group, changes)
                for downstream in group.downstream:
                    ids = {_via_id(c, downstream) for c in changes}
                    following.setdefault(downstream, set()).update(i for i in ids if i)
            pending = {group: ids for group, ids in following.items() if ids}
        return written


def _record(
    written: dict[tuple[str, int], dict[str, Any]], group: RollupGroup, changes: list[Change]
) -> None:
    entity = group.target.entity.qualified_name
    for change in changes:
        values = written.setdefault((entity, change.record_id), {"version": 0})
        values.update(change.after)
        values.update(change.computed)
        values["version"] += 1


def _via_id(change: Change, downstream: RollupGroup) -> int | None:
    if downstream.via_column == "id":
        return change.record_id
    value = change.vias.get(downstream.via_column)
    return int(value) if value is not None else None


def _id(value: Any) -> int | None:
    """A reference's id as a record holds it (``"12"``, 12, or None)."""
    if value is None or value == "":
        return None
    return int(value)


class Keeper:
    """What one store's writes keep: the groups of its own records, and those of its
    lines (``lines``: children field name → groups whose source is that line entity)."""

    def __init__(
        self,
        plan: RollupPlan,
        records: RecordStore,
        own: Sequence[RollupGroup],
        lines: Mapping[str, Sequence[RollupGroup]],
    ) -> None:
        self.plan = plan
        self.entity = records.entity.qualified_name
        self.own = tuple(own)
        self.lines = {name: tuple(groups) for name, groups in lines.items() if groups}
        self._parent_of: CompiledSql | None = None
        if any(g.via == PARENT for g in self.own):  # a line written on its own (an action)
            table = records.table
            self._parent_of = compile_sql(
                select(table.c[PARENT_COLUMN]).where(table.c.id == bindparam("line_id")),
                records.dialect,
            )

    async def after_write(
        self,
        conn: Connection,
        old: Mapping[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        """Keep the rollups a write of one record changed (``old`` None: a create; ``new``
        None: a delete), in the write's transaction. When the record written is itself
        a target that changed, ``new`` gets the values (and version) written."""
        due: Due = {}
        parent = await self._parent_id(conn, new or old) if self._parent_of is not None else None
        for group in self.own:
            if _changed(group.reads, old, new):
                targets = {parent} if group.via == PARENT else _vias(group.via, old, new)
                due.setdefault(group, set()).update(t for t in targets if t is not None)
        for name, groups in self.lines.items():
            for group in groups:
                due.setdefault(group, set()).update(_line_targets(group, name, old, new))
        if not any(due.values()):
            return
        written = await self.plan.refresh(conn, due)
        if new is not None and new.get("id") is not None:
            mine = written.get((self.entity, int(new["id"])))
            if mine:
                bumps = mine.pop("version")
                new.update(mine)
                new["version"] = int(new["version"]) + bumps

    async def _parent_id(self, conn: Connection, record: Mapping[str, Any] | None) -> int | None:
        if record is None or self._parent_of is None:
            return None
        row = await conn.fetchrow(
            self._parent_of.sql, self._parent_of.args({"line_id": int(record["id"])})
        )
        return int(row[0]) if row is not None and row[0] is not None else None


def _vias(via: str, *records: Mapping[str, Any] | None) -> set[int | None]:
    return {_id(record.get(via)) for record in records if record is not None}


def _changed(
    reads: Iterable[str], old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> bool:
    if old is None or new is None:
        return True
    return any(old.get(name) != new.get(name) for name in reads)


def _line_targets(
    group: RollupGroup, name: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> set[int]:
    """The targets a parent's write touched through its lines ``name``: those of lines
    added, removed or changed on a field the group reads; of every line when a parent
    field the ``where`` reads changed."""
    before = {str(line["id"]): line for line in (old or {}).get(name) or ()}
    after = {str(line["id"]): line for line in (new or {}).get(name) or ()}
    every = bool(group.parent_reads) and _changed(group.parent_reads, old, new)
    touched = [
        line
        for key in before.keys() | after.keys()
        if every
        or key not in before
        or key not in after
        or _changed(group.reads, before[key], after[key])
        for line in (before.get(key), after.get(key))
        if line is not None
    ]
    if not touched:
        return set()
    if group.via == PARENT:
        parent = new if new is not None else None
        return {int(parent["id"])} if parent is not None else set()
    return {i for i in (_id(line.get(group.via)) for line in touched) if i is not None}
