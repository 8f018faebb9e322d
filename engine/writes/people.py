"""The user fields of a write (``type: user``): a user written by name replaced by the id,
and every user checked to exist and be active, in one query per write. A record may keep
a user who has since been deactivated (a form resends every field), but no write may name
one anew."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import String, bindparam, func, literal_column, or_, select
from sqlalchemy.dialects.postgresql import ARRAY

from engine.errors import FieldError
from engine.fieldtypes.people import UserByName
from engine.identity import printable_name
from engine.sql import compile_sql, id_list_condition, id_list_param
from engine.tables import user_table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Dialect

    from engine.database import Connection
    from engine.sql import CompiledSql

NO_USER_MESSAGE = "refers to no active user"


class UserFields:
    """The user fields of one entity and the SQL that checks them, compiled once."""

    def __init__(self, names: Sequence[str], dialect: Dialect) -> None:
        self.names = tuple(names)
        self.dialect = dialect

    def __bool__(self) -> bool:
        return bool(self.names)

    @functools.cached_property
    def _users(self) -> CompiledSql:
        u = user_table.c
        dialect_name = self.dialect.name
        condition = or_(
            id_list_condition(u.id, dialect_name, "ids"),
            _text_list_condition(u.username, dialect_name, "names"),
        )
        statement = select(u.id, u.username).where(condition, u.active != 0)
        return compile_sql(statement, self.dialect)

    async def resolve(
        self,
        conn: Connection,
        values: dict[str, Any],
        stored: Mapping[str, Any] | None = None,
    ) -> list[FieldError]:
        """Replace each user written by name in ``values`` by its id; the errors of the
        users that are unknown or inactive (a value ``stored`` already holds is kept)."""
        wanted = {
            name: values[name]
            for name in self.names
            if values.get(name) is not None
            and (
                stored is None
                or isinstance(values[name], UserByName)
                or str(stored.get(name)) != values[name]
            )
        }
        if not wanted:
            return []
        ids = {int(v) for v in wanted.values() if isinstance(v, str)}
        names = {v.username for v in wanted.values() if isinstance(v, UserByName)}
        dialect_name = self.dialect.name
        rows = await conn.fetch(
            self._users.sql,
            self._users.args(
                {
                    "ids": id_list_param(ids, dialect_name),
                    "names": _text_list(names, dialect_name),
                }
            ),
        )
        by_id = {str(row[0]) for row in rows}
        by_name = {str(row[1]): str(row[0]) for row in rows}
        errors = []
        for name, value in wanted.items():
            if isinstance(value, UserByName):
                found = by_name.get(value.username)
                if found is None:
                    shown = printable_name(value.username)
                    errors.append(FieldError(name, "user", f"no active user named '{shown}'"))
                else:
                    values[name] = found
            elif value not in by_id:
                errors.append(FieldError(name, "user", NO_USER_MESSAGE))
        return errors


def _text_list_condition(column: Any, dialect_name: str, name: str) -> Any:
    """``column IN <a list of texts bound as ONE parameter>`` (``id_list_condition``)."""
    if dialect_name == "postgresql":
        return column == func.any(bindparam(name, type_=ARRAY(String())))
    values: Any = select(literal_column("value")).select_from(func.json_each(bindparam(name)))
    return column.in_(values.scalar_subquery())


def _text_list(names: set[str], dialect_name: str) -> Any:
    if dialect_name == "postgresql":
        return sorted(names)
    return orjson.dumps(sorted(names)).decode()
