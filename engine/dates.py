"""Dates and working time in expressions (docs/rules.md, "Dates and working time").

``add_days``, ``add_hours``, ``add_months``, ``days_between``, ``business_hours_between``
and ``add_business_hours``: exact (whole seconds, ``Decimal`` hours), deterministic, and
bounded — a count too large to compute is refused with a message, never a hang. Months use
dateutil's ``relativedelta`` (the 31st plus one month is the last day of the next month);
holidays of a country come from the ``holidays`` package; time zones from ``zoneinfo``.

Datetimes are instants (stored in UTC); the calendar days of ``add_days``/``add_months``/
``days_between`` on datetimes, and ``today()``, are those of the instance time zone
(``timezone:`` in ``tessera.yaml``), the working hours those of the calendar's.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import holidays as holiday_data
from dateutil.relativedelta import relativedelta  # type: ignore[import-untyped]

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from metadata import CalendarDef

MAX_DAYS = 3_660_000
"""Largest number of days added or spanned (about 10,000 years: the whole calendar)."""
MAX_MONTHS = 120_000
MAX_HOURS = 87_840_000
MAX_BUSINESS_HOURS = 100_000
"""Largest number of working hours added (decades of working time), or days walked."""
MAX_WALK_DAYS = 40_000
"""Days a working-time computation may walk through (about 110 years)."""

_UTC = dt.UTC


class DateError(ValueError):
    """A date function was given something it cannot compute; the message says what."""


@dataclass(frozen=True, slots=True)
class Calendar:
    """Working time: the days of the week worked, one span of hours a day, and holidays."""

    name: str
    zone: ZoneInfo
    weekdays: frozenset[int]
    """0 = Monday ... 6 = Sunday."""
    start: dt.time
    end: dt.time
    dates: frozenset[dt.date]
    countries: tuple[tuple[str, str | None], ...]

    def is_working_day(self, day: dt.date) -> bool:
        if day.weekday() not in self.weekdays or day in self.dates:
            return False
        return not any(day in _country_holidays(c, s, day.year) for c, s in self.countries)

    def window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The working span of ``day`` as UTC instants, or None on a day off."""
        if not self.is_working_day(day):
            return None
        start = dt.datetime.combine(day, self.start, self.zone).astimezone(_UTC)
        end = dt.datetime.combine(day, self.end, self.zone).astimezone(_UTC)
        return start, end


@functools.lru_cache(maxsize=512)
def _country_holidays(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    return frozenset(holiday_data.country_holidays(country, subdiv=subdivision, years=year))


def calendar_from(definition: CalendarDef) -> Calendar:
    return Calendar(
        name=definition.name,
        zone=ZoneInfo(definition.timezone),
        weekdays=frozenset(definition.weekdays),
        start=definition.start,
        end=definition.end,
        dates=frozenset(definition.holidays),
        countries=definition.countries,
    )


_CALENDARS: dict[str, Calendar] = {}
_ZONE: list[ZoneInfo] = [ZoneInfo("UTC")]


def use_calendars(definitions: Mapping[str, CalendarDef]) -> None:
    """The calendars expressions name (``'support'``), from the enabled packs."""
    _CALENDARS.clear()
    _CALENDARS.update((name, calendar_from(d)) for name, d in definitions.items())


def use_timezone(name: str | None) -> None:
    """The instance time zone (``timezone:`` in ``tessera.yaml``; UTC when absent)."""
    _ZONE[0] = ZoneInfo(name or "UTC")


def instance_zone() -> ZoneInfo:
    return _ZONE[0]


def today() -> dt.date:
    """The current date in the instance time zone."""
    return dt.datetime.now(_UTC).astimezone(_ZONE[0]).date()


def now() -> dt.datetime:
    """The current instant (UTC)."""
    return dt.datetime.now(_UTC)


_FIRST_MOMENT = dt.datetime.min.replace(tzinfo=_UTC).isoformat()
_LAST_MOMENT = dt.datetime.max.replace(tzinfo=_UTC).isoformat()


def day_bound(op: str, day: dt.date, zone: ZoneInfo) -> tuple[str, str] | None:
    """A day as a bound of a datetime field (``op``: gte, gt, lte or lt): whole days of
    ``zone``, ``lte`` through the day's end. The bound on moments as (operator, ISO
    moment): ``gte``/``gt`` a day are ``gte`` its (the next day's) start, ``lt``/``lte``
    are ``lt`` it; None when every moment meets it (a bound past the calendar's ends)."""
    lower = op in ("gte", "gt")
    try:
        if op in ("gt", "lte"):
            day += dt.timedelta(days=1)
        start = dt.datetime.combine(day, dt.time(), zone).astimezone(_UTC)
    except OverflowError:  # the day starts before the first moment or after the last
        past_end = day.year == dt.MAXYEAR
        if lower:
            return ("gt", _LAST_MOMENT) if past_end else None
        return None if past_end else ("lt", _FIRST_MOMENT)
    return ("gte" if lower else "lt", start.isoformat())


def _count(value: Any, limit: int, function: str, *, whole: bool = True) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise DateError(f"{function}(): the count must be a number, not {type(value).__name__}")
    if not isinstance(value, int) and not math.isfinite(value):
        raise DateError(f"{function}(): the count must be a finite number, not {value}")
    if whole and isinstance(value, Decimal | float):
        if value != int(value):
            raise DateError(f"{function}(): the count must be a whole number, not {value}")
        value = int(value)
    if not abs(value) <= limit:  # also refuses NaN
        raise DateError(f"{function}(): {value} is more than {limit:,} (too far to compute)")
    return value


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)


