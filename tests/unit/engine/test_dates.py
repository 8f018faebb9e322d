"""The date and working-time functions of expressions (engine/dates.py): exact across
summer time, holidays and weekends, refusing counts too large to compute."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from engine import dates
from engine.expressions import Scope, compile_expression
from metadata import CalendarDef

if TYPE_CHECKING:
    from collections.abc import Iterator

UTC = dt.UTC


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def calendars() -> Iterator[None]:
    support = CalendarDef(
        pack="t",
        name="support",
        timezone="Europe/Berlin",
        weekdays=(0, 1, 2, 3, 4),
        start=dt.time(9),
        end=dt.time(17),
        holidays=(dt.date(2026, 12, 24),),
        countries=(("DE", None),),
    )
    dates.use_calendars({"support": support})
    dates.use_timezone("UTC")
    yield
    dates.use_calendars({})
    dates.use_timezone("UTC")


def test_days_and_months() -> None:
    assert dates.add_days(dt.date(2026, 2, 27), 2) == dt.date(2026, 3, 1)
    assert dates.add_days(dt.date(2026, 3, 1), -1) == dt.date(2026, 2, 28)
    assert dates.add_days(dt.date(2026, 3, 1), 0) == dt.date(2026, 3, 1)
    assert dates.add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert dates.add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert dates.add_months(dt.date(2026, 3, 31), -1) == dt.date(2026, 2, 28)
    assert dates.add_months(dt.date(2026, 5, 15), 12) == dt.date(2027, 5, 15)
    assert dates.days_between(dt.date(2026, 1, 1), dt.date(2026, 3, 1)) == 59
    assert dates.days_between(dt.date(2026, 3, 1), dt.date(2026, 1, 1)) == -59
    assert dates.add_days(None, 1) is None
    assert dates.days_between(None, dt.date(2026, 1, 1)) is None


def test_calendar_days_of_datetimes_follow_the_instance_time_zone_across_summer_time() -> None:
    dates.use_timezone("Europe/Berlin")
    before = utc(2026, 3, 28, 11)  # 12:00 in Berlin, the eve of summer time
    assert dates.add_days(before, 1) == utc(2026, 3, 29, 10)  # 12:00 again, now UTC+2
    assert dates.add_hours(before, 24) == utc(2026, 3, 29, 11)  # 24 elapsed hours: 13:00
    assert dates.add_hours(before, Decimal("0.5")) == utc(2026, 3, 28, 11, 30)
    # 23:30 UTC on the 31st is already the 1st in Berlin
    assert dates.days_between(utc(2026, 1, 31, 23, 30), utc(2026, 2, 1, 0, 30)) == 0
    dates.use_timezone("UTC")
    assert dates.days_between(utc(2026, 1, 31, 23, 30), utc(2026, 2, 1, 0, 30)) == 1


def test_today_is_the_date_in_the_instance_time_zone() -> None:
    dates.use_timezone("Pacific/Kiritimati")  # UTC+14
    ahead = dates.today()
    dates.use_timezone("Pacific/Pago_Pago")  # UTC-11
    behind = dates.today()
    assert (ahead - behind).days in (1, 2)


def test_business_hours_skip_nights_weekends_and_holidays() -> None:
    friday_16 = utc(2026, 3, 6, 15)  # 16:00 Berlin (UTC+1)
    # one hour on Friday, the rest from Monday 09:00
    assert dates.add_business_hours(friday_16, 8, "support") == utc(2026, 3, 9, 15)
    assert dates.business_hours_between(friday_16, utc(2026, 3, 9, 15), "support") == 8
    # Christmas Eve (a date of the calendar), Christmas and Boxing day (DE holidays)
    wed_23 = utc(2026, 12, 23, 15)  # 16:00 Berlin, Wednesday
    assert dates.add_business_hours(wed_23, 2, "support") == utc(2026, 12, 28, 9)
    # a span of several days: Monday 09:00 to Wednesday 12:00 = 8 + 8 + 3
    span = dates.business_hours_between(utc(2026, 3, 9, 8), utc(2026, 3, 11, 11), "support")
    assert span == Decimal(19)
    assert dates.business_hours_between(utc(2026, 3, 11, 11), utc(2026, 3, 9, 8), "support") == -19


def test_business_hours_across_summer_time_count_working_hours() -> None:
    friday_16 = utc(2026, 3, 27, 15)  # 16:00 Berlin in winter time
    monday_10 = utc(2026, 3, 30, 8)  # 10:00 Berlin in summer time
    assert dates.add_business_hours(friday_16, 2, "support") == monday_10
    assert dates.business_hours_between(friday_16, monday_10, "support") == 2


def test_zero_and_negative_business_hours() -> None:
    sunday = utc(2026, 3, 8, 12)
    assert dates.add_business_hours(sunday, 0, "support") == sunday
    # 2 working hours before Monday 10:00 Berlin: Friday 16:00
    assert dates.add_business_hours(utc(2026, 3, 9, 9), -2, "support") == utc(2026, 3, 6, 15)
    # a start outside working time begins at the next opening
    assert dates.add_business_hours(sunday, 1, "support") == utc(2026, 3, 9, 9)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: dates.add_days(dt.date(2026, 1, 1), 10**12), "too far"),
        (lambda: dates.add_days(dt.date(9999, 12, 31), 1), "outside the calendar"),
        (lambda: dates.add_months(dt.date(1, 1, 1), -1), "outside the calendar"),
        (lambda: dates.add_hours(utc(2026, 1, 1), float("nan")), "finite"),
        (lambda: dates.add_days(dt.date(2026, 1, 1), "3"), "must be a number"),
        (lambda: dates.add_days(dt.date(2026, 1, 1), 1.5), "whole number"),
        (lambda: dates.add_days("2026-01-01", 1), "takes a date"),
        (lambda: dates.add_business_hours(utc(2026, 1, 1), 10**9, "support"), "too far"),
        (lambda: dates.add_business_hours(utc(2026, 1, 1), 1, "nope"), "no calendar 'nope'"),
        (
            lambda: dates.business_hours_between(utc(1, 1, 2), utc(9999, 1, 1), "support"),
            "days apart",
        ),
    ],
)
def test_what_cannot_be_computed_is_refused_with_a_message(call: object, message: str) -> None:
    with pytest.raises(dates.DateError, match=message):
        call()  # type: ignore[operator]


def test_the_largest_count_allowed_is_quick() -> None:
    started = time.monotonic()
    result = dates.add_business_hours(utc(2026, 1, 1), dates.MAX_BUSINESS_HOURS, "support")
    assert result is not None
    assert result.year > 2070
    assert time.monotonic() - started < 5


def test_expressions_call_them_by_name() -> None:
    expression = compile_expression("add_business_hours(created_at, 8, 'support')")
    scope = Scope({"created_at": utc(2026, 3, 6, 15)})
    assert expression(scope) == utc(2026, 3, 9, 15)
    assert compile_expression("add_months(d, 1)")(Scope({"d": dt.date(2026, 1, 31)})) == (
        dt.date(2026, 2, 28)
    )


def test_scheduled_rules_today_follows_the_instance_time_zone() -> None:
    """A scheduled rule's SQL binds ``today()`` from the names of a scope (engine/effects/
    _selection.py): the same date as expressions see."""
    from engine.expressions import scope_names

    dates.use_timezone("Pacific/Kiritimati")
    assert scope_names({}, None, None)["today"]() == dates.today()
    assert dates.today() == dt.datetime.now(UTC).astimezone(dates.instance_zone()).date()


def test_the_ends_of_the_calendar_and_odd_counts_are_refused_not_crashes() -> None:
    """What expressions call (``FUNCTIONS``): every failure is a ``DateError``."""
    functions = dates.FUNCTIONS
    dates.use_timezone("Pacific/Kiritimati")  # UTC+14: 9999-12-31 23:00 UTC is past 9999
    last = utc(9999, 12, 31, 23)
    with pytest.raises(dates.DateError, match="outside the calendar"):
        functions["days_between"](last, dt.date(2026, 1, 1))
    with pytest.raises(dates.DateError, match="outside the calendar"):
        functions["add_days"](last, 0)
    dates.use_timezone("Asia/Tokyo")  # the start of 1 January of the year 1 is in the year 0
    with pytest.raises(dates.DateError, match="outside the calendar"):
        functions["business_hours_between"](dt.date(1, 1, 1), utc(1, 1, 3), "support")
    with pytest.raises(dates.DateError, match="finite"):
        functions["add_months"](dt.date(2026, 1, 1), Decimal("NaN"))
    with pytest.raises(dates.DateError, match="finite"):
        functions["add_business_hours"](utc(2026, 1, 1), float("inf"), "support")
    assert functions["add_days"](dt.date(2026, 1, 1), days=2) == dt.date(2026, 1, 3)
