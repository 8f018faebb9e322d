"""Values as people read them (runtime/formatting.py): numbers, money, dates and choices in
a reader's locale and time zone, and numbers typed back in that locale."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from metadata import FieldDef, FieldType
from runtime.formatting import InputError, choice_label, formats_for

AMOUNT = FieldDef("amount", FieldType.DECIMAL, "Amount", scale=2, currency="currency")
BASE = FieldDef("base", FieldType.DECIMAL, "Base", scale=2, currency="company")
FEE = FieldDef("fee", FieldType.DECIMAL, "Fee", scale=2, currency="CHF")
QUANTITY = FieldDef("quantity", FieldType.DECIMAL, "Quantity", scale=3)
COUNT = FieldDef("count", FieldType.INTEGER, "Count")
INDUSTRY = FieldDef(
    "industry", FieldType.ENUM, "Industry", values=("financial_services", "transportation")
)
NBSP, NNBSP = "\u00a0", "\u202f"


@pytest.mark.parametrize(
    ("locale", "currency", "expected"),
    [
        ("de_DE", "EUR", f"1.450.000,00{NBSP}€"),
        ("en_US", "USD", "$1,450,000.00"),
        ("en_US", "EUR", "€1,450,000.00"),
        ("fr_CH", "CHF", f"1'450'000,00{NBSP}CHF"),  # Babel alone would drop the apostrophes
        ("de_CH", "CHF", f"CHF{NBSP}1'450'000.00"),
        ("fr_FR", "EUR", f"1{NNBSP}450{NNBSP}000,00{NBSP}€"),
        ("hi_IN", "INR", "₹14,50,000.00"),
        ("ja_JP", "JPY", "￥1,450,000.00"),  # the field's scale, not the currency's digits
    ],
)
def test_money_in_the_readers_locale(locale: str, currency: str, expected: str) -> None:
    formats = formats_for(locale, "UTC")
    assert formats.value(Decimal("1450000"), AMOUNT, {"currency": currency}) == expected


def test_negative_huge_and_missing_amounts() -> None:
    german, american = formats_for("de_DE", "UTC", "EUR"), formats_for("en_US", "UTC", "EUR")
    assert german.value(Decimal("-1450.5"), AMOUNT, {"currency": "EUR"}) == f"-1.450,50{NBSP}€"
    assert american.value(Decimal("-1450.5"), AMOUNT, {"currency": "USD"}) == "-$1,450.50"
    digits28 = Decimal("1234567890123456789012345678")  # beyond the default 28-digit context
    assert german.value(digits28, QUANTITY) == "1.234.567.890.123.456.789.012.345.678,000"
    assert american.value(
        Decimal("99999999999999999999999999.99"), AMOUNT, {"currency": "EUR"}
    ) == ("€99,999,999,999,999,999,999,999,999.99")
    assert german.value(None, AMOUNT, {"currency": "EUR"}) == ""
    assert german.value(Decimal("5"), BASE) == f"5,00{NBSP}€"  # the company currency
    assert german.value(Decimal("5"), FEE) == f"5,00{NBSP}CHF"  # a fixed one
    # no currency known (none on the record, none for the company): a plain number
    assert formats_for("de_DE", "UTC").value(Decimal("5"), BASE) == "5,00"
    assert german.value(Decimal("5"), AMOUNT, {"currency": "<b>"}) == "5,00"
    assert german.value("not a number", AMOUNT, {}) == "not a number"


def test_a_lines_amount_in_its_parents_currency() -> None:
    """``currency: parent.currency``: read in the record the line belongs to, never in the
    line (whose own ``currency`` field, if it had one, is another thing)."""
    price = FieldDef("price", FieldType.DECIMAL, "Price", scale=2, currency="parent.currency")
    german, american = formats_for("de_DE", "UTC", "USD"), formats_for("en_US", "UTC")
    line, deal = {"price": "1450", "currency": "GBP"}, {"currency": "EUR"}
    assert german.value(Decimal("1450"), price, line, deal) == f"1.450,00{NBSP}€"
    assert american.value(Decimal("1450"), price, line, deal) == "€1,450.00"
    # no parent given, or none with a code: a plain number (not the company's, not the line's)
    assert german.value(Decimal("1450"), price, line) == "1.450,00"
    assert german.value(Decimal("1450"), price, line, {"currency": "euro"}) == "1.450,00"
    assert german.value(Decimal("1450"), price, line, {}) == "1.450,00"


def test_numbers_integers_and_decimals_by_scale() -> None:
    german = formats_for("de_DE", "UTC")
    assert german.value(12345678, COUNT) == "12.345.678"
    assert german.value(-7, COUNT) == "-7"
    assert german.value(Decimal("2.5"), QUANTITY) == "2,500"
    assert german.value("1450.5", QUANTITY) == "1.450,500"  # text from JSON reads the same
    assert formats_for("en_US", "UTC").value(Decimal("1450.5"), QUANTITY) == "1,450.500"
    assert german.value(True, FieldDef("ok", FieldType.BOOLEAN, "Ok")) == "Yes"
    assert german.value(Decimal("NaN"), QUANTITY) == "NaN"  # never raises
    assert german.value(Decimal("9" * 300), QUANTITY) == "9" * 300  # typed, shown back
    assert german.input_number(Decimal("1E+999999"), QUANTITY) == "1E+999999"


def test_dates_and_moments_in_the_readers_zone() -> None:
    moment = dt.datetime(2026, 12, 6, 8, 30, tzinfo=dt.UTC)
    assert formats_for("de_DE", "Europe/Berlin").datetime(moment) == "06.12.2026, 09:30 CET"
    assert formats_for("en_US", "America/New_York").datetime(moment) == (
        f"Dec 6, 2026, 3:30{NNBSP}AM EST"
    )
    assert formats_for("en_US", "UTC").date(dt.date(2026, 12, 6)) == "Dec 6, 2026"
    assert formats_for("de_DE", "UTC").date("2026-12-06") == "06.12.2026"
    # a moment near midnight UTC is the next day in Tokyo
    late = dt.datetime(2026, 12, 31, 20, 0, tzinfo=dt.UTC)
    assert formats_for("ja_JP", "Asia/Tokyo").datetime(late).startswith("2027/01/01")
    edge = dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert "9999" in formats_for("de_DE", "Asia/Tokyo").datetime(edge)  # no overflow
    assert formats_for("de_DE", "UTC").datetime(None) == ""


def test_enum_values_by_their_labels() -> None:
    german = formats_for("de_DE", "UTC")
    assert german.value("financial_services", INDUSTRY) == "Financial services"
    assert german.value("transportation", INDUSTRY) == "Transportation"
    assert choice_label("closed_won") == "Closed won"
    assert choice_label(None) == ""


@pytest.mark.parametrize(
    ("locale", "typed", "engine"),
    [
        ("de_DE", "1.450", "1450"),  # a German thousands separator
        ("en_US", "1.450", "1.450"),  # an American decimal point
        ("de_DE", "1.450,50", "1450.50"),
        ("de_DE", "1450,5", "1450.5"),
        ("en_US", "1,450.50", "1450.50"),
        ("en_US", "-0.5", "-0.5"),
        ("en_US", ".5", "0.5"),
        ("fr_FR", "1 450,5", "1450.5"),  # any space groups where a space is the separator
        ("fr_FR", f"1{NNBSP}450,5", "1450.5"),
        ("de_CH", "1'450.5", "1450.5"),
        ("de_CH", "1\u2019450.5", "1450.5"),
        ("hi_IN", "14,50,000.5", "1450000.5"),
        ("sv_SE", "\u22125", "-5"),  # the minus sign the locale shows
        ("en_US", "12345678901234567890123456789012.25", "12345678901234567890123456789012.25"),
    ],
)
def test_numbers_typed_as_the_locale_writes_them(locale: str, typed: str, engine: str) -> None:
    assert formats_for(locale, "UTC").parse_number(typed, QUANTITY) == engine


@pytest.mark.parametrize(
    ("locale", "typed"),
    [
        ("en_US", "1,45"),  # not 145, not 1.45: refused, not guessed
        ("de_DE", "1450.50"),
        ("de_DE", "1.45"),
        ("en_US", "12,34,567"),
        ("en_US", "1e5"),
        ("en_US", "NaN"),
        ("en_US", "Infinity"),
        ("en_US", "5,"),
        ("en_US", "-"),
        ("en_US", "1\x002"),
        ("en_US", "\ud800"),
        ("en_US", "٣"),  # other scripts' digits
        ("en_US", "9" * 500),
    ],
)
def test_numbers_the_locale_does_not_write_are_refused(locale: str, typed: str) -> None:
    formats = formats_for(locale, "UTC")
    with pytest.raises(InputError, match="is not a number as written in"):
        formats.parse_number(typed, QUANTITY)


def test_integers_must_be_whole() -> None:
    german = formats_for("de_DE", "UTC")
    assert german.parse_number("1.450", COUNT) == "1450"
    assert german.parse_number("7,00", COUNT) == "7"
    with pytest.raises(InputError, match="not a whole number"):
        german.parse_number("7,5", COUNT)


def test_what_an_input_shows_reads_back_the_same() -> None:
    for locale in ("de_DE", "en_US", "fr_CH", "fr_FR", "sv_SE", "hi_IN", "ar_EG"):
        formats = formats_for(locale, "UTC")
        for value in (Decimal("-1450000.505"), Decimal("0.001"), Decimal("12")):
            shown = formats.input_number(value, QUANTITY)
            assert Decimal(formats.parse_number(shown, QUANTITY)) == value, (locale, shown)


def test_datetime_inputs_are_in_the_readers_zone() -> None:
    berlin = formats_for("de_DE", "Europe/Berlin")
    moment = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.UTC)
    assert berlin.input_datetime(moment) == "2026-07-01T12:00"
    assert berlin.parse_datetime("2026-07-01T12:00") == "2026-07-01T10:00:00+00:00"
    assert berlin.parse_datetime("garbage") == "garbage"  # the engine says what is wrong
    assert berlin.parse_datetime("2026-07-01T12:00+00:00") == "2026-07-01T12:00+00:00"
