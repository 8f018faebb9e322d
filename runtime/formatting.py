"""Values as people read them: numbers, money, dates and choices in a reader's locale and
time zone (docs/locales.md), with Babel (the Unicode CLDR's data: separators, currency
symbols and their places, date patterns, for every locale).

Used where people read values: the web UI, print formats, and CSV exports "for people".
Never by the API, whose JSON keeps the machine format (``"1450000.00"``, ISO dates).

A :class:`Formats` is one reader's way of reading (locale, time zone, company currency),
made once per combination and kept (:func:`formats_for`). It compiles each field once, the
first time it shows one: a decimal's pattern with the field's scale, a money field's
currency pattern and where its currency comes from, an enum's labels. It also reads back
what it shows: a number typed as ``1.450,50`` by a German reader (``parse_number``), a
``datetime-local`` input in the reader's time zone.
"""

from __future__ import annotations

import copy
import datetime as dt
import decimal
import functools
import logging
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.dates import format_date, format_time
from babel.numbers import (
    NumberPattern,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
    get_minus_sign_symbol,
)

from metadata import FieldDef, FieldType, canonical_locale
from metadata._money import parent_currency

log = logging.getLogger(__name__)

DEFAULT_LOCALE = "en_US"
COMPANY = "company"
_CODE = re.compile(r"[A-Z]{3}")
_DIGITS = re.compile(r"\d+")
_WIDE = decimal.Context(prec=120)
"""Enough digits for any decimal a field holds (38) with its scale, and far beyond: the
default context's 28 would round a 28-digit amount while formatting it."""
_MAX_INPUT = 200
"""A typed number longer than this is no number anyone means; refused before parsing."""
_SPACES = "\u0020\u00a0\u202f\u2009"
_APOSTROPHES = "'\u2019"

Record = Mapping[str, Any] | None
Shown = Callable[[Any, Record, Record], str]
"""A compiled field format: the value, the record it belongs to and, for a line, the record
the line belongs to (money reads its currency in one of them), to the text people read."""


class InputError(ValueError):
    """A value typed on a form that is not one in the reader's locale; the message says how
    to write it."""


class AsTyped(str):
    """Text typed into a number input that is no number in the reader's locale, kept to be
    shown back exactly as typed (``1450.50`` stays ``1450.50`` for a German reader, not
    "corrected" to ``1.450,50``); it is refused, never written."""

    __slots__ = ()


def choice_label(value: Any) -> str:
    """An enum value as people read it: ``financial_services`` is "Financial services"
    (the value sent and stored stays ``financial_services``)."""
    if value is None:
        return ""
    text = str(value).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def _title(value: Mapping[str, Any]) -> str:
    """A linked record (an expanded reference) by its title."""
    for key in ("_title", "title", "name", "number", "code"):
        if value.get(key):
            return str(value[key])
    return str(value.get("id") or "")


