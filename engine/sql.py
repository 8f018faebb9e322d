"""Compiling SQLAlchemy Core statements once into driver-ready SQL strings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, bindparam, func, literal_column, select
from sqlalchemy.dialects.postgresql import ARRAY

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Dialect
    from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True, slots=True)
class CompiledSql:
    """SQL text plus the names of its parameters in positional order."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, Any]
    """Values of literals SQLAlchemy turned into parameters (``x + 1``, ``strpos(...) > 0``)."""

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        constants = self.constants
        return [params[name] if name in params else constants[name] for name in self.names]


def compile_sql(
    statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
) -> CompiledSql:
    """Compile once; ``column_keys`` names the INSERT/UPDATE columns bound by name."""
    compiled: Any = statement.compile(
        dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
    )
    names = tuple(compiled.positiontup or ())
    binds = compiled.binds
    constants = {
        name: binds[name].value
        for name in names
        if name in binds and not binds[name].required and binds[name].value is not None
    }
    return CompiledSql(str(compiled), names, constants)


def id_list_condition(column: ColumnElement[Any], dialect_name: str, name: str) -> Any:
    """``column IN <a list of ids bound as ONE parameter>``: one SQL text for any list size."""
    if dialect_name == "postgresql":
        return column == func.any(bindparam(name, type_=ARRAY(BigInteger())))
    values: Any = select(literal_column("value")).select_from(func.json_each(bindparam(name)))
    return column.in_(values.scalar_subquery())


def id_list_param(ids: Iterable[int], dialect_name: str) -> Any:
    if dialect_name == "postgresql":
        return list(ids)
    return "[" + ",".join(str(int(i)) for i in ids) + "]"
