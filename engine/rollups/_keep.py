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

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from engine.rollups._delta import same_values
from engine.sql import compile_sql
from engine.tables import PARENT_COLUMN
from metadata._rollup_model import PARENT

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from engine.database import Connection
    from engine.rollups._delta import Delta
    from engine.rollups._group import Change, RollupGroup
    from engine.sql import CompiledSql
    from engine.store import RecordStore

Due = dict["RollupGroup", set[int]]
Deltas = dict["RollupGroup", dict[int, "Delta"]]


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
        self,
        conn: Connection,
        due: Mapping[RollupGroup, Iterable[int]],
        deltas: Mapping[RollupGroup, Mapping[int, Delta]] | None = None,
    ) -> dict[tuple[str, int], dict[str, Any]]:
        """Keep the target rows ``due`` (recomputed from their sources) and those of
        ``deltas`` (moved by what the write changed), and what depends on them; the values
        written, by (target entity, id), with ``version`` counting the updates of each row."""
        written: dict[tuple[str, int], dict[str, Any]] = {}
        recomputed = _recomputed(conn)
        pending = {group: set(ids) for group, ids in due.items() if ids}
        moved = {group: dict(d) for group, d in (deltas or {}).items() if d}
        while pending or moved:
            following: Due = {}
            following_moved: Deltas = {}
            for group in sorted(set(pending) | set(moved), key=lambda g: g.order):
                recompute = pending.get(group, set()) | {
                    i for i in moved.get(group, {}) if (group, i) in recomputed
                }
                delta = {
                    i: d
                    for i, d in moved.get(group, {}).items()
                    if i not in recompute and not same_values(group.rollups, d)
                }
                every = sorted(recompute | set(delta))
                if not every:
                    continue
                if group.target.entity.is_child:  # a line kept: its document first
                    await group.target.touch_documents(conn, every)
                await group.lock_downstream(conn, every)
                changes: list[Change] = []
                if recompute and delta:
                    await group.lock(conn, every)  # in id order, before either path
                if recompute:
                    changes += await group.refresh(conn, sorted(recompute))
                    recomputed.update((group, i) for i in recompute)
                if delta:
                    changes += await group.apply(conn, delta)
                _record(written, group, changes)
                for downstream in group.downstream:
                    _cascade(downstream, changes, following, following_moved)
            pending = {group: ids for group, ids in following.items() if ids}
            moved = {group: d for group, d in following_moved.items() if d}
        return written


_RECOMPUTED: ContextVar[tuple[object, set[tuple[RollupGroup, int]]] | None] = ContextVar(
    "tessera_rollups_recomputed", default=None
)


def _recomputed(conn: Connection) -> set[tuple[RollupGroup, int]]:
    """The (group, target) rows recomputed so far in ``conn``'s transaction. Once a row was
    recomputed, it is recomputed for the rest of the transaction: the recompute may have
    counted a record whose write has not yet moved its delta (the record a trigger or a
    posting ran for, kept after them), which a delta would then count twice."""
    held = _RECOMPUTED.get()
    if held is None or held[0] is not conn:
        held = (conn, set())
        _RECOMPUTED.set(held)
    return held[1]


