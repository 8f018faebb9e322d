"""Cron schedules of scheduled rules: parsing, matching, and the latest slot."""

from __future__ import annotations

import datetime as dt

import pytest

from metadata._cron import CronError, CronSchedule

UTC = dt.UTC
FORMS = "'*', a-b, */n, a-b/n, and lists of those"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("source", "moment", "expected"),
    [
        ("* * * * *", "2026-11-23 13:07", True),
        ("*/15 * * * *", "2026-11-23 13:45", True),
        ("*/15 * * * *", "2026-11-23 13:46", False),
        ("0 9 * * 1-5", "2026-11-23 09:00", True),  # a Monday
        ("0 9 * * 1-5", "2026-11-22 09:00", False),  # a Sunday
        ("0 9 * * 0", "2026-11-22 09:00", True),
        ("0 9 * * 7", "2026-11-22 09:00", True),  # 7 is Sunday too
        ("30 8 1 * *", "2026-12-01 08:30", True),
        ("30 8 1,15 6 *", "2026-06-15 08:30", True),
        ("30 8 1,15 6 *", "2026-07-15 08:30", False),
        ("0 0 13 * 5", "2026-11-13 00:00", True),  # the 13th, a Friday
        ("0 0 13 * 5", "2026-11-20 00:00", True),  # a Friday: either day field matches
        ("0 0 13 * 5", "2026-11-21 00:00", False),
        ("10-20/5 * * * *", "2026-11-23 13:15", True),
        ("10-20/5 * * * *", "2026-11-23 13:16", False),
        # cronsim's syntax beyond the plain five fields (issue 19): names, L, #
        ("0 9 * jan mon", "2026-01-05 09:00", True),
        ("0 9 * JAN MON", "2026-02-02 09:00", False),
        ("0 18 L * *", "2026-02-28 18:00", True),
        ("0 9 * * MON#2", "2026-11-09 09:00", True),
        ("0 9 * * MON#2", "2026-11-16 09:00", False),
    ],
)
def test_matching(source: str, moment: str, expected: bool) -> None:
    assert CronSchedule.parse(source).matches(at(moment)) is expected


def test_the_latest_slot_at_or_before_now() -> None:
    schedule = CronSchedule.parse("*/15 * * * *")
    window = dt.timedelta(days=1)
    assert schedule.latest(at("2026-11-23 13:44:59"), within=window) == at("2026-11-23 13:30")
    assert schedule.latest(at("2026-11-23 13:45:00"), within=window) == at("2026-11-23 13:45")
    yearly = CronSchedule.parse("0 0 1 1 *")
    assert yearly.latest(at("2026-11-23 13:44"), within=window) is None
    assert yearly.latest(at("2027-01-01 00:09:30"), within=dt.timedelta(minutes=10)) == at(
        "2027-01-01 00:00"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("* * * *", "a schedule has 5 fields (minute hour day month weekday), not 4"),
        ("60 * * * *", f"minute: '60' is not valid (0-59; {FORMS})"),
        ("* 5-2 * * *", f"hour: '5-2' is not valid (0-23; {FORMS})"),
        ("*/0 * * * *", f"minute: '*/0' is not valid (0-59; {FORMS})"),
        ("* * * 13 *", f"month: '13' is not valid (1-12 or JAN-DEC; {FORMS})"),
        (
            "* * * * 8",
            f"day of week: '8' is not valid (0-7 or SUN-SAT, Sunday is 0 or 7; L, #; {FORMS})",
        ),
        ("* * * * * *", "a schedule has 5 fields (minute hour day month weekday), not 6"),
    ],
)
def test_mistakes_are_explained(source: str, message: str) -> None:
    with pytest.raises(CronError) as raised:
        CronSchedule.parse(source)
    assert str(raised.value) == message
