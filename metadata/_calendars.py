"""Working calendars: ``calendars/<name>.yaml`` in a pack (docs/definitions.md, Calendars).

    timezone: Europe/Berlin
    working_days: [mon, tue, wed, thu, fri]
    hours: "09:00-17:00"
    holidays:
      country: DE          # every public holiday of the country (the ``holidays`` package)
      subdivision: BY      # optional: a state or region's own holidays too
      dates: [2026-12-24, 2026-12-31]

Checked once at load; every problem at its ``file:line:col``. A calendar is named by its
file (``'support'``) in ``business_hours_between`` and ``add_business_hours``; names are
shared by the enabled packs, so two packs may not both define one.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from typing import TYPE_CHECKING, Any

import holidays as holiday_data

from metadata._calendar_model import CalendarDef
from metadata._documents import YAML_SUFFIXES, parse_document
from metadata._errors import did_you_mean
from metadata._names import is_snake_case

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from metadata._errors import ProblemCollector
    from metadata._yaml import SourceDocument

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})")
_KEYS = frozenset({"timezone", "working_days", "hours", "holidays", "label"})
_HOLIDAY_KEYS = frozenset({"country", "subdivision", "dates"})


@functools.cache
def _countries() -> dict[str, tuple[str, ...]]:
    return {c: tuple(s) for c, s in holiday_data.list_supported_countries().items()}


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def timezone_problem(name: Any) -> str | None:
    """Why ``name`` is not an IANA time zone (``Europe/Berlin``), or None."""
    if isinstance(name, str) and name in _zones():
        return None
    hint = did_you_mean(name, _zones()) if isinstance(name, str) else ""
    return f"'{name}' is not a time zone (an IANA name: Europe/Berlin, UTC){hint}"


def load_calendars(
    packs: Iterable[tuple[str, Path]], problems: ProblemCollector
) -> dict[str, CalendarDef]:
    """Every enabled pack's calendars by name."""
    found: dict[str, CalendarDef] = {}
    for pack, root in packs:
        directory = root / "calendars"
        if not directory.is_dir():
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix not in YAML_SUFFIXES or path.name.startswith("."):
                continue
            document = parse_document(path, problems)
            if document is None:
                continue
            if not is_snake_case(path.stem):
                problems.at(document, (), f"calendar file name '{path.stem}' must be snake_case")
                continue
            if path.stem in found:
                other = found[path.stem].pack
                problems.at(document, (), f"calendar '{path.stem}' is also defined by {other}")
                continue
            calendar = _calendar(pack, path.stem, document, problems)
            if calendar is not None:
                found[path.stem] = calendar
    return found


def _calendar(
    pack: str, name: str, document: SourceDocument, problems: ProblemCollector
) -> CalendarDef | None:
    data = document.data
    if not isinstance(data, dict):
        problems.at(document, (), "a calendar is a mapping (timezone, working_days, hours, …)")
        return None
    count = len(problems.problems)
    for key in sorted(set(data) - _KEYS):
        problems.at(document, (key,), f"unknown key '{key}'{did_you_mean(key, _KEYS)}", key=True)
    zone = data.get("timezone", "UTC")
    if (problem := timezone_problem(zone)) is not None:
        problems.at(document, ("timezone",), problem)
    days = data.get("working_days", list(WEEKDAYS[:5]))
    weekdays: list[int] = []
    if not isinstance(days, list) or not days:
        problems.at(document, ("working_days",), "working_days is a list of mon, tue, … sun")
    else:
        for index, day in enumerate(days):
            if day not in WEEKDAYS:
                problems.at(document, ("working_days", index), f"'{day}' is not one of {WEEKDAYS}")
            else:
                weekdays.append(WEEKDAYS.index(day))
    start, end = _hours(document, data.get("hours", "09:00-17:00"), problems)
    dates, countries = _holidays(document, data.get("holidays"), problems)
    if len(problems.problems) != count:
        return None
    return CalendarDef(
        pack=pack,
        name=name,
        timezone=str(zone),
        weekdays=tuple(sorted(set(weekdays))),
        start=start,
        end=end,
        holidays=dates,
        countries=countries,
    )


def _hours(
    document: SourceDocument, value: Any, problems: ProblemCollector
) -> tuple[dt.time, dt.time]:
    match = _HOURS.fullmatch(value) if isinstance(value, str) else None
    try:
        if match is None:
            raise ValueError
        start = dt.time.fromisoformat(match["start"])
        end = dt.time.fromisoformat(match["end"])
    except ValueError:
        problems.at(document, ("hours",), f"hours '{value}' is not a span like \"09:00-17:00\"")
        return dt.time(), dt.time()
    if start >= end:
        problems.at(document, ("hours",), "hours end before they start")
    return start, end


def _holidays(
    document: SourceDocument, value: Any, problems: ProblemCollector
) -> tuple[tuple[dt.date, ...], tuple[tuple[str, str | None], ...]]:
    if value is None:
        return (), ()
    if not isinstance(value, dict):
        problems.at(document, ("holidays",), "holidays is a mapping: country, subdivision, dates")
        return (), ()
    for key in sorted(set(value) - _HOLIDAY_KEYS):
        hint = did_you_mean(key, _HOLIDAY_KEYS)
        problems.at(document, ("holidays", key), f"unknown key '{key}'{hint}", key=True)
    dates: list[dt.date] = []
    raw_dates = value.get("dates") or []
    if not isinstance(raw_dates, list):
        problems.at(document, ("holidays", "dates"), "dates is a list of dates (2026-12-24)")
        raw_dates = []
    for index, day in enumerate(raw_dates):
        if isinstance(day, dt.date) and not isinstance(day, dt.datetime):
            dates.append(day)
        else:
            problems.at(document, ("holidays", "dates", index), f"'{day}' is not a date")
    countries: list[tuple[str, str | None]] = []
    country = value.get("country")
    subdivision = value.get("subdivision")
    if country is not None:
        supported = _countries()
        if country not in supported:
            hint = did_you_mean(str(country), supported)
            problems.at(document, ("holidays", "country"), f"no holidays for '{country}'{hint}")
        elif subdivision is not None and subdivision not in supported[country]:
            known = ", ".join(supported[country]) or "none"
            problems.at(
                document,
                ("holidays", "subdivision"),
                f"'{subdivision}' is not a subdivision of {country} ({known})",
            )
        else:
            countries.append((country, subdivision))
    elif subdivision is not None:
        problems.at(document, ("holidays", "subdivision"), "a subdivision needs its country")
    return tuple(sorted(set(dates))), tuple(countries)
