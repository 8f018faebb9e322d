"""Linked records and users as people read them: a reference by its record's title, a user
field by the user's name. The list screen, the kanban board and the CSV export for people
(``_export?for=people``) show them the same way, and fetch them per page: one query per
referenced entity and one for the users, never one per row.

What the reader may not read stays as it is stored: a reference whose entity they may not
read is not expanded, and ``GuardedStore`` leaves the id of a linked record its row
conditions hide (and the fields hidden from them out of one it shows), so a title is never
shown to someone who could not open the record.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.sql import compile_sql, id_list_condition, id_list_param
from engine.tables import user_table
from metadata import FieldType, Permission

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from sqlalchemy.engine import Dialect

    from engine import Database, EntityStore
    from engine.database import Connection
    from engine.guard import GuardedStore
    from engine.query import ListQuery
    from engine.sql import CompiledSql
    from engine.store import ListResult

USER_COLUMNS = ("created_by", "updated_by")
"""The system columns that hold a user's id."""


def titled_references(guard: GuardedStore, names: Iterable[str]) -> list[str]:
    """The reference fields among ``names`` that show their record's title to the caller of
    ``guard``: those whose target entity they may read (the others show the id)."""
    fields = guard.store.entity.fields
    titled = []
    for name in names:
        field = fields.get(name)
        if field is None or field.type is not FieldType.REFERENCE or field.to is None:
            continue
        if name in guard.access.hidden:
            continue
        if Permission.READ in guard.caller.access(field.to).permissions:
            titled.append(name)
    return titled


def add_titles(records: list[dict[str, Any]], store: EntityStore, names: Iterable[str]) -> None:
    """Each expanded reference ``names`` of ``records`` gets ``_title``: its record's title
    field (``#7`` when that is empty or hidden from the reader)."""
    for name in names:
        target = store.registry.store_for(store.entity.fields[name].to or "")
        title = target.entity.title or "id"
        for record in records:
            linked = record.get(name)
            if isinstance(linked, dict):
                linked["_title"] = linked.get(title) or f"#{linked.get('id')}"


@functools.cache
def _names_sql(dialect: Dialect) -> CompiledSql:
    u = user_table.c
    condition = id_list_condition(u.id, dialect.name, "ids")
    return compile_sql(select(u.id, u.username).where(condition), dialect)


async def user_names(conn: Connection, dialect: Dialect, ids: Iterable[Any]) -> dict[str, str]:
    """The name of each user of ``ids`` (text or numbers; others ignored), by id as text."""
    wanted = {int(i) for i in ids if str(i).isascii() and str(i).isdigit() and 0 < int(i) < 2**63}
    if not wanted:
        return {}
    sql = _names_sql(dialect)
    rows = await conn.fetch(sql.sql, sql.args({"ids": id_list_param(wanted, dialect.name)}))
    return {str(row[0]): str(row[1]) for row in rows}


async def show_user_names(
    conn: Connection, dialect: Dialect, records: list[dict[str, Any]], names: Sequence[str]
) -> None:
    """In ``records``: the id in each user column ``names`` replaced by the user's name
    (``#7`` for a user that no longer exists)."""
    if not names or not records:
        return
    found = await user_names(conn, dialect, [r.get(n) for r in records for n in names])
    for record in records:
        for name in names:
            value = record.get(name)
            if value is not None:
                record[name] = found.get(str(value), f"#{value}")


def people_pages(
    guard: GuardedStore, database: Database, columns: Sequence[str]
) -> Callable[[Connection, ListQuery], Awaitable[ListResult]]:
    """``guard.list_page`` whose records show ``columns`` as a list screen does: references
    by their record's title, user fields and ``created_by``/``updated_by`` by name. For the
    CSV export for people; it reads a page at a time (``runtime.dataio.export_records``)."""
    titled = tuple(titled_references(guard, columns))
    fields = guard.store.entity.fields
    users = [
        name
        for name in columns
        if name in USER_COLUMNS or (name in fields and fields[name].type is FieldType.USER)
    ]
    dialect = database.sa_dialect

    async def read(conn: Connection, query: ListQuery) -> ListResult:
        result = await guard.list_page(conn, dataclasses.replace(query, expand=titled))
        add_titles(result.records, guard.store, titled)
        await show_user_names(conn, dialect, result.records, users)
        return result

    return read
