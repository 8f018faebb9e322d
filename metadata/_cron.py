"""Cron schedules of scheduled rules (``schedule: "*/15 * * * *"``): the five standard
fields, parsed once when the definitions load.

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12), day of week (0-6,
Sunday = 0 or 7). Each is ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or
a comma-separated list of those. As in Vixie cron, when both day fields are restricted a
day matches if either does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


class CronError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CronSchedule:
    source: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday."""
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, source: str) -> CronSchedule:
        parts = source.split()
        if len(parts) != len(_FIELDS):
            raise CronError(
                f"a schedule has 5 fields (minute hour day month weekday), not {len(parts)}"
            )
        sets = [
            _field(part, name, low, high)
            for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            source=source,
            minutes=sets[0],
            hours=sets[1],
            days=sets[2],
            months=sets[3],
            weekdays=weekdays,
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    def matches(self, moment: dt.datetime) -> bool:
        if moment.minute not in self.minutes or moment.hour not in self.hours:
            return False
        if moment.month not in self.months:
            return False
        day = moment.day in self.days
        weekday = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday

    def latest(self, now: dt.datetime, *, within: dt.timedelta) -> dt.datetime | None:
        """The latest minute at or before ``now`` that the schedule names, looking back at
        most ``within``; None when there is none in that window."""
        moment = now.replace(second=0, microsecond=0)
        earliest = moment - within
        while moment >= earliest:
            if self.matches(moment):
                return moment
            moment -= dt.timedelta(minutes=1)
        return None


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = _number(step_text, name) if step_text else 1
        if step < 1:
            raise CronError(f"{name}: a step must be at least 1")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _number(first, name), _number(last, name)
        else:
            start = _number(body, name)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high):
            raise CronError(f"{name}: {item} is outside {low}-{high}")
        if start > end:
            raise CronError(f"{name}: {item} goes backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(text: str, name: str) -> int:
    if not text.isdigit():
        raise CronError(f"{name}: '{text}' is not a number")
    return int(text)
