"""Numeric field types: integer and decimal (exact, never a float on the way)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Numeric

from engine.fieldtypes._base import InvalidValue, StoredAsIs, register
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


def parse_integer(value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidValue("type", "must be a whole number")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
        result = int(value.strip())
    elif isinstance(value, (float, Decimal)) and value == value and int(value) == value:
        result = int(value)
    else:
        raise InvalidValue("type", "must be a whole number")
    if not INT64_MIN <= result <= INT64_MAX:
        raise InvalidValue("max", "is outside the 64-bit integer range")
    return result


@register(FieldType.INTEGER)
class IntegerKind(StoredAsIs):
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


@register(FieldType.DECIMAL)
class DecimalKind(StoredAsIs):
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
        scale = field.scale if field.scale is not None else 2
        quantum = Decimal(1).scaleb(-scale)
        integer_digits = (field.precision or 18) - scale

        def coerce(value: Any) -> Decimal:
            number = parse_decimal(value)
            try:
                exact = number.quantize(quantum)
            except InvalidOperation:
                raise InvalidValue("max", "is too large") from None
            if exact != number:
                raise InvalidValue("scale", f"must have at most {scale} decimal places")
            if exact.adjusted() >= integer_digits:
                raise InvalidValue(
                    "max", f"must have at most {integer_digits} digits before the decimal point"
                )
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
