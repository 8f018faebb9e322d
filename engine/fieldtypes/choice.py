"""Choice field types: boolean and enum."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, String

from engine.fieldtypes._base import InvalidValue, StoredAsIs, WidgetKind, register
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


def parse_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InvalidValue("type", "must be true or false")


@register(FieldType.BOOLEAN)
class BooleanKind(StoredAsIs):
    def filter_parser(self) -> Callable[[Any], Any] | None:
        return parse_boolean

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return {"type": "boolean"}

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("checkbox")

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return Boolean()

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {"type": "boolean"}

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        return parse_boolean

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return bool if dialect == "sqlite" else None


@register(FieldType.ENUM)
class EnumKind(StoredAsIs):
    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        # any text: a value no record has selects none
        values = ", ".join(field.values) if field is not None else ""
        return {"type": "string", "description": f"One of: {values}."}

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("select")

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return String(max(len(v) for v in field.values))

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {"type": "string", "enum": list(field.values)}

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        allowed = frozenset(field.values)
        listing = ", ".join(field.values)

        def coerce(value: Any) -> str:
            if not isinstance(value, str) or value not in allowed:
                raise InvalidValue("enum", f"must be one of: {listing}")
            return value

        return coerce
