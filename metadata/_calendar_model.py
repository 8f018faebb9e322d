"""The working calendar definition (``calendars/<name>.yaml``; loaded by ``_calendars``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import datetime as dt


@dataclass(frozen=True, slots=True)
class CalendarDef:
    """A working calendar: days of the week worked, one span of hours, holidays."""

    pack: str
    name: str
    timezone: str
    weekdays: tuple[int, ...]
    """0 = Monday ... 6 = Sunday."""
    start: dt.time
    end: dt.time
    holidays: tuple[dt.date, ...] = ()
    countries: tuple[tuple[str, str | None], ...] = ()
    """``(country, subdivision)`` whose public holidays are days off."""
