"""Lists of values: ``in`` and ``nin``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_

from engine.operators._base import Operator, register, same
from metadata._operators import FILTER_OPERATORS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ColumnElement


@register
class In(Operator):
    spec = FILTER_OPERATORS["in"]

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return column.in_(list(operands))  # type: ignore[no-any-return]

    def holds(self, actual: Any, expected: Any) -> bool:
        return actual is not None and any(same(actual, value) for value in expected)


@register
class Nin(Operator):
    spec = FILTER_OPERATORS["nin"]

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return or_(column.not_in(list(operands)), column.is_(None))

    def holds(self, actual: Any, expected: Any) -> bool:
        return actual is None or not any(same(actual, value) for value in expected)
