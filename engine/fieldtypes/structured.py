"""Structured field types: json, autonumber, reference and children."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.dialects.postgresql import JSONB

from engine.fieldtypes._base import (
    InvalidValue,
    StoredAsIs,
    WidgetKind,
    check_storable,
    register,
)
from engine.fieldtypes.numeric import INT64_MAX, parse_integer
from metadata import FieldType
from metadata._fieldkeys import DEFAULT_MAX_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef


@register(FieldType.JSON)
class JsonKind(StoredAsIs):
    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("textarea")

    def column_default(self, value: Any) -> str | None:
        return None  # a document, not a constant the column's DEFAULT can say

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return JSON().with_variant(JSONB(), "postgresql")

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {}

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        return _plain_json

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return _json_text if dialect == "sqlite" else None

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return _json_from_sqlite if dialect == "sqlite" else None


def _json_from_sqlite(value: Any) -> Any:
    """SQLite gives a JSON column numeric affinity: a value that is a bare number (``0``,
    ``1.5``) comes back as that number, not as its text."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


MAX_JSON_DEPTH = 64
"""Nesting a json field may have (the JSON encoder used for storage, audit and responses
stops at 255 levels, the record around the value adds a few)."""
_JSON_INT_MIN, _JSON_INT_MAX = -(2**63), 2**63 - 1
"""SQLite would turn a larger whole number into a double (numeric affinity)."""


def _plain_json(value: Any, depth: int = 0) -> Any:
    """JSON numbers with a fraction arrive as Decimal (to keep decimal fields exact);
    inside a free-form json field they are ordinary JSON numbers again. Numbers a double
    (or a 64-bit integer) cannot hold, and deeper nesting than ``MAX_JSON_DEPTH``, are
    refused rather than stored changed."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal | float):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidValue("type", "must not hold a number beyond the range of a double")
        return number
    if isinstance(value, int):
        if not _JSON_INT_MIN <= value <= _JSON_INT_MAX:
            raise InvalidValue("type", "must not hold a whole number beyond 64 bits")
        return value
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict | list) and depth >= MAX_JSON_DEPTH:
        raise InvalidValue("type", f"must not be nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(value, dict):
        return {_json_string(str(k)): _plain_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_json(v, depth + 1) for v in value]
    raise InvalidValue("type", "must be a JSON value")


def _json_string(text: str) -> str:
    # PostgreSQL's jsonb cannot hold U+0000; refuse it everywhere so both databases agree.
    return check_storable(text)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


@register(FieldType.AUTONUMBER)
class AutonumberKind(StoredAsIs):
    def column_default(self, value: Any) -> str | None:
        return None

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return String(DEFAULT_MAX_LENGTH[FieldType.AUTONUMBER])

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {"type": "string", "readOnly": True}

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        def coerce(value: Any) -> str:
            raise InvalidValue("read_only", "is numbered automatically and cannot be written")

        return coerce


@dataclass(frozen=True, slots=True)
class ReferenceByKey:
    """A reference written as ``{"<unique field>": value}``; resolved to an id before writing."""

    key_field: str
    value: Any


ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": "^[1-9][0-9]{0,18}$"}


def parse_id(value: Any) -> int:
    """A record id as clients send it (string or integer) → the stored integer."""
    try:
        result = parse_integer(value)
    except InvalidValue:
        raise InvalidValue("type", "must be a record id") from None
    if not 0 < result <= INT64_MAX:
        raise InvalidValue("type", "must be a record id")
    return result


def id_text(value: int) -> str:
    return str(value)


@register(FieldType.REFERENCE)
class ReferenceKind(StoredAsIs):
    def filter_parser(self) -> Callable[[Any], Any] | None:
        return parse_id

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return dict(ID_SCHEMA)

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("reference")

    def column_default(self, value: Any) -> str | None:
        return None  # a default reference is resolved by key per record

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return BigInteger()

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {
            "anyOf": [
                ID_SCHEMA,
                {
                    "type": "object",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "description": f"Look up the {field.to} record by one of its unique fields.",
                },
            ],
            "description": f"Id of a {field.to} record.",
        }

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        def coerce(value: Any) -> int | ReferenceByKey:
            if isinstance(value, dict):
                if len(value) != 1:
                    raise InvalidValue("reference", 'must be an id or {"<unique field>": value}')
                ((key, key_value),) = value.items()
                return ReferenceByKey(str(key), key_value)
            return parse_id(value)

        return coerce

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return id_text


@register(FieldType.CHILDREN)
class ChildrenKind(StoredAsIs):
    """Line items: stored in the child entity's table; coerced by the child's validator."""

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("children")

    def column_default(self, value: Any) -> str | None:
        return None

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        raise TypeError("children fields have no column")

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "object"}}

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        def coerce(value: Any) -> list[Any]:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise InvalidValue("type", "must be a list of objects")
            return value

        return coerce
