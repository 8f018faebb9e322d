"""Numeric field types: integer and decimal (exact, never a float on the way)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Numeric

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
        return str if dialect == "sqlite" else None

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        scale = field.scale if field.scale is not None else 2
        quantum = Decimal(1).scaleb(-scale)
        if dialect == "sqlite":
            # SQLite keeps NUMERIC as integer or double; repr() gives back the shortest text
            # that round-trips, which is the exact decimal for up to 15 significant digits.
            return lambda v: Decimal(repr(v) if isinstance(v, float) else v).quantize(quantum)
        return None
