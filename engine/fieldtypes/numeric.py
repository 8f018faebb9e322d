"""Numeric field types: integer and decimal (exact, never a float on the way)."""

from __future__ import annotations

import functools
import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement

from engine.fieldtypes._base import InvalidValue, StoredAsIs, WidgetKind, register
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER_TEXT = re.compile(r"^[+-]?\d+$")
_DECIMAL_TEXT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _check_range(value: Decimal | int, field: FieldDef) -> None:
    if field.min is not None and value < field.min:
        raise InvalidValue("min", f"must be at least {field.min}")
    if field.max is not None and value > field.max:
        raise InvalidValue("max", f"must be at most {field.max}")


_OUT_OF_RANGE = "is outside the 64-bit integer range"
_MAX_DIGITS = 19
"""Digits of the largest 64-bit integer: longer numbers are refused before they are
converted (Python refuses to convert more than 4,300 digits, and 1e999999999 as a whole
number would take minutes to build)."""


def parse_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidValue("type", "must be a whole number")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        digits = value.strip().lstrip("+-").lstrip("0")
        if len(digits) > _MAX_DIGITS:
            raise InvalidValue("max", _OUT_OF_RANGE)
        result = int(value.strip())
    elif isinstance(value, (float, Decimal)):
        number = value if isinstance(value, Decimal) else Decimal(repr(value))
        if not number.is_finite() or number != number.to_integral_value():
            raise InvalidValue("type", "must be a whole number")
        if number and number.adjusted() >= _MAX_DIGITS:
            raise InvalidValue("max", _OUT_OF_RANGE)
        result = int(number)
    else:
        raise InvalidValue("type", "must be a whole number")
    if not INT64_MIN <= result <= INT64_MAX:
        raise InvalidValue("max", _OUT_OF_RANGE)
    return result


@register(FieldType.INTEGER)
class IntegerKind(StoredAsIs):
    def filter_parser(self) -> Callable[[Any], Any] | None:
        return parse_integer

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX}

    def computed_converter(self, field: FieldDef) -> Callable[[Any], Any]:
        coerce = self.coercer(field)

        def rounded_integer(value: Any) -> Any:
            if isinstance(value, float | Decimal):
                value = int(
                    Decimal(repr(value) if isinstance(value, float) else value).quantize(
                        Decimal(1), rounding=ROUND_HALF_UP
                    )
                )
            return coerce(value)

        return rounded_integer

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("input", "number", "1")

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return BigInteger()

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "integer"}
        schema["minimum"] = int(field.min) if field.min is not None else INT64_MIN
        schema["maximum"] = int(field.max) if field.max is not None else INT64_MAX
        return schema

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        def coerce(value: Any) -> int:
            result = parse_integer(value)
            _check_range(result, field)
            return result

        return coerce


def parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidValue("type", "must be a decimal number")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str) and _DECIMAL_TEXT.match(value.strip()):
        result = Decimal(value.strip())
    else:
        raise InvalidValue("type", "must be a decimal number (as a JSON number or a string)")
    if not result.is_finite():
        raise InvalidValue("type", "must be a finite decimal number")
    return result


_EXACT = Context(prec=100, traps=[InvalidOperation])
"""Room for every decimal a column holds (precision is at most 38) at its scale: the
default context's 28 digits would refuse a valid decimal(38, 2)."""


def decimal_shape(field: FieldDef) -> tuple[int, int]:
    """(precision, scale) of a decimal field, with the defaults."""
    return field.precision or 18, field.scale if field.scale is not None else 2


_QUANTA = {scale: Decimal(1).scaleb(-scale) for scale in range(39)}
"""``10 ** -scale`` of every scale a column can have, built once."""


def fit_decimal(number: Decimal, precision: int, scale: int) -> Decimal:
    """``number`` at the column's scale, refused when the column cannot hold it exactly:
    more decimal places than ``scale`` or more digits before the point than
    ``precision - scale`` (a filter value too: PostgreSQL would round it to the column's
    type, or fail)."""
    quantum = _QUANTA.get(scale) or Decimal(1).scaleb(-scale)
    integer_digits = precision - scale
    if number and number.adjusted() >= integer_digits:
        raise InvalidValue(
            "max", f"must have at most {integer_digits} digits before the decimal point"
        )
    try:
        exact = number.quantize(quantum, context=_EXACT)
    except InvalidOperation:
        raise InvalidValue("max", "is too large") from None
    if exact != number:
        raise InvalidValue("scale", f"must have at most {scale} decimal places")
    if exact.adjusted() >= integer_digits:
        raise InvalidValue(
            "max", f"must have at most {integer_digits} digits before the decimal point"
        )
    return exact.copy_abs() if exact.is_zero() else exact  # -0.00 is 0.00 in both databases


