"""Autonumbers: ``format: "INV-{YYYY}-{#####}"`` draws the next number of a series kept per
field and per value of the other tokens (the year, a field token's value), in the write's
transaction: a write that is refused or rolled back gives its number back, so numbering
stays gap-free, and on PostgreSQL the series' row stays locked until the transaction ends,
so concurrent writes number one after the other.

``gapless: false`` trades the gaps for throughput, as Odoo's "Standard" sequences and
ERPNext's naming series do: the number is drawn in a statement committed at once, apart
from the write (``Connection.fetchrow_committed``), so the series' row is locked for that
statement only and a write that is refused or rolled back leaves a gap. On SQLite, whose
writes run one at a time anyway, it is drawn in the write's transaction and drawn again
after a rollback, so that a refusal leaves the same gap there.

An autonumber numbers at insert (``assign: insert``) or, on a document, as it is submitted
(``assign: submit``: drafts have none). Its date tokens come from ``date_field`` of the
record when it names one, else from today's UTC date. Each format is compiled once, when
the entity's store is built.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.dates import instance_zone, today
from engine.errors import FieldError, ValidationFailed
from metadata._autonumbers import AUTONUMBER_MAX_LENGTH, AUTONUMBER_TOKEN, DATE_TOKEN_WIDTHS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.database import Connection
    from engine.store.sql import StoreSql
    from metadata import FieldDef, NumberAssign

SERIES_MAX_LENGTH = 200
"""The length of ``tessera_sequence.series``; a longer series key is stored as its hash."""

_TEXT, _DATE, _FIELD, _COUNTER = "text", "date", "field", "counter"


@dataclass(frozen=True, slots=True)
class NumberFormat:
    """An autonumber field's format, split into its parts once."""

    field: str
    """The autonumber field."""
    format: str
    assign: NumberAssign
    date_field: str | None
    gapless: bool
    """Drawn in the write's transaction (True), or committed at once (``gapless: false``)."""
    parts: tuple[tuple[str, str], ...]
    """``(kind, text)``: literal text, a date token (``YYYY``), a field token (the field's
    name) or a counter (``#####``)."""

    @classmethod
    def of(cls, field: FieldDef) -> NumberFormat:
        fmt = field.format or ""
        parts: list[tuple[str, str]] = []
        end = 0
        for match in AUTONUMBER_TOKEN.finditer(fmt):
            if match.start() > end:
                parts.append((_TEXT, fmt[end : match.start()]))
            token = match.group(1)
            kind = _COUNTER if token[0] == "#" else _DATE if token in DATE_TOKEN_WIDTHS else _FIELD
            parts.append((kind, token))
            end = match.end()
        if end < len(fmt):
            parts.append((_TEXT, fmt[end:]))
        return cls(field.name, fmt, field.assign, field.date_field, field.gapless, tuple(parts))


async def next_number(
    conn: Connection, sql: StoreSql, number: NumberFormat, record: Mapping[str, Any]
) -> str:
    """The next value of the autonumber ``number`` for ``record`` (its values as written,
    for the date and field tokens). A date field or field token without a value is a 422 at
    that field, as is a number longer than its column."""
    date = _date_of(number, record)
    dates = {
        "YYYY": f"{date.year:04d}",
        "YY": f"{date.year % 100:02d}",
        "MM": f"{date.month:02d}",
        "DD": f"{date.day:02d}",
    }
    rendered: list[str | None] = []  # None: a counter
    for kind, text in number.parts:
        if kind == _TEXT:
            rendered.append(text)
        elif kind == _DATE:
            rendered.append(dates[text])
        elif kind == _FIELD:
            rendered.append(_token_value(number, record, text))
        else:
            rendered.append(None)
    counters = iter(text for kind, text in number.parts if kind == _COUNTER)
    key = "".join(piece if piece is not None else f"{{{next(counters)}}}" for piece in rendered)
    series = f"{sql.entity.qualified_name}.{number.field}:{key}"
    if len(series) > SERIES_MAX_LENGTH:
        series = "sha256:" + hashlib.sha256(series.encode("utf-8", "surrogatepass")).hexdigest()
    draw = conn.fetchrow if number.gapless else conn.fetchrow_committed
    row = await draw(sql.next_number.sql, (series,))
    assert row is not None
    value = int(row[0])
    widths = iter(len(text) for kind, text in number.parts if kind == _COUNTER)
    result = "".join(
        piece if piece is not None else f"{value:0{next(widths)}d}" for piece in rendered
    )
    if len(result) > AUTONUMBER_MAX_LENGTH:
        tokens = [text for kind, text in number.parts if kind == _FIELD]
        raise ValidationFailed(
            [
                FieldError(
                    tokens[0] if tokens else number.field,
                    "too_long",
                    f"makes the number of {number.field} longer than "
                    f"{AUTONUMBER_MAX_LENGTH} characters ({number.format})",
                )
            ]
        )
    return result


def _date_of(number: NumberFormat, record: Mapping[str, Any]) -> dt.date:
    """The date the tokens show: the record's ``date_field`` (a datetime's date in the
    instance time zone), or today (there)."""
    if number.date_field is None:
        return today()
    value = record.get(number.date_field)
    if isinstance(value, str):
        try:
            value = (
                dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
            )
        except ValueError:
            value = None
    if isinstance(value, dt.datetime):
        return value.astimezone(instance_zone()).date() if value.tzinfo else value.date()
    if isinstance(value, dt.date):
        return value
    raise ValidationFailed([_needed(number, number.date_field)])


def _token_value(number: NumberFormat, record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if value is None or value == "":
        raise ValidationFailed([_needed(number, name)])
    return str(value)


def _needed(number: NumberFormat, name: str) -> FieldError:
    return FieldError(name, "required", f"is needed to number {number.field} ({number.format})")