class Formats:
    """How one reader reads values: a locale (``de_DE``), a time zone (``Europe/Berlin``)
    and the company currency that ``currency: company`` fields are in."""

    def __init__(self, locale: str, timezone: str, company_currency: str | None = None) -> None:
        self.locale_name = canonical_locale(locale) or DEFAULT_LOCALE
        self.locale = Locale.parse(self.locale_name)
        self.timezone = timezone
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.company_currency = company_currency
        self._decimal = self.locale.decimal_formats[None]
        self._currency = self.locale.currency_formats["standard"]
        self._group = get_group_symbol(self.locale)
        self._point = get_decimal_symbol(self.locale)
        self._minus = get_minus_sign_symbol(self.locale)
        self._fields: dict[int, tuple[FieldDef, Shown]] = {}
        self._patterns: dict[tuple[str, int], NumberPattern] = {}
        self.example = self.number(Decimal("1234.56"), 2)
        """``1,234.56`` or ``1.234,56``: how the reader writes a number, for hints."""

    @property
    def language(self) -> str:
        """The locale's name in English (``German (Germany)``), for messages."""
        return str(self.locale.get_display_name("en") or self.locale_name)

    # -- numbers -----------------------------------------------------------------------

    def _pattern(self, kind: str, scale: int) -> NumberPattern:
        """The locale's decimal or currency pattern with exactly ``scale`` decimals."""
        key = (kind, scale)
        found = self._patterns.get(key)
        if found is None:
            found = copy.copy(self._currency if kind == "money" else self._decimal)
            found.frac_prec = (scale, scale)
            self._patterns[key] = found
        return found

    def _apply(self, pattern: NumberPattern, value: Decimal, currency: str | None = None) -> str:
        """``value`` through ``pattern``; a number too long for any field (a hundred digits
        typed into a form, shown back) as its plain digits rather than an error."""
        try:
            return self._applied(pattern, value, currency)
        except decimal.DecimalException:
            return str(value)

    def _applied(self, pattern: NumberPattern, value: Decimal, currency: str | None) -> str:
        with decimal.localcontext(_WIDE):
            if self._group in _APOSTROPHES:
                # Babel strips text between single quotes from its result, and the Swiss
                # group symbol is one (1'234'567 would read 1234567): group here instead.
                text = str(
                    pattern.apply(
                        value,
                        self.locale,
                        currency=currency,
                        currency_digits=False,
                        group_separator=False,
                    )
                )
                return _DIGITS.sub(lambda m: self._grouped(m.group(), pattern), text, count=1)
            return str(pattern.apply(value, self.locale, currency=currency, currency_digits=False))

    def _grouped(self, digits: str, pattern: NumberPattern) -> str:
        first, rest = pattern.grouping
        parts: list[str] = []
        size = first
        while len(digits) > size:
            parts.insert(0, digits[-size:])
            digits = digits[:-size]
            size = rest
        return self._group.join([digits, *parts])

    def number(self, value: Any, scale: int | None = None) -> str:
        """A number with the locale's separators; ``scale`` decimals, else as many as it has."""
        number = _decimal(value)
        if number is None:
            return "" if value is None else str(value)
        if scale is None:
            exponent = number.as_tuple().exponent
            scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        return self._apply(self._pattern("number", scale), number)

    def money(self, value: Any, currency: str | None, scale: int = 2) -> str:
        """An amount with its currency's symbol where the locale puts it (``1.450,00 €``,
        ``€1,450.00``); without a currency, a number."""
        number = _decimal(value)
        if number is None:
            return "" if value is None else str(value)
        if not currency or not _CODE.fullmatch(str(currency)):
            return self.number(number, scale)
        return self._apply(self._pattern("money", scale), number, str(currency))

    def currency_symbol(self, currency: str) -> str:
        return str(get_currency_symbol(currency, self.locale))

    # -- dates -------------------------------------------------------------------------

    def date(self, value: Any) -> str:
        """A date in the locale's medium form (``06.12.2026``, ``Dec 6, 2026``)."""
        if isinstance(value, dt.datetime):
            value = self.local(value).date()
        if not isinstance(value, dt.date):
            parsed = _iso_date(value)
            if parsed is None:
                return "" if value is None else str(value)
            value = parsed
        return str(format_date(value, "medium", locale=self.locale))

    def local(self, value: dt.datetime) -> dt.datetime:
        """A moment in the reader's time zone (a naive one is taken as UTC)."""
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        try:
            return aware.astimezone(self.zone)
        except (OverflowError, ValueError):  # the year 9999 moved past the calendar's end
            return aware

    def datetime(self, value: Any) -> str:
        """A moment in the reader's time zone, to the minute, with the zone's abbreviation
        (``06.12.2026, 09:30 CET``)."""
        if not isinstance(value, dt.datetime):
            parsed = _iso_datetime(value)
            if parsed is None:
                return "" if value is None else str(value)
            value = parsed
        moment = self.local(value)
        day = format_date(moment.date(), "medium", locale=self.locale)
        time = format_time(moment.time(), "short", locale=self.locale)
        joined = str(self.locale.datetime_formats["medium"]).replace("{1}", str(day))
        return f"{joined.replace('{0}', str(time))} {moment.tzname() or self.timezone}"

    # -- any value, and fields ---------------------------------------------------------

    def value(
        self,
        value: Any,
        field: FieldDef | None = None,
        record: Record = None,
        parent: Record = None,
    ) -> str:
        """``value`` of ``field`` (of ``record``, a line of ``parent``) as text people
        read; without a field, by the value's own type."""
        if field is not None:
            return self.field(field)(value, record, parent)
        return self._untyped(value)

    def _untyped(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, dt.datetime):
            return self.datetime(value)
        if isinstance(value, dt.date):
            return self.date(value)
        if isinstance(value, (int, Decimal, float)):
            return self.number(value)
        if isinstance(value, Mapping):
            return _title(value)
        return str(value)

    def field(self, field: FieldDef) -> Shown:
        """The compiled format of ``field`` (made once per field and reader)."""
        cached = self._fields.get(id(field))
        if cached is not None and cached[0] is field:
            return cached[1]
        compiler = _COMPILERS.get(field.type)
        shown = compiler(self, field) if compiler is not None else self._plain
        if len(self._fields) > 10_000:  # definitions reloaded many times
            self._fields.clear()
        self._fields[id(field)] = (field, shown)
        return shown

    def _plain(self, value: Any, record: Record, parent: Record) -> str:
        return self._untyped(value)

    def currency_of(self, field: FieldDef, record: Record, parent: Record = None) -> str | None:
        """The currency code of a money field's value in ``record`` (a line's field with
        ``currency: parent.<field>``: in ``parent``, the record the line belongs to)."""
        source = field.currency
        if source is None:
            return None
        if source == COMPANY:
            return self.company_currency
        if _CODE.fullmatch(source):
            return source
        of_parent = parent_currency(source)
        if of_parent is not None:
            source, record = of_parent, parent
        code = record.get(source) if record is not None else None
        return str(code) if isinstance(code, str) and _CODE.fullmatch(code) else None

    # -- reading back what people type ---------------------------------------------------

    def parse_number(self, text: str, field: FieldDef) -> str:
        """A number typed in the reader's locale (``1.450,50`` in de_DE), as the engine's
        text (``1450.50``). Refuses what the locale does not write that way rather than
        guess: ``1,45`` in en_US, ``1450.50`` in de_DE, exponents, NaN."""
        typed = "".join(" " if c in _SPACES else c for c in text[: _MAX_INPUT + 1]).strip()
        if len(typed) > _MAX_INPUT or not typed.isprintable():
            raise InputError(self._not_a_number(typed))
        normalized = typed
        if self._group in _SPACES:  # a space groups: any space does
            normalized = normalized.replace(" ", self._group)
        if self._group in _APOSTROPHES:
            normalized = "".join(self._group if c in _APOSTROPHES else c for c in normalized)
        normalized = normalized.replace(self._minus, "-").replace("\u2212", "-")
        match = self._typed_number.fullmatch(normalized)
        if match is None or not (match["whole"] or match["fraction"]):
            raise InputError(self._not_a_number(typed))
        whole = match["sign"] + (match["whole"] or "0").replace(self._group, "")
        fraction = match["fraction"] or ""
        if field.type is FieldType.INTEGER:
            if fraction.strip("0"):
                raise InputError(f"'{_shown(typed)}' is not a whole number")
            return str(int(whole))
        return f"{whole}.{fraction}" if fraction else whole

    @functools.cached_property
    def _typed_number(self) -> re.Pattern[str]:
        """A number as the locale writes it: digits without groups, or grouped exactly as
        the locale groups them (``1.450.000`` in de_DE, ``14,50,000`` in hi_IN), then the
        locale's decimal symbol and decimals. Babel's own strict parsing is not used: it
        compares with its formatting, which drops the Swiss apostrophes (1'234'567)."""
        group, point = re.escape(self._group), re.escape(self._point)
        first, rest = self._decimal.grouping
        grouped = rf"[0-9]{{1,{rest}}}(?:{group}[0-9]{{{rest}}})*{group}[0-9]{{{first}}}"
        return re.compile(
            rf"(?P<sign>-?)(?P<whole>[0-9]+|{grouped})?(?:{point}(?P<fraction>[0-9]+))?"
        )

    def _not_a_number(self, typed: str) -> str:
        return (
            f"'{_shown(typed)}' is not a number as written in {self.language}: for example "
            f"{self.example} (your preferences choose how numbers are written)"
        )

    def input_number(self, value: Any, field: FieldDef) -> str:
        """What a number input shows: the value as the reader writes it, without currency
        symbol, all its decimals (so that saving it again changes nothing); what the reader
        typed and was refused, as they typed it."""
        if isinstance(value, AsTyped):
            return str(value)
        number = _decimal(value)
        if number is None:
            return "" if value is None else str(value)
        scale = field.scale if field.type is FieldType.DECIMAL else 0
        if scale is None:
            scale = 2
        exponent = number.as_tuple().exponent
        shown = max(scale, -exponent if isinstance(exponent, int) else 0)
        return self._apply(self._pattern("number", shown), number)

    def input_datetime(self, value: Any) -> str:
        """A ``datetime-local`` input's value: the moment in the reader's time zone (its
        year in four digits: ``strftime`` writes the year 1 as ``1``, which the input
        rejects and so shows empty)."""
        if not isinstance(value, dt.datetime):
            return "" if value is None else str(value)
        return self.local(value).replace(tzinfo=None).isoformat(timespec="minutes")

    def parse_datetime(self, text: str) -> str:
        """A ``datetime-local`` value (no offset) read in the reader's time zone, as the
        engine's ISO text in UTC; anything else is left to the engine to judge.

        Refuses, with a message at the field, a local time outside what a field holds
        (``0001-01-01T00:00`` in Berlin is 23:06:32 UTC the year before) and one that does
        not exist in the zone (``2026-03-29T02:30`` in Berlin: the clocks skip from 02:00
        to 03:00); the UTC text also keeps a historical offset with seconds (Berlin's
        local mean time before 1893, +00:53:28) from reaching the engine, which takes
        offsets in minutes. A time that happens twice (the clocks going back) is the
        first."""
        try:
            naive = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        if naive.tzinfo is not None:
            return text
        try:
            moment = naive.replace(tzinfo=self.zone).astimezone(dt.UTC)
        except (OverflowError, ValueError):
            edge = "before the earliest" if naive.year < 5000 else "after the latest"
            raise InputError(
                f"'{_shown(text)}' in {self.timezone} is {edge} time a field can hold: "
                f"from 0001-01-01 00:00 to 9999-12-31 23:59 UTC"
            ) from None
        try:
            back = moment.astimezone(self.zone).replace(tzinfo=None)
        except (OverflowError, ValueError):
            back = naive
        if back != naive:
            raise InputError(
                f"'{_shown(text)}' does not exist in {self.timezone}: the clocks skip it "
                f"(a change of offset, such as to summer time); did you mean "
                f"{back.strftime('%H:%M')}?"
            )
        return moment.isoformat()


