"""The users a ``user`` field's picker offers (``/app/_users/_options``): the active users
of the instance, by name, filtered by what is typed; and the names a form shows for the
user fields of a record. Any signed-in user may see who the active users are (as a
colleague's name is shown on a record assigned to them)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from sqlalchemy import bindparam, func, or_, select
from starlette.responses import Response  # noqa: TC002 - FastAPI reads the annotations

from engine.operators.text import like_escape
from engine.sql import compile_sql
from engine.tables import user_table
from runtime.titles import user_names
from runtime.web.handling import screen
from runtime.web.screens.base import Family

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqlalchemy.engine import Dialect

    from engine.database import Connection
    from engine.sql import CompiledSql

OPTIONS_LIMIT = 50


@functools.cache
def _search_sql(dialect: Dialect) -> CompiledSql:
    u = user_table.c
    statement = (
        select(u.id, u.username)
        .where(
            u.active != 0,
            or_(
                bindparam("q", type_=user_table.c.username.type).is_(None),
                func.lower(u.username).like(func.lower(bindparam("q")), escape="!"),
            ),
        )
        .order_by(u.username)
        .limit(OPTIONS_LIMIT)
    )
    return compile_sql(statement, dialect)


async def user_titles(
    conn: Connection, dialect: Dialect, record: Mapping[str, Any], sections: Iterable[Any]
) -> dict[str, str]:
    """The name of the user each user field of a form's ``sections`` holds, by field."""
    fields = [w.name for s in sections for w in s["widgets"] if w.kind == "user"]
    if not fields:
        return {}
    names = await user_names(conn, dialect, [record.get(n) for n in fields])
    return {n: names[str(record[n])] for n in fields if str(record.get(n)) in names}


class People(Family):
    routes = (("GET", "/app/_users/_options", "options"),)

    @screen
    async def options(self, request: Request) -> Response:
        """``<option>``s of the active users whose name contains what is typed."""
        session = await self.ui.session(request)
        q = (request.query_params.get("q") or "").strip()[:100]
        selected = request.query_params.get("selected") or next(
            (v for k, v in request.query_params.multi_items() if k not in {"q", "selected"}), ""
        )
        database = self.database.get()
        dialect = database.sa_dialect
        sql = _search_sql(dialect)
        pattern = f"%{like_escape(q)}%" if q else None
        async with database.connection() as conn:
            rows = await conn.fetch(sql.sql, sql.args({"q": pattern}))
            users = [{"id": str(row[0]), "username": str(row[1])} for row in rows]
            if selected and selected not in {u["id"] for u in users}:  # keep the current one
                named = await user_names(conn, dialect, [selected])
                users = [{"id": i, "username": n} for i, n in named.items()] + users
        return await self.render(
            request,
            "options.html",
            session=session,
            records=users,
            title_field="username",
            selected=selected,
            navigation=[],
        )
