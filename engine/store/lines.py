"""Line items: the rows of a child entity that belong to one parent record, written as a
whole list with the parent (kept, added and removed to match the list sent)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from engine.database import IntegrityViolation
from engine.errors import FieldError, ValidationFailed
from engine.tables import PARENT_COLUMN, POSITION_COLUMN

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.database import Connection
    from engine.store.records import RecordStore


def at_line(exc: ValidationFailed, field_name: str, position: int) -> ValidationFailed:
    """A line's errors as the parent reports them: at ``<field_name>[<position>].<field>``."""
    return ValidationFailed([error.within(field_name, position) for error in exc.errors])


async def write_lines(
    conn: Connection,
    store: RecordStore,
    parent_id: int,
    lines: list[dict[str, Any]],
    user_id: str | None,
    field_name: str,
    *,
    prepare: Callable[[dict[str, Any], int | None], Awaitable[None]],
    with_stored: bool,
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Make the parent's lines (rows of ``store``) exactly ``lines``: keep those sent with an
    id, add the new ones, delete the rest. Positions follow list order. ``prepare`` gets each
    line's values (and its id, None for a new line) before it is written; what it raises is
    reported at ``<field_name>[<position>]``. The lines as written, and (``with_stored``)
    the stored lines they replace, by id."""
    stored: dict[int, dict[str, Any]] = {}
    if with_stored:
        rows = await conn.fetch(store.sql.lines_of.sql, (parent_id,))
        stored = {int(line["id"]): line for line in (store.decode(row) for row in rows)}
        existing = set(stored)
    else:
        rows = await conn.fetch(store.sql.line_ids.sql, (parent_id,))
        existing = {int(row[0]) for row in rows}
    kept = {line["id"] for line in lines if "id" in line}
    unknown = kept - existing
    if unknown:
        raise ValidationFailed(
            [
                FieldError(
                    "id", "reference", f"line {line['id']} is not a line of this record"
                ).within(field_name, position)
                for position, line in enumerate(lines)
                if line.get("id") in unknown
            ]
        )
    for stale in sorted(existing - kept):
        await conn.execute(store.sql.delete.sql, (stale,))
    result = []
    for position, line in enumerate(lines):
        values = dict(line)
        line_id = values.pop("id", None)
        try:
            await prepare(values, line_id)
        except ValidationFailed as exc:
            raise at_line(exc, field_name, position) from None
        if line_id is None:  # a kept line keeps its number
            await store.number(conn, values)
        now = store.timestamp(dt.datetime.now(dt.UTC))
        params = store.encode(values)
        params.update(
            {
                PARENT_COLUMN: parent_id,
                POSITION_COLUMN: position,
                "updated_at": now,
                "updated_by": user_id,
            }
        )
        try:
            if line_id is None:
                params.update(created_at=now, created_by=user_id, version=1)
                row = await conn.fetchrow(
                    store.sql.insert.sql, [params.get(n) for n in store.sql.insert.names]
                )
            else:
                params["record_id"] = line_id
                names = tuple(sorted({*values, POSITION_COLUMN}))
                sql = store.sql.update(names, False)
                row = await conn.fetchrow(sql.sql, sql.args(params))
        except IntegrityViolation as exc:
            error = await store.integrity_error(conn, exc, values)
            if isinstance(error, ValidationFailed):
                error = at_line(error, field_name, position)
            raise error from None
        assert row is not None
        result.append(store.decode(row))
    return result, stored