def _cascade(
    downstream: RollupGroup, changes: list[Change], following: Due, following_moved: Deltas
) -> None:
    """What the target rows ``changes`` change of the rollups ``downstream`` keeps from them:
    a delta from the rows before and after (read under their lock), or a recompute when
    the downstream ``where`` reads their parent."""
    if downstream.incremental and not downstream.parent_reads:
        deltas = following_moved.setdefault(downstream, {})
        for change in changes:
            target = _via_id(change, downstream)
            before = {**change.row, **change.before}
            after = {**change.row, **change.after}
            downstream.contributions(deltas, (target, before, None), (target, after, None))
        return
    ids = {_via_id(c, downstream) for c in changes}
    following.setdefault(downstream, set()).update(i for i in ids if i)


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
        *,
        deleted_as_read: bool = False,
        written: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep the rollups a write of one record changed (``old`` None: a create; ``new``
        None: a delete), in the write's transaction. When the record written is itself
        a target that changed, ``new`` gets the values (and version) written.

        The write's delta keeps them when ``old`` is known to be the row the write replaced
        (``_exact``); ``deleted_as_read``: a delete that was conditional on ``old``'s
        version. Otherwise their targets are recomputed from the sources. ``written``: the
        record as the write itself left it, when its triggers wrote it again since (each of
        those writes kept its own change: the delta here is the write's, ``old`` to it)."""
        due: Due = {}
        deltas: Deltas = {}
        left = written if written is not None and new is not None else new
        exact = _exact(old, left, deleted_as_read)
        parent = await self._parent_id(conn, new or old) if self._parent_of is not None else None
        self._own(parent, old, left, new, exact, due, deltas)
        for name, groups in self.lines.items():
            for group in groups:
                if exact and group.incremental:
                    _line_deltas(group, name, old, left, deltas.setdefault(group, {}))
                else:
                    targets = _line_targets(group, name, old, new)
                    if left is not new:
                        targets |= _line_targets(group, name, old, left)
                    due.setdefault(group, set()).update(targets)
        if not any(due.values()) and not any(deltas.values()):
            return
        kept = await self.plan.refresh(conn, due, deltas)
        if new is not None and new.get("id") is not None:
            mine = kept.get((self.entity, int(new["id"])))
            if mine:
                bumps = mine.pop("version")
                new.update(mine)
                new["version"] = int(new["version"]) + bumps

    def _own(
        self,
        parent: int | None,
        old: Mapping[str, Any] | None,
        left: Mapping[str, Any] | None,
        new: Mapping[str, Any] | None,
        exact: bool,
        due: Due,
        deltas: Deltas,
    ) -> None:
        """The groups of the record's own entity: its delta from ``old`` to ``left`` (the
        write's), or its targets (``new``'s too) recomputed."""
        for group in self.own:
            if group.via == PARENT:
                before = after = parent
                final = None
            else:
                before = _id(old.get(group.via)) if old is not None else None
                after = _id(left.get(group.via)) if left is not None else None
                final = _id(new.get(group.via)) if new is not None else None
            if exact and group.incremental and not group.parent_reads:
                if _changed(group.reads, old, left):
                    group.contributions(
                        deltas.setdefault(group, {}), (before, old, None), (after, left, None)
                    )
            elif _changed(group.reads, old, left) or _changed(group.reads, old, new):
                targets = (before, after, final)
                due.setdefault(group, set()).update(t for t in targets if t is not None)

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


def _exact(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, deleted_as_read: bool
) -> bool:
    """Whether ``old`` is the row the write replaced and ``new`` the row it left: a create
    at version 1, an update one version on (the UPDATE held the row from then on, so no
    other write came between), a delete conditional on ``old``'s version. A balance moved
    by a posting (no ``old``), a record written again by its own triggers, a delete of
    whatever the row was: recomputed."""
    if new is None:
        return old is not None and deleted_as_read
    version = new.get("version")
    if version is None:
        return False
    if old is None:
        return int(version) == 1
    was = old.get("version")
    return was is not None and int(version) == int(was) + 1


def _line_deltas(
    group: RollupGroup,
    name: str,
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    deltas: dict[int, Delta],
) -> None:
    """The contributions a parent's write moved through its lines ``name``: of lines
    added, removed or changed on a field the group reads; of every line when a parent
    field the ``where`` reads changed (a submit: each line of the invoice now counts)."""
    before = {str(line["id"]): line for line in (old or {}).get(name) or ()}
    after = {str(line["id"]): line for line in (new or {}).get(name) or ()}
    every = bool(group.parent_reads) and _changed(group.parent_reads, old, new)
    holder = new if new is not None else old
    parent_id = _id(holder.get("id")) if holder is not None else None
    for key in before.keys() | after.keys():
        was, now = before.get(key), after.get(key)
        if not (every or was is None or now is None or _changed(group.reads, was, now)):
            continue
        if group.via == PARENT:
            target_was = target_now = parent_id
        else:
            target_was = _id(was.get(group.via)) if was is not None else None
            target_now = _id(now.get(group.via)) if now is not None else None
        group.contributions(deltas, (target_was, was, old), (target_now, now, new))
