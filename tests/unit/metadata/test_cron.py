"""Cron schedules of scheduled rules: parsing, matching, and the latest slot."""

from __future__ import annotations

import datetime as dt

import pytest

from metadata._cron import CronError, CronSchedule

UTC = dt.UTC


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


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("* * * *", "a schedule has 5 fields (minute hour day month weekday), not 4"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 5-2 * * *", "hour: 5-2 goes backwards"),
        ("*/0 * * * *", "minute: a step must be at least 1"),
        ("* * * jan *", "month: 'jan' is not a number"),
    ],
)
def test_mistakes_are_explained(source: str, message: str) -> None:
    with pytest.raises(CronError) as raised:
        CronSchedule.parse(source)
    assert str(raised.value) == message