@register(FieldType.DECIMAL)
class DecimalKind(StoredAsIs):
    def filter_parser(self) -> Callable[[Any], Any] | None:
        return parse_decimal

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        assert field is not None  # no system field is a decimal
        return {"type": "string", "pattern": self.json_schema(field)["anyOf"][0]["pattern"]}

    def computed_converter(self, field: FieldDef) -> Callable[[Any], Any]:
        coerce = self.coercer(field)
        quantum = Decimal(1).scaleb(-(field.scale if field.scale is not None else 2))

        def rounded_decimal(value: Any) -> Any:
            if type(value) is Decimal:  # the usual result of arithmetic on decimals
                return coerce(value.quantize(quantum, rounding=ROUND_HALF_UP))
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                value = Decimal(repr(value) if isinstance(value, float) else value)
                value = value.quantize(quantum, rounding=ROUND_HALF_UP)
            return coerce(value)

        return rounded_decimal

    def schema_default(self, value: Any) -> Any:
        return None  # a decimal's default is a YAML number; the schema's values are text

    def widget(self, field: FieldDef) -> WidgetKind:
        scale = field.scale if field.scale is not None else 2
        return WidgetKind("input", "number", str(Decimal(1).scaleb(-scale)) if scale else "1")

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return Numeric(
            field.precision or 18, field.scale if field.scale is not None else 2, asdecimal=True
        )

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        scale = field.scale if field.scale is not None else 2
        digits = (field.precision or 18) - scale
        fraction = rf"(\.\d{{1,{scale}}})?" if scale else ""
        number: dict[str, Any] = {"type": "number"}
        if field.min is not None:
            number["minimum"] = float(field.min)
        if field.max is not None:
            number["maximum"] = float(field.max)
        return {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": rf"^-?\d{{1,{digits}}}{fraction}$",
                    "examples": ["12.50"],
                },
                number,
            ],
            "description": "Exact decimal, returned as a string; a JSON number is accepted.",
        }

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        precision, scale = decimal_shape(field)

        def coerce(value: Any) -> Decimal:
            exact = fit_decimal(parse_decimal(value), precision, scale)
            _check_range(exact, field)
            return exact

        return coerce

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        if dialect != "sqlite":
            return None  # PostgreSQL's NUMERIC is exact
        return functools.partial(scaled_integer, scale=decimal_shape(field)[1])

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        if dialect != "sqlite":
            return None
        return functools.partial(unscaled_decimal, scale=decimal_shape(field)[1])

    def column_default(self, value: Any) -> str | None:
        return None  # the column's DEFAULT depends on the database: see ``server_default``

    def server_default(self, field: FieldDef, value: Any) -> Any:
        try:
            exact = fit_decimal(parse_decimal(value), *decimal_shape(field))
        except InvalidValue:
            return None  # the loader reports such a default; the engine checks each record
        return DecimalDefault(exact, decimal_shape(field)[1])


class DecimalDefault(ColumnElement[Any]):
    """A decimal column's DEFAULT, written per database: the decimal on PostgreSQL, the
    scaled integer (``scaled_integer``) on SQLite, so that a column added to a table with
    rows fills them with what the engine reads back as the default."""

    inherit_cache = True

    def __init__(self, value: Decimal, scale: int) -> None:
        self.value = value
        self.scale = scale


@compiles(DecimalDefault)
def _decimal_default(element: DecimalDefault, compiler: Any, **kw: Any) -> str:
    return f"'{element.value}'"


@compiles(DecimalDefault, "sqlite")
def _scaled_default(element: DecimalDefault, compiler: Any, **kw: Any) -> str:
    return f"'{scaled_integer(element.value, element.scale)}'"


SQLITE_DIGITS = 18
"""Significant digits a decimal keeps on SQLite: every 18-digit integer fits 64 bits."""


def scaled_integer(value: Decimal, scale: int) -> int:
    """``value`` as a whole number of its column's smallest unit (12.50 at scale 2 is 1250):
    what a decimal column holds on SQLite, where NUMERIC is an integer or a double and a
    double keeps only 15 significant digits. Integers compare, sort and ``sum()`` exactly
    in SQLite (a sum beyond 64 bits fails rather than rounds)."""
    scaled = value.scaleb(scale, context=_EXACT)
    whole = int(scaled)
    if whole != scaled:
        raise InvalidValue("scale", f"must have at most {scale} decimal places")
    if not INT64_MIN <= whole <= INT64_MAX:
        raise InvalidValue(
            "max", f"is too large for SQLite, which keeps {SQLITE_DIGITS} significant digits"
        )
    return whole


def unscaled_decimal(value: Any, scale: int) -> Decimal:
    """The decimal of a SQLite column value (``scaled_integer`` undone). A value written
    before decimals were scaled integers was converted by ``tessera migrate``; a double
    here would be a bug, and ``repr`` keeps what it holds rather than inventing digits."""
    if isinstance(value, int):
        return Decimal(value).scaleb(-scale, context=_EXACT)
    number = Decimal(repr(value) if isinstance(value, float) else value)
    return number.scaleb(-scale, context=_EXACT).quantize(_QUANTA[scale], context=_EXACT)
