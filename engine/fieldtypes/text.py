"""Textual field types: string, text, email, url, phone."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import String, Text

from engine.fieldtypes._base import InvalidValue, StoredAsIs, WidgetKind, check_storable, register
from metadata import FieldType
from metadata._fieldkeys import DEFAULT_MAX_LENGTH

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE = re.compile(r"^\+?[0-9(][0-9 ().\-/]*[0-9)](\s*(x|ext\.?)\s*[0-9]+)?$", re.IGNORECASE)
_INPUT_TYPES = {
    FieldType.STRING: "text",
    FieldType.EMAIL: "email",
    FieldType.URL: "url",
    FieldType.PHONE: "tel",
}


def max_length(field: FieldDef) -> int | None:
    return field.max_length or DEFAULT_MAX_LENGTH.get(field.type)


def _format_check(field_type: FieldType) -> Callable[[str], str | None]:
    if field_type is FieldType.EMAIL:
        return lambda v: None if _EMAIL.match(v) else "not a valid e-mail address"
    if field_type is FieldType.URL:

        def check_url(value: str) -> str | None:
            parts = urlsplit(value)
            ok = parts.scheme in {"http", "https"} and bool(parts.netloc) and " " not in value
            return None if ok else "not a valid http(s) URL"

        return check_url
    if field_type is FieldType.PHONE:
        return lambda v: None if _PHONE.match(v) else "not a valid phone number"
    return lambda v: None


@register(FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.URL, FieldType.PHONE)
class TextKind(StoredAsIs):
    blank_is_empty = True

    def computed_converter(self, field: FieldDef) -> Callable[[Any], Any]:
        coerce = self.coercer(field)
        if field.type in {FieldType.STRING, FieldType.TEXT}:
            return lambda value: coerce(str(value))
        return coerce

    def widget(self, field: FieldDef) -> WidgetKind:
        if field.type is FieldType.TEXT:
            return WidgetKind("textarea")
        return WidgetKind("input", _INPUT_TYPES[field.type])

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        if field.type is FieldType.TEXT:
            return Text()
        return String(max_length(field))

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string"}
        if (length := max_length(field)) is not None:
            schema["maxLength"] = length
        if field.min_length is not None:
            schema["minLength"] = field.min_length
        if field.pattern is not None:
            schema["pattern"] = field.pattern
        formats = {FieldType.EMAIL: "email", FieldType.URL: "uri"}
        if field.type in formats:
            schema["format"] = formats[field.type]
        return schema

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        longest = max_length(field)
        shortest = field.min_length
        pattern = re.compile(field.pattern) if field.pattern else None
        check_format = _format_check(field.type)
        trim = field.type in {FieldType.EMAIL, FieldType.URL, FieldType.PHONE}

        def coerce(raw: Any) -> str:
            if not isinstance(raw, str):
                raise InvalidValue("type", "must be a string")
            value: str = raw
            if trim:
                value = value.strip()
            check_storable(value)
            if longest is not None and len(value) > longest:
                raise InvalidValue("max_length", f"must be at most {longest} characters")
            if shortest is not None and len(value) < shortest:
                raise InvalidValue("min_length", f"must be at least {shortest} characters")
            if pattern is not None and not pattern.search(value):
                raise InvalidValue("pattern", f"must match the pattern {pattern.pattern}")
            problem = check_format(value)
            if problem:
                raise InvalidValue("format", problem)
            return value

        return coerce
