"""One group of rollups: those that share a source entity, a ``via`` and a target entity.

A write keeps a group's target rows in one of two ways, both starting by locking them in id
order (``SELECT … ORDER BY id FOR NO KEY UPDATE`` on PostgreSQL, which the foreign-key locks
of the source records' writers do not block) and reading their current values:

- ``apply``: the values read plus the write's delta (``_delta``), with no aggregate over
  the source records, except the next extreme of a ``min``/``max`` whose extreme left
  (``SELECT max(x) … WHERE via = :id``, over the (via, x) index the checks add);
- ``refresh``: the values recomputed from the source records (``SELECT via, sum(CASE WHEN
  <where> THEN x END), … GROUP BY via``), a *new* statement, so that under READ COMMITTED
  it sees every transaction that committed before the lock was granted. What a write cannot
  prove a delta for uses it, and ``tessera recompute`` uses it to find drift.

Then each row whose values differ is updated (its ``version`` + 1), one statement each.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, case, func, literal, select, update

from engine.errors import EngineError
from engine.fieldtypes import InvalidValue
from engine.operators import Arity, operator
from engine.rollups._delta import Matcher, NotComparable, add, contribution, kept_after
from engine.sql import compile_sql, id_list_condition, id_list_param
from engine.store.columns import build_decoders
from engine.tables import PARENT_COLUMN
from metadata import FieldType
from metadata._rollup_model import PARENT, RollupFunction

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.engine import Dialect

    from engine.database import Connection
    from engine.query import QueryColumns
    from engine.rollups._computed import Recomputer
    from engine.rollups._delta import Delta
    from engine.store import RecordStore
    from metadata._rollup_model import RollupDef


class RollupDefinitionError(EngineError):
    """A rollup's ``where`` holds a value its field cannot take (found when compiling)."""


class Change:
    """One target row whose kept values differ from what its source records give."""

    __slots__ = ("after", "before", "computed", "record_id", "row", "vias")

    def __init__(
        self, record_id: int, before: dict[str, Any], after: dict[str, Any], vias: dict[str, Any]
    ) -> None:
        self.record_id = record_id
        self.before = before
        self.after = after
        self.vias = vias
        """The target row's references that downstream rollups go through."""
        self.computed: dict[str, Any] = {}
        """The target's computed fields that changed with it (``Recomputer``)."""
        self.row: dict[str, Any] = {}
        """The target's other fields downstream rollups read (``RollupGroup.row_reads``)."""


