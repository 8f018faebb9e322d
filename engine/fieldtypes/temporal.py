"""Date and datetime field types. Datetimes are always timezone-aware and stored in UTC."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import Date, DateTime

from engine.fieldtypes._base import InvalidValue, KindDefaults, WidgetKind, register
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef

_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_TEXT = re.compile(
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})$"
)


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise InvalidValue("type", "must be a date (YYYY-MM-DD), not a datetime")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_TEXT.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise InvalidValue("type", "must be a date as YYYY-MM-DD")


def parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        result = value
    elif isinstance(value, str) and _DATETIME_TEXT.match(value.strip()):
        try:
            result = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidValue("type", "must be an ISO 8601 datetime with an offset") from None
    else:
        raise InvalidValue(
            "type", "must be an ISO 8601 datetime with an offset, e.g. 2025-01-31T09:30:00+01:00"
        )
    if result.tzinfo is None:
        raise InvalidValue("type", "must include a UTC offset, e.g. +00:00 or Z")
    try:
        return result.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is in the year 0 in UTC
        raise InvalidValue(
            "range", "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
        ) from None


def _sqlite_datetime_text(value: dt.datetime) -> str:
    # One fixed-width UTC format, so that text order is time order in SQLite.
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


@register(FieldType.DATE)
class DateKind(KindDefaults):
    def filter_parser(self) -> Callable[[Any], Any] | None:
        return parse_date

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return {"type": "string", "format": "date"}

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("input", "date")

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return Date()

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {"type": "string", "format": "date"}

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        return parse_date

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return dt.date.isoformat if dialect == "sqlite" else None

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return dt.date.fromisoformat if dialect == "sqlite" else None


@register(FieldType.DATETIME)
class DateTimeKind(KindDefaults):
    def filter_parser(self) -> Callable[[Any], Any] | None:
        return parse_datetime

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("input", "datetime-local")

    def column_default(self, value: Any) -> str | None:
        return None  # stored as UTC text on SQLite: a literal would not be in that form

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return DateTime(timezone=True)

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {"type": "string", "format": "date-time"}

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        return parse_datetime

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return _sqlite_datetime_text if dialect == "sqlite" else None

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return dt.datetime.fromisoformat if dialect == "sqlite" else _aware


def _aware(value: dt.datetime) -> dt.datetime:
    """asyncpg writes the first and the last instant Python has (0001-01-01T00:00:00Z,
    9999-12-31T23:59:59.999999Z) as PostgreSQL's -infinity and infinity, and reads those
    back without a time zone: they are these same UTC instants."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


sqlite_datetime_text = _sqlite_datetime_text
