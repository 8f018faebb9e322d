"""Cron schedules of scheduled rules (``schedule: "*/15 * * * *"``): five fields, checked
once when the definitions load, evaluated by ``cronsim`` (a maintained cron evaluator that
follows Debian's cron, written for and used by Healthchecks).

Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), day of
week (0-7 or SUN-SAT, Sunday = 0 or 7). Each is ``*``, a number, a range ``a-b``, a step
``*/n`` or ``a-b/n``, or a comma-separated list of those; cronsim also takes ``L`` (the
last day of the month, ``5L`` the last Friday), ``LW`` (the last weekday of the month)
and ``#`` (``MON#2``, the second Monday). As in Vixie cron, when both day fields are
restricted a day matches if either does. Times are UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cronsim import CronSim, CronSimError

_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31, L, LW"),
    ("month", "1-12 or JAN-DEC"),
    ("day of week", "0-7 or SUN-SAT, Sunday is 0 or 7; L, #"),
)
_LIBRARY_NAMES = {
    "minute": "minute",
    "hour": "hour",
    "day-of-month": "day of month",
    "month": "month",
    "day-of-week": "day of week",
}
_MINUTE = dt.timedelta(minutes=1)
_SOME_DAY = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)


class CronError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class CronSchedule:
    source: str
    """The five fields, separated by single spaces."""

    @classmethod
    def parse(cls, source: str) -> CronSchedule:
        parts = source.split()
        if len(parts) != len(_FIELDS):
            raise CronError(
                f"a schedule has 5 fields (minute hour day month weekday), not {len(parts)}"
            )
        text = " ".join(parts)
        try:
            first = CronSim(text, _SOME_DAY)
        except CronSimError as exc:
            raise CronError(_explain(str(exc), parts)) from None
        try:
            next(first)
        except StopIteration:
            raise CronError("it names no moment that ever comes") from None
        return cls(text)

    def matches(self, moment: dt.datetime) -> bool:
        """Whether ``moment`` (to the minute) is one the schedule names."""
        minute = moment.replace(second=0, microsecond=0)
        return self.latest(minute, within=dt.timedelta(0)) == minute

    def latest(self, now: dt.datetime, *, within: dt.timedelta) -> dt.datetime | None:
        """The latest minute at or before ``now`` that the schedule names, looking back at
        most ``within``; None when there is none in that window."""
        moment = now.replace(second=0, microsecond=0)
        try:  # reversed, cronsim yields the moments before its start: start a minute later
            found: dt.datetime = next(CronSim(self.source, moment + _MINUTE, reverse=True))
        except StopIteration:
            return None
        return found if found >= moment - within else None


def _explain(message: str, parts: list[str]) -> str:
    """cronsim's ``Bad minute`` as which field, what it holds, and what it may hold."""
    name = message.removeprefix("Bad ").strip()
    name = _LIBRARY_NAMES.get(name, name)
    for (field_name, allowed), part in zip(_FIELDS, parts, strict=True):
        if field_name == name:
            return (
                f"{field_name}: '{part}' is not valid ({allowed}; '*', a-b, */n, a-b/n, "
                "and lists of those)"
            )
    return message
