"""Autonumbers: ``format: "INV-{YYYY}-{####}"`` draws the next number of a series kept per
field and per date prefix, in the write's transaction (so numbering stays gap-free)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from metadata._fields import AUTONUMBER_TOKEN as _AUTONUMBER_TOKEN

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.store.sql import StoreSql


async def next_number(conn: Connection, sql: StoreSql, field_name: str, fmt: str) -> str:
    """The next value of the autonumber ``field_name`` (``fmt``: its format)."""
    today = dt.datetime.now(dt.UTC)
    dates = {
        "YYYY": f"{today:%Y}",
        "YY": f"{today:%y}",
        "MM": f"{today:%m}",
        "DD": f"{today:%d}",
    }
    prefix = _AUTONUMBER_TOKEN.sub(lambda m: dates.get(m.group(1), m.group(0)), fmt)
    series = f"{sql.entity.qualified_name}.{field_name}:{prefix}"
    row = await conn.fetchrow(sql.next_number.sql, (series,))
    assert row is not None
    number = int(row[0])
    return _AUTONUMBER_TOKEN.sub(
        lambda m: f"{number:0{len(m.group(1))}d}" if m.group(1).startswith("#") else m.group(0),
        prefix,
    )
