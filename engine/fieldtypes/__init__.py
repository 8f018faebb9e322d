"""Field types, one module per family, each registering itself with the registry."""

from __future__ import annotations

from engine.fieldtypes import choice, numeric, structured, temporal, text
from engine.fieldtypes._base import FieldKind, InvalidValue, kind_of, registered_types
from engine.fieldtypes.structured import ID_SCHEMA, ReferenceByKey, id_text, parse_id

__all__ = [
    "ID_SCHEMA",
    "FieldKind",
    "InvalidValue",
    "ReferenceByKey",
    "choice",
    "id_text",
    "kind_of",
    "numeric",
    "parse_id",
    "registered_types",
    "structured",
    "temporal",
    "text",
]