def _shown(text: str) -> str:
    """Typed text quoted in a message: short, and every unprintable character escaped."""
    clipped = text[:40] + ("…" if len(text) > 40 else "")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in clipped)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, (float, str)):
        try:
            number = Decimal(str(value))
        except decimal.InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _iso_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _iso_datetime(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# -- one compiler per field type -------------------------------------------------------

_COMPILERS: dict[FieldType, Callable[[Formats, FieldDef], Shown]] = {}


def _compiles(*types: FieldType) -> Callable[[Callable[[Formats, FieldDef], Shown]], Any]:
    def register(compiler: Callable[[Formats, FieldDef], Shown]) -> Any:
        for kind in types:
            _COMPILERS[kind] = compiler
        return compiler

    return register


@_compiles(FieldType.INTEGER)
def _integer(formats: Formats, field: FieldDef) -> Shown:
    pattern = formats._pattern("number", 0)

    def shown(value: Any, record: Record, parent: Record) -> str:
        number = _decimal(value)
        return str(value or "") if number is None else formats._apply(pattern, number)

    return shown


@_compiles(FieldType.DECIMAL)
def _decimal_field(formats: Formats, field: FieldDef) -> Shown:
    scale = field.scale if field.scale is not None else 2
    if field.currency is not None:

        def money(value: Any, record: Record, parent: Record) -> str:
            return formats.money(value, formats.currency_of(field, record, parent), scale)

        return money
    pattern = formats._pattern("number", scale)

    def shown(value: Any, record: Record, parent: Record) -> str:
        number = _decimal(value)
        if number is None:
            return "" if value is None else str(value)
        return formats._apply(pattern, number)

    return shown


@_compiles(FieldType.DATE)
def _date(formats: Formats, field: FieldDef) -> Shown:
    return lambda value, record, parent: formats.date(value)


@_compiles(FieldType.DATETIME)
def _datetime(formats: Formats, field: FieldDef) -> Shown:
    return lambda value, record, parent: formats.datetime(value)


@_compiles(FieldType.BOOLEAN)
def _boolean(formats: Formats, field: FieldDef) -> Shown:
    return lambda value, record, parent: "" if value is None else ("Yes" if value else "No")


@_compiles(FieldType.ENUM)
def _enum(formats: Formats, field: FieldDef) -> Shown:
    labels = {value: choice_label(value) for value in field.values}
    return lambda value, record, parent: labels.get(value) or choice_label(value)


@dataclass(frozen=True, slots=True)
class Readers:
    """The instance's defaults (``locale:``, ``timezone:``, ``company: {currency}``), and
    each user's own choices over them: the :class:`Formats` a user reads with."""

    locale: str = DEFAULT_LOCALE
    timezone: str = "UTC"
    company_currency: str | None = None

    def of(self, user: Any) -> Formats:
        """``user``'s formats (an ``engine.identity.User``, or None: the defaults). A
        locale or time zone the user holds that is none (a zone since removed from the tz
        database, a value written straight into the user table) is the instance's, with a
        warning in the log: every page would otherwise fail for that user."""
        locale = getattr(user, "locale", None) or self.locale
        timezone = getattr(user, "timezone", None) or self.timezone
        if locale != self.locale and canonical_locale(locale) is None:
            _held_none(getattr(user, "username", None), "locale", locale, self.locale)
            locale = self.locale
        if timezone != self.timezone and not is_zone(timezone):
            _held_none(getattr(user, "username", None), "time zone", timezone, self.timezone)
            timezone = self.timezone
        return formats_for(locale, timezone, self.company_currency)


@functools.lru_cache(maxsize=1024)
def _held_none(username: str | None, what: str, held: str, instance: str) -> None:
    """The warning that ``username`` holds a ``what`` that is none: once per value (not on
    every page they open) until an administrator or the user repairs it."""
    log.warning(
        "user %r holds the %s %r, which is none (removed from the tz database or CLDR, or "
        "written straight into the user table): reading in the instance's %s",
        username,
        what,
        held,
        instance,
    )


def is_zone(name: Any) -> bool:
    """Whether ``name`` is a time zone this machine's tz database has."""
    if not isinstance(name, str):
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        return False
    return True


@functools.lru_cache(maxsize=256)
def formats_for(locale: str, timezone: str, company_currency: str | None = None) -> Formats:
    """The :class:`Formats` of a locale, time zone and company currency, made once."""
    return Formats(locale, timezone, company_currency)
