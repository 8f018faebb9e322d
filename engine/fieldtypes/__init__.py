"""Field types, one module per family, each registering itself with the registry."""

from __future__ import annotations

from engine.fieldtypes import choice, files, numeric, people, structured, temporal, text
from engine.fieldtypes._base import (
    FieldKind,
    InvalidValue,
    WidgetKind,
    kind_of,
    kind_of_type,
    registered_types,
)
from engine.fieldtypes.structured import ID_SCHEMA, ReferenceByKey, id_text, parse_id

__all__ = [
    "ID_SCHEMA",
    "FieldKind",
    "InvalidValue",
    "ReferenceByKey",
    "WidgetKind",
    "choice",
    "files",
    "id_text",
    "kind_of",
    "kind_of_type",
    "numeric",
    "parse_id",
    "people",
    "registered_types",
    "structured",
    "temporal",
    "text",
]
