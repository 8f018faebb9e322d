"""The contract every field type implements, and the registry that holds them.

A field type knows its column type, its JSON Schema, how to coerce input into Python values
and how to move values to and from each database driver. Each hook is asked once per field
when an entity is compiled; the returned callables are what runs per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef, FieldType

Converter = "Callable[[Any], Any]"


class InvalidValue(Exception):
    """Raised by a coercer; the record validator turns it into a ``FieldError``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class FieldKind(Protocol):
    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        """The SQLAlchemy type of the field's column."""

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        """The JSON Schema of the field's value as clients send and receive it."""

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        """Turns client input (JSON value or CSV text) into the Python value; raises
        ``InvalidValue``. Constraints (length, range, pattern) are checked here too."""

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        """Python value → driver parameter, or None when the driver takes it as is."""

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        """Driver value → Python value, or None when it arrives right already."""


class StoredAsIs:
    """For field types whose Python value is what both drivers take and return."""

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return None

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return None


_REGISTRY: dict[str, FieldKind] = {}


def register(*types: FieldType) -> Callable[[type[Any]], type[Any]]:
    def decorate(cls: type[Any]) -> type[Any]:
        for field_type in types:
            _REGISTRY[field_type.value] = cls()
        return cls

    return decorate


def kind_of(field: FieldDef) -> FieldKind:
    return _REGISTRY[field.type.value]


def registered_types() -> frozenset[str]:
    return frozenset(_REGISTRY)