class RollupGroup:
    """Rollups of one source entity into one target entity through one ``via``."""

    def __init__(
        self,
        rollups: Sequence[RollupDef],
        source: RecordStore,
        target: RecordStore,
        parent: RecordStore | None,
        *,
        dialect: Dialect,
        dialect_name: str,
    ) -> None:
        self.rollups = tuple(rollups)
        self.source = source
        self.target = target
        self.via = rollups[0].via
        self.dialect = dialect
        self.dialect_name = dialect_name
        self.fields = tuple(r.field for r in rollups)
        self.reads: frozenset[str] = frozenset().union(*(r.reads for r in rollups))
        """The source's fields whose change may change a kept value."""
        self.parent_reads: frozenset[str] = frozenset().union(*(r.parent_reads for r in rollups))
        """The fields of a line source's parent that a ``where`` reads."""
        self.downstream: tuple[RollupGroup, ...] = ()
        self.recomputer: Recomputer | None = None
        """The target's computed fields that read what this group keeps, if any."""
        """Groups whose source is this group's target and that read a field it keeps."""
        self._converters = tuple(self._converter(r) for r in rollups)
        self._aggregate = compile_sql(self._aggregate_statement(parent), dialect)
        self.matchers = self._matchers(parent)
        self.incremental = self.matchers is not None
        """Whether a write's delta keeps this group (``_delta``); else it recomputes."""
        self._extremes = {
            index: compile_sql(self._extreme_statement(index, parent), dialect)
            for index, r in enumerate(self.rollups)
            if r.function in {RollupFunction.MIN, RollupFunction.MAX}
        }
        self._lock: Any = None
        self._peek: Any = None
        self.row_reads: tuple[str, ...] = ()
        """The target's fields, besides those kept, that downstream groups read."""
        self._update = compile_sql(self._update_statement(), dialect)

    @property
    def order(self) -> tuple[str, str, str]:
        """Groups are refreshed in this order (target table first), so that two writes
        lock the rows of different tables in the same order."""
        return (self.target.table.name, self.source.table.name, self.via)

    def link(self, downstream: Sequence[RollupGroup]) -> None:
        """Set the downstream groups (once every group exists) and compile the lock."""
        self.downstream = tuple(downstream)
        target = self.target.table
        vias = sorted({g.via_column for g in self.downstream} - {"id"})
        fields = self.target.entity.fields
        self.row_reads = tuple(
            sorted(
                {name for g in self.downstream for name in g.reads}
                - set(self.fields)
                - {"id"}
                - set(vias)
                - {n for n in fields if not fields[n].is_stored}
            )
        )
        reads = [*vias, *self.row_reads]
        statement = (
            select(
                target.c.id,
                *(target.c[f] for f in self.fields),
                *(target.c[v] for v in reads),
            )
            .where(id_list_condition(target.c.id, self.dialect_name, "ids"))
            .order_by(target.c.id)
        )
        self._peek = compile_sql(statement, self.dialect)
        if self.dialect_name == "postgresql":
            # FOR NO KEY UPDATE: writers of source records hold FOR KEY SHARE on the target
            # (their foreign key); FOR UPDATE would wait on them, and two of them on each other
            statement = statement.with_for_update(key_share=True)
        self._lock = (compile_sql(statement, self.dialect), ("id", *self.fields, *reads))

    async def lock(self, conn: Connection, ids: Sequence[int]) -> None:
        """Lock the target rows ``ids`` (in id order) without refreshing them."""
        lock, _ = self._lock
        await conn.fetch(lock.sql, lock.args({"ids": id_list_param(ids, self.dialect_name)}))

    async def lock_downstream(self, conn: Connection, ids: Sequence[int]) -> None:
        """Lock, before this group's target rows ``ids``, the rows downstream groups will
        refresh from them (an order before its lines): the order in which a write of the
        order itself locks them (the order's row, then its lines), so that the two cannot
        deadlock. PostgreSQL only (SQLite runs one write at a time)."""
        if not self.downstream or self.dialect_name != "postgresql":
            return
        _, names = self._lock
        width = 1 + len(self.fields)
        rows = await conn.fetch(
            self._peek.sql, self._peek.args({"ids": id_list_param(ids, self.dialect_name)})
        )
        for group in sorted(self.downstream, key=lambda g: g.order):
            column = group.via_column
            if column == "id":
                wanted = {int(row[0]) for row in rows}
            else:
                index = names.index(column, width)
                wanted = {int(row[index]) for row in rows if row[index] is not None}
            if wanted:
                await group.lock(conn, sorted(wanted))

    @property
    def via_column(self) -> str:
        return PARENT_COLUMN if self.via == PARENT else self.via

    # -- compiling --------------------------------------------------------------------------

    def _aggregate_statement(self, parent: RecordStore | None) -> Any:
        source = self.source.table
        via = source.c[self.via_column]
        joined: Any = source
        parent_table = None
        if self.parent_reads:
            assert parent is not None
            parent_table = parent.table.alias("rollup_parent")
            joined = source.join(parent_table, parent_table.c.id == source.c[PARENT_COLUMN])
        names = iter(range(10**6))
        outputs = []
        for rollup in self.rollups:
            conditions = [
                self._condition(rollup, key, text, parent, parent_table, next(names))
                for key, text in rollup.where
            ]
            outputs.append(self._aggregate_of(rollup, and_(*conditions) if conditions else None))
        return (
            select(via, *outputs)
            .select_from(joined)
            .where(id_list_condition(via, self.dialect_name, "ids"))
            .group_by(via)
        )

    def _condition(
        self,
        rollup: RollupDef,
        key: str,
        text: str,
        parent: RecordStore | None,
        parent_table: Any,
        number: int,
    ) -> ColumnElement[bool]:
        parts = key.split("__")
        table: Table = self.source.table
        columns: QueryColumns = self.source.query_columns
        if parts[0] == PARENT:
            assert parent is not None
            table, columns, parts = parent_table, parent.query_columns, parts[1:]
        name, op = parts[0], (parts[1] if len(parts) > 1 else "eq")
        found = operator(op)
        column_info = columns.columns[name]
        try:
            values = found.values(text, lambda item: columns.parse(column_info, item), key)
        except InvalidValue as exc:
            raise RollupDefinitionError(
                f"{rollup.origin}: the rollup to {rollup.kept}: where '{key}': {exc.message}"
            ) from None
        column = table.c[name]
        if found.spec.arity is Arity.FLAG:
            return found.sql(column, (), values)
        params: list[Any] = [
            bindparam(f"w{number}_{i}", value=found.operand(value))
            for i, value in enumerate(values)
        ]
        return found.sql(column, params, values)

    def _aggregate_of(self, rollup: RollupDef, condition: Any) -> Any:
        if rollup.function is RollupFunction.COUNT:
            if condition is None:
                return func.count()
            return func.count(case((condition, literal(1))))
        assert rollup.of is not None
        column: Any = self.source.table.c[rollup.of]  # a decimal on SQLite: a scaled integer
        value = case((condition, column)) if condition is not None else column
        return getattr(func, rollup.function.value)(value)

    def _converter(self, rollup: RollupDef) -> Callable[[Any], Any]:
        """From the aggregate's driver value to the kept field's value."""
        kept = self.target.entity.fields[rollup.field]
        to_decimal = kept.type is FieldType.DECIMAL
        if rollup.function is RollupFunction.COUNT:
            return lambda value: Decimal(int(value or 0)) if to_decimal else int(value or 0)
        assert rollup.of is not None
        field = self.source.entity.fields[rollup.of]
        if rollup.function is RollupFunction.SUM:
            if field.type is FieldType.INTEGER:
                return lambda value: Decimal(int(value or 0)) if to_decimal else int(value or 0)
            if self.dialect_name == "sqlite":
                scale = _scale(field.scale)
                return lambda value: Decimal(int(value or 0)).scaleb(-scale)
            return lambda value: Decimal(value or 0)
        decoder = build_decoders([field], self.dialect_name)[field.name]

        def extreme(value: Any) -> Any:
            if value is None:
                return None
            value = decoder(value) if decoder is not None else value
            return Decimal(value) if to_decimal and isinstance(value, int) else value

        return extreme

    def _update_statement(self) -> Any:
        target = self.target.table
        values: dict[str, Any] = {f: bindparam(f"v_{f}") for f in self.fields}
        values["version"] = target.c.version + 1
        return update(target).where(target.c.id == bindparam("rollup_id")).values(values)

    # -- running ----------------------------------------------------------------------------

    async def refresh(
        self, conn: Connection, ids: Sequence[int], *, fix: bool = True
    ) -> list[Change]:
        """Lock the target rows ``ids``, recompute their kept values from the source records
        and (``fix``) write the ones that differ. The rows that differed."""
        lock, names = self._lock
        param = [id_list_param(ids, self.dialect_name)]
        rows = await conn.fetch(lock.sql, lock.args({"ids": param[0]}))
        if not rows:
            return []
        aggregated = await conn.fetch(self._aggregate.sql, self._aggregate.args({"ids": param[0]}))
        converters = self._converters
        totals = {
            int(row[0]): [
                convert(value) for convert, value in zip(converters, row[1:], strict=True)
            ]
            for row in aggregated
        }
        empty = [convert(None) for convert in self._converters]
        changes = []
        for row in rows:
            record_id = int(row[0])
            after = dict(zip(self.fields, totals.get(record_id, empty), strict=True))
            change = self._change(row, names, after)
            if change is not None:
                changes.append(change)
        if fix:
            await self._write(conn, changes)
        return changes

    async def apply(self, conn: Connection, deltas: Mapping[int, Delta]) -> list[Change]:
        """Lock the target rows of ``deltas`` and move their kept values by what the write
        changed (``_delta``): no aggregate over the source records, except for an extreme
        (``min``/``max``) whose value was removed, asked of the sources through the index on
        (via, field). The rows that changed, written."""
        ids = sorted(deltas)
        lock, names = self._lock
        rows = await conn.fetch(lock.sql, lock.args({"ids": id_list_param(ids, self.dialect_name)}))
        changes = []
        width = 1 + len(self.fields)
        for row in rows:
            record_id = int(row[0])
            delta = deltas[record_id]
            stored = self.target.decode(tuple(row[:width]), names[:width])
            after: dict[str, Any] = {}
            for index, rollup in enumerate(self.rollups):
                kept = self.target.entity.fields[rollup.field]
                known, value = kept_after(
                    rollup.function,
                    stored[rollup.field],
                    delta,
                    index,
                    kept.type is FieldType.DECIMAL,
                )
                if not known:
                    value = await self._extreme(conn, index, record_id)
                after[rollup.field] = value
            change = self._change(row, names, after)
            if change is not None:
                changes.append(change)
        await self._write(conn, changes)
        return changes

    def _change(self, row: Any, names: Sequence[str], after: dict[str, Any]) -> Change | None:
        width = 1 + len(self.fields)
        stored = self.target.decode(tuple(row), names)
        before = {f: stored[f] for f in self.fields}
        if all(_same(before[f], after[f]) for f in self.fields):
            return None
        vias = dict(zip(names[width:], tuple(row)[width:], strict=True))
        change = Change(int(row[0]), before, after, vias)
        change.row = {name: stored[name] for name in self.row_reads}
        return change

    async def _write(self, conn: Connection, changes: list[Change]) -> None:
        for change in changes:
            encoded = self.target.encode(change.after)
            params = {f"v_{f}": encoded[f] for f in self.fields}
            params["rollup_id"] = change.record_id
            await conn.execute(self._update.sql, self._update.args(params))
        if self.recomputer is not None and changes:
            computed = await self.recomputer.run(conn, [c.record_id for c in changes])
            for change in changes:
                change.computed = computed.get(change.record_id, {})

    async def _extreme(self, conn: Connection, index: int, record_id: int) -> Any:
        statement = self._extremes[index]
        row = await conn.fetchrow(statement.sql, statement.args({"target_id": record_id}))
        return self._converters[index](row[0] if row is not None else None)

    # -- deltas -----------------------------------------------------------------------------

    def contributions(
        self,
        deltas: dict[int, Delta],
        old: tuple[int | None, Mapping[str, Any] | None, Mapping[str, Any] | None],
        new: tuple[int | None, Mapping[str, Any] | None, Mapping[str, Any] | None],
    ) -> None:
        """Move one source record's contributions: ``old`` (its target, the record and a
        line's parent as they were; a None record: it did not exist) out, ``new`` in."""
        assert self.matchers is not None
        width = len(self.rollups)
        for index, (rollup, matcher) in enumerate(zip(self.rollups, self.matchers, strict=True)):
            for sign, (target, record, parent) in ((-1, old), (1, new)):
                value = contribution(rollup, matcher, record, parent)
                add(deltas, width, target, index, rollup.function, value, sign)

    def _matchers(self, parent: RecordStore | None) -> tuple[Matcher, ...] | None:
        """The ``where`` of each rollup judged in Python; None when one cannot be (or when a
        sum would be rounded into a kept field of a smaller scale: recomputed once)."""
        for rollup in self.rollups:
            if rollup.function is not RollupFunction.SUM or rollup.of is None:
                continue
            field = self.source.entity.fields[rollup.of]
            kept = self.target.entity.fields[rollup.field]
            if field.type is FieldType.DECIMAL and (
                kept.type is not FieldType.DECIMAL or _scale(kept.scale) < _scale(field.scale)
            ):
                return None
        columns = parent.query_columns if parent is not None else None
        try:
            return tuple(Matcher(r, self.source.query_columns, columns) for r in self.rollups)
        except (NotComparable, KeyError, InvalidValue):
            return None

    def _extreme_statement(self, index: int, parent: RecordStore | None) -> Any:
        """``SELECT max(field) … WHERE via = :target_id AND <where>``: over the index on
        (via, field) the rollups' checks add, the extreme is found without a scan."""
        rollup = self.rollups[index]
        assert rollup.of is not None
        source = self.source.table
        joined: Any = source
        parent_table = None
        if self.parent_reads:
            assert parent is not None
            parent_table = parent.table.alias("rollup_parent")
            joined = source.join(parent_table, parent_table.c.id == source.c[PARENT_COLUMN])
        conditions = [
            self._condition(rollup, key, text, parent, parent_table, number)
            for number, (key, text) in enumerate(rollup.where)
        ]
        aggregate = getattr(func, rollup.function.value)(source.c[rollup.of])
        return (
            select(aggregate)
            .select_from(joined)
            .where(source.c[self.via_column] == bindparam("target_id"), *conditions)
        )


def _scale(scale: int | None) -> int:
    return scale if scale is not None else 2


def _same(stored: Any, computed: Any) -> bool:
    if stored is None or computed is None:
        return stored is None and computed is None
    return bool(stored == computed)