def _moment(value: Any, function: str) -> dt.date | dt.datetime:
    if not isinstance(value, dt.date):
        raise DateError(f"{function}() takes a date or a datetime, not {type(value).__name__}")
    return value


def _out_of_range(function: str) -> DateError:
    return DateError(f"{function}(): the result is outside the calendar (years 1 to 9999)")


def _shift(value: dt.date | dt.datetime, step: Any, function: str) -> dt.date | dt.datetime:
    """Calendar arithmetic; on a datetime, on the wall clock of the instance time zone."""
    try:
        if isinstance(value, dt.datetime):
            local = _utc(value).astimezone(_ZONE[0]).replace(tzinfo=None)
            moved: dt.datetime = local + step
            return moved.replace(tzinfo=_ZONE[0]).astimezone(_UTC)
        return value + step  # type: ignore[no-any-return]
    except (OverflowError, ValueError):
        raise _out_of_range(function) from None


def add_days(value: Any, days: Any) -> dt.date | dt.datetime | None:
    if value is None or days is None:
        return None
    days = _count(days, MAX_DAYS, "add_days")
    return _shift(_moment(value, "add_days"), dt.timedelta(days=days), "add_days")


def add_months(value: Any, months: Any) -> dt.date | dt.datetime | None:
    if value is None or months is None:
        return None
    months = _count(months, MAX_MONTHS, "add_months")
    return _shift(_moment(value, "add_months"), relativedelta(months=months), "add_months")


def add_hours(value: Any, hours: Any) -> dt.datetime | None:
    """Elapsed time: 24 hours after 12:00 on the eve of summer time is 13:00 next day."""
    if value is None or hours is None:
        return None
    hours = _count(hours, MAX_HOURS, "add_hours", whole=False)
    if not isinstance(value, dt.datetime):
        raise DateError("add_hours() takes a datetime")
    try:
        return _utc(value) + dt.timedelta(seconds=round(Decimal(hours) * 3600))
    except (OverflowError, ValueError):
        raise _out_of_range("add_hours") from None


def _local_day(value: dt.date | dt.datetime) -> dt.date:
    if isinstance(value, dt.datetime):
        return _utc(value).astimezone(_ZONE[0]).date()
    return value


def days_between(start: Any, end: Any) -> int | None:
    """Calendar days from ``start`` to ``end`` (negative when ``end`` is earlier)."""
    if start is None or end is None:
        return None
    first = _local_day(_moment(start, "days_between"))
    last = _local_day(_moment(end, "days_between"))
    return (last - first).days


