"""What one write changes of a rollup, from the source record before and after it (the
*delta*), so that keeping a rollup costs the same with ten source records or a million.

A record's *contribution* to a rollup is what it adds to the aggregate: nothing when it does
not exist or does not match the ``where``; else 1 (``count``), its value (``sum``, an empty
value adding 0) or its value as a candidate extreme (``min``/``max``). A write moves the
old contribution out of the old target and the new one into the new target (the same one
unless the record was re-parented); ``Delta`` collects them per target row.

``Matcher`` judges a ``where`` in Python, on the record's values, as the SQL judges it on
its columns. It only exists for conditions on columns whose values compare the same in
both (text, enums, booleans, integers); a group with another (a date, a decimal, a
reference) is kept by recomputing, as before (``RollupGroup.incremental``).
"""

from __future__ import annotations

import functools
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine.operators import Arity, operator
from metadata import FieldType
from metadata._rollup_model import PARENT, RollupFunction

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from engine.query import QueryColumn, QueryColumns
    from metadata._rollup_model import RollupDef

_COMPARABLE = frozenset(
    {
        FieldType.STRING,
        FieldType.TEXT,
        FieldType.EMAIL,
        FieldType.URL,
        FieldType.PHONE,
        FieldType.ENUM,
        FieldType.BOOLEAN,
        FieldType.INTEGER,
    }
)
"""Column types whose record value and filter value compare alike in Python."""


class NotComparable(Exception):
    """A ``where`` condition that Python cannot judge like the SQL (the group recomputes)."""


class Matcher:
    """One rollup's ``where``, judged on a source record (and a line's parent)."""

    def __init__(
        self,
        rollup: RollupDef,
        source: QueryColumns,
        parent: QueryColumns | None,
    ) -> None:
        self.conditions: list[tuple[bool, str, Any, Any]] = []
        for key, text in rollup.where:
            parts = key.split("__")
            columns, on_parent = source, False
            if parts[0] == PARENT:
                if parent is None:
                    raise NotComparable(key)
                columns, on_parent, parts = parent, True, parts[1:]
            name, op = parts[0], (parts[1] if len(parts) > 1 else "eq")
            found = operator(op)
            info = columns.columns.get(name)
            if info is None or info.type not in _COMPARABLE:
                raise NotComparable(key)
            values = found.values(text, functools.partial(_parse, columns, info), key)
            if found.spec.arity is Arity.FLAG:
                expected: Any = values[0]
            elif found.spec.arity is Arity.MANY:
                expected = tuple(values)
            else:
                expected = values[0]
            self.conditions.append((on_parent, name, found, expected))

    def matches(self, record: Mapping[str, Any], parent: Mapping[str, Any] | None) -> bool:
        for on_parent, name, found, expected in self.conditions:
            holder = parent if on_parent else record
            if holder is None:
                return False
            if not found.holds(_plain(holder.get(name)), expected):
                return False
        return True


def _parse(columns: QueryColumns, info: QueryColumn, item: str) -> Any:
    return columns.parse(info, item)


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


class Delta:
    """What the writes of one transaction step change of one target row: per rollup, the
    amount added (``sum``/``count``), or the values removed and added (``min``/``max``)."""

    __slots__ = ("added", "amounts", "removed")

    def __init__(self, width: int) -> None:
        self.amounts: list[Any] = [0] * width
        self.removed: list[list[Any]] = [[] for _ in range(width)]
        self.added: list[list[Any]] = [[] for _ in range(width)]


def contribution(
    rollup: RollupDef,
    matcher: Matcher,
    record: Mapping[str, Any] | None,
    parent: Mapping[str, Any] | None,
) -> Any:
    """``record``'s contribution to ``rollup``: None when it counts for nothing."""
    if record is None or not matcher.matches(record, parent):
        return None
    if rollup.function is RollupFunction.COUNT:
        return 1
    assert rollup.of is not None
    value = record.get(rollup.of)
    if rollup.function is RollupFunction.SUM:
        return value if value is not None else None
    return value


def add(
    deltas: dict[int, Delta],
    width: int,
    target: int | None,
    index: int,
    function: RollupFunction,
    value: Any,
    sign: int,
) -> None:
    """Move ``value`` (a contribution, None: nothing) into (``sign`` 1) or out of (-1) the
    target row ``target``'s rollup number ``index``."""
    if target is None or value is None:
        return
    delta = deltas.get(target)
    if delta is None:
        delta = deltas[target] = Delta(width)
    if function in {RollupFunction.SUM, RollupFunction.COUNT}:
        delta.amounts[index] = delta.amounts[index] + (value if sign > 0 else -value)
    elif sign > 0:
        delta.added[index].append(value)
    else:
        delta.removed[index].append(value)


def kept_after(
    function: RollupFunction, before: Any, delta: Delta, index: int, to_decimal: bool
) -> tuple[bool, Any]:
    """The kept value after ``delta`` from ``before`` (read under the row's lock), and
    whether it is known (False: an extreme was removed, the sources must tell the next)."""
    if function in {RollupFunction.SUM, RollupFunction.COUNT}:
        amount = delta.amounts[index]
        if to_decimal:
            return True, Decimal(before or 0) + Decimal(amount)
        return True, int(before or 0) + int(amount)
    removed = [v for v in delta.removed[index] if v is not None]
    added = []
    for value in delta.added[index]:  # a value moved out and back in stays (a submit)
        if value is None:
            continue
        if value in removed:
            removed.remove(value)
        else:
            added.append(value)
    pick = max if function is RollupFunction.MAX else min
    if removed:
        if before is None:
            return False, None
        # a removed value at (or beyond) the extreme may have been it: ask the sources
        if any(pick(v, before) == v for v in removed):
            return False, None
    candidates = [v for v in (before, *added) if v is not None]
    value = pick(candidates) if candidates else None
    if to_decimal and isinstance(value, int):
        value = Decimal(value)
    return True, value


def same_values(rollups: Sequence[RollupDef], delta: Delta) -> bool:
    """Whether ``delta`` changes nothing (its amounts 0, the extremes moved the same)."""
    for index, rollup in enumerate(rollups):
        if rollup.function in {RollupFunction.SUM, RollupFunction.COUNT}:
            if delta.amounts[index] != 0:
                return False
        elif sorted_values(delta.removed[index]) != sorted_values(delta.added[index]):
            return False
    return True


def sorted_values(values: list[Any]) -> list[Any]:
    return sorted((v for v in values if v is not None), key=lambda v: (str(type(v)), v))
