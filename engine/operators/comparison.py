"""Equality and order: ``eq``, ``ne``, ``gt``, ``gte``, ``lt``, ``lte``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_

from engine.operators._base import Operator, register, same
from metadata._operators import FILTER_OPERATORS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ColumnElement


@register
class Eq(Operator):
    spec = FILTER_OPERATORS["eq"]

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        if values[0] is None:  # a where's ``field is none``
            return column.is_(None)  # type: ignore[no-any-return]
        return column == operands[0]  # type: ignore[no-any-return]

    def holds(self, actual: Any, expected: Any) -> bool:
        return actual is None if expected is None else same(actual, expected)


@register
class Ne(Operator):
    spec = FILTER_OPERATORS["ne"]

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        if values[0] is None:  # a where's ``field is not none``
            return column.is_not(None)  # type: ignore[no-any-return]
        return or_(column != operands[0], column.is_(None))

    def holds(self, actual: Any, expected: Any) -> bool:
        return actual is not None if expected is None else not same(actual, expected)


class _Order(Operator):
    """A comparison of order; an empty value on either side selects nothing."""

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return self.compare(column, operands[0])  # type: ignore[no-any-return]

    def holds(self, actual: Any, expected: Any) -> bool:
        if actual is None or expected is None:
            return False
        try:
            return bool(self.compare(actual, expected))
        except TypeError:
            return False

    def compare(self, left: Any, right: Any) -> Any:
        raise NotImplementedError


@register
class Gt(_Order):
    spec = FILTER_OPERATORS["gt"]

    def compare(self, left: Any, right: Any) -> Any:
        return left > right


@register
class Gte(_Order):
    spec = FILTER_OPERATORS["gte"]

    def compare(self, left: Any, right: Any) -> Any:
        return left >= right


@register
class Lt(_Order):
    spec = FILTER_OPERATORS["lt"]

    def compare(self, left: Any, right: Any) -> Any:
        return left < right


@register
class Lte(_Order):
    spec = FILTER_OPERATORS["lte"]

    def compare(self, left: Any, right: Any) -> Any:
        return left <= right