def _calendar(name: Any, function: str) -> Calendar:
    calendar = _CALENDARS.get(name) if isinstance(name, str) else None
    if calendar is None:
        known = ", ".join(sorted(_CALENDARS)) or "none is defined"
        raise DateError(f"{function}(): no calendar {name!r} (calendars: {known})")
    if not calendar.weekdays or calendar.start >= calendar.end:
        raise DateError(f"{function}(): calendar {name!r} has no working time")
    return calendar


def _instant(value: Any, function: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, dt.date):  # the start of that day in the instance time zone
        return dt.datetime.combine(value, dt.time(), _ZONE[0]).astimezone(_UTC)
    raise DateError(f"{function}() takes datetimes, not {type(value).__name__}")


def _hours(seconds: float) -> Decimal:
    return (Decimal(round(seconds)) / 3600).quantize(Decimal("0.000001"))


def business_hours_between(start: Any, end: Any, calendar: Any) -> Decimal | None:
    """Working hours of ``calendar`` from ``start`` to ``end`` (negative when ``end`` is
    earlier), as a ``Decimal`` of hours (to the second)."""
    function = "business_hours_between"
    if start is None or end is None:
        return None
    cal = _calendar(calendar, function)
    first, last = _instant(start, function), _instant(end, function)
    sign = 1
    if last < first:
        first, last, sign = last, first, -1
    day = first.astimezone(cal.zone).date()
    final = last.astimezone(cal.zone).date()
    if (final - day).days > MAX_WALK_DAYS:
        raise DateError(f"{function}(): more than {MAX_WALK_DAYS:,} days apart")
    seconds = 0.0
    while day <= final:
        window = cal.window(day)
        if window is not None:
            begin, stop = max(window[0], first), min(window[1], last)
            if stop > begin:
                seconds += (stop - begin).total_seconds()
        day += dt.timedelta(days=1)
    return sign * _hours(seconds)


def add_business_hours(value: Any, hours: Any, calendar: Any) -> dt.datetime | None:
    """The instant ``hours`` working hours of ``calendar`` after ``value`` (before it when
    negative). Zero gives ``value`` itself."""
    function = "add_business_hours"
    if value is None or hours is None:
        return None
    count = _count(hours, MAX_BUSINESS_HOURS, function, whole=False)
    cal = _calendar(calendar, function)
    moment = _instant(value, function)
    remaining = dt.timedelta(seconds=round(Decimal(abs(count)) * 3600))
    if not remaining:
        return moment
    forward = count > 0
    day = moment.astimezone(cal.zone).date()
    step = dt.timedelta(days=1 if forward else -1)
    pick: Callable[[dt.datetime, dt.datetime], dt.datetime] = max if forward else min
    for _ in range(MAX_WALK_DAYS):
        window = cal.window(day)
        if window is not None:
            if forward:
                begin, stop = pick(window[0], moment), window[1]
                if stop - begin >= remaining and stop > begin:
                    return begin + remaining
            else:
                begin, stop = window[0], pick(window[1], moment)
                if stop - begin >= remaining and stop > begin:
                    return stop - remaining
            if stop > begin:
                remaining -= stop - begin
        try:
            day += step
        except OverflowError:
            break
    raise DateError(f"{function}(): not reached within {MAX_WALK_DAYS:,} days of the calendar")


def _guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` whose arithmetic past the calendar's ends (the year 1 or 9999, or a
    time zone moving a moment past them) is a ``DateError`` saying so."""

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DateError:
            raise
        except (OverflowError, ValueError):
            raise _out_of_range(function.__name__) from None

    return guarded


FUNCTIONS: dict[str, Callable[..., Any]] = {
    function.__name__: _guarded(function)
    for function in (
        add_days,
        add_hours,
        add_months,
        days_between,
        business_hours_between,
        add_business_hours,
    )
}
"""The date functions expressions see by name."""
