"""Text matches: ``contains``, ``icontains``, ``startswith`` (text fields only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, func
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

from engine.operators._base import Operator, register
from metadata._operators import FILTER_OPERATORS

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.sql.compiler import SQLCompiler


def like_escape(text: str) -> str:
    """``text`` matched literally by ``LIKE ... ESCAPE '!'``."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


class position(GenericFunction[int]):  # noqa: N801 - an SQL function's name
    """Where ``needle`` starts in ``haystack`` (1-based, 0: nowhere): ``strpos`` on
    PostgreSQL, ``instr`` on SQLite."""

    type = Integer()
    inherit_cache = True


@compiles(position)
def _position_default(element: position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


@compiles(position, "sqlite")
def _position_sqlite(element: position, compiler: SQLCompiler, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


class _Text(Operator):
    """Text as it was sent (no parsing: any text is a value)."""

    def values(self, text: str, parse: Callable[[str], Any], key: str) -> tuple[Any, ...]:
        return (text,)


@register
class Contains(_Text):
    spec = FILTER_OPERATORS["contains"]

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return position(column, operands[0]) > 0

    def holds(self, actual: Any, expected: Any) -> bool:
        return isinstance(actual, str) and str(expected) in actual


@register
class IContains(_Text):
    spec = FILTER_OPERATORS["icontains"]

    def operand(self, value: Any) -> Any:
        return f"%{like_escape(value)}%"

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return func.lower(column).like(func.lower(operands[0]), escape="!")

    def holds(self, actual: Any, expected: Any) -> bool:
        return isinstance(actual, str) and str(expected).lower() in actual.lower()


@register
class StartsWith(_Text):
    spec = FILTER_OPERATORS["startswith"]

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return func.substr(column, 1, func.length(operands[0])) == operands[0]  # type: ignore[no-any-return]

    def holds(self, actual: Any, expected: Any) -> bool:
        return isinstance(actual, str) and actual.startswith(str(expected))
