"""The ``file`` field type: a file uploaded to the record (docs/files.md).

The column holds what clients read of the file: ``{id, name, size, content_type, url}``
(JSON; JSONB on PostgreSQL), copied from its ``tessera_file`` row when the file is uploaded
(a stored file never changes: a new upload is a new file). Clients never write the value
in a record's body (the field is read-only there: ``FieldDef.is_writable``); the upload
endpoint stores the bytes and sets the value as a system value of an ordinary update, so
grants, submitted documents, rules and the audit trail apply as to any other change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON
from sqlalchemy.dialects.postgresql import JSONB

from engine.fieldtypes._base import InvalidValue, StoredAsIs, WidgetKind, register
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef


@dataclass(frozen=True, slots=True)
class FileValue:
    """A stored file as a file field holds it; only the engine makes one (an upload)."""

    id: int
    name: str
    size: int
    content_type: str
    url: str

    def as_value(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "size": self.size,
            "content_type": self.content_type,
            "url": self.url,
        }


FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The file's id."},
        "name": {"type": "string", "description": "Its name, as uploaded (made safe)."},
        "size": {"type": "integer", "minimum": 0, "description": "Bytes."},
        "content_type": {"type": "string", "description": "Read from its bytes."},
        "url": {"type": "string", "description": "Where to download it."},
    },
    "required": ["id", "name", "size", "content_type", "url"],
    "description": "A file uploaded to the record (PUT …/{id}/_files/{field}); read-only "
    "in the record's body.",
}


def _to_sqlite(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


def _from_sqlite(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _file_value(value: Any) -> Any:
    if isinstance(value, FileValue):
        return value.as_value()
    raise InvalidValue(
        "file", "a file is uploaded with PUT …/{id}/_files/{field}, not written in the record"
    )


@register(FieldType.FILE)
class FileKind(StoredAsIs):
    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("file", "file")

    def column_default(self, value: Any) -> str | None:
        return None

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return JSON().with_variant(JSONB(), "postgresql")

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return dict(FILE_SCHEMA)

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        return _file_value

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return {"type": "string", "description": "Not filterable (a file, like a json value)."}

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return _to_sqlite if dialect == "sqlite" else None

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return _from_sqlite if dialect == "sqlite" else None
