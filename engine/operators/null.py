"""Empty or not: ``isnull``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.operators._base import Operator, register
from metadata._operators import FILTER_OPERATORS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ColumnElement


@register
class IsNull(Operator):
    spec = FILTER_OPERATORS["isnull"]

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return column.is_(None) if values[0] else column.is_not(None)  # type: ignore[no-any-return]

    def holds(self, actual: Any, expected: Any) -> bool:
        return (actual is None) is bool(expected)
