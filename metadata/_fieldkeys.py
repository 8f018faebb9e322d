"""Which field keys make sense for which field type.

Kept as data, one line per type, so a new field type is one entry here plus its engine module.
"""

from __future__ import annotations

from metadata._model import FieldType

_COMMON = frozenset(
    {
        "type",
        "label",
        "help",
        "required",
        "required_if",
        "unique",
        "index",
        "default",
        "computed",
        "read_only",
        "renamed_from",
    }
)
_TEXTUAL = frozenset({"min_length", "max_length", "pattern"})

TYPE_KEYS: dict[FieldType, frozenset[str]] = {
    FieldType.STRING: _COMMON | _TEXTUAL,
    FieldType.TEXT: _COMMON | _TEXTUAL,
    FieldType.EMAIL: _COMMON | _TEXTUAL,
    FieldType.URL: _COMMON | _TEXTUAL,
    FieldType.PHONE: _COMMON | _TEXTUAL,
    FieldType.INTEGER: _COMMON | {"min", "max"},
    FieldType.DECIMAL: _COMMON | {"min", "max", "precision", "scale"},
    FieldType.BOOLEAN: _COMMON,
    FieldType.DATE: _COMMON,
    FieldType.DATETIME: _COMMON,
    FieldType.ENUM: _COMMON | {"values"},
    FieldType.REFERENCE: _COMMON | {"to", "on_delete"},
    FieldType.CHILDREN: frozenset({"type", "label", "help", "entity", "read_only"}),
    FieldType.JSON: _COMMON - {"unique", "index"},
    FieldType.AUTONUMBER: frozenset({"type", "label", "help", "format", "index", "renamed_from"}),
}

DEFAULT_MAX_LENGTH: dict[FieldType, int] = {
    FieldType.EMAIL: 254,
    FieldType.URL: 2048,
    FieldType.PHONE: 40,
    FieldType.AUTONUMBER: 64,
}
