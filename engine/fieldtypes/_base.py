"""The contract every field type implements, and the registry that holds them.

A field type knows its column type, its JSON Schema, how to coerce input into Python values
and how to move values to and from each database driver, and what it means elsewhere: how a
list filter's text is parsed and described in OpenAPI, how a computed result becomes a
value, which widget edits it on a screen. Each hook is asked once per field when an entity
is compiled; the returned callables are what runs per request. What the definition language
knows of a type (its keys, whether ``q`` searches it, groups, measures, default length) is
in ``metadata/_fieldkeys.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def unstorable(text: str) -> str | None:
    """Why ``text`` cannot be stored or compared in either database, or None: PostgreSQL
    refuses U+0000 in text and jsonb, and an unpaired surrogate (``"\\ud800"`` in JSON) is
    not a character at all (it has no UTF-8 form). Both are refused the same way on SQLite."""
    if "\x00" in text:
        return "must not contain NUL characters (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "must not contain unpaired surrogates (\\ud800-\\udfff)"
    return None


def check_storable(text: str) -> str:
    """``text``, or ``InvalidValue`` (code ``format``) when ``unstorable``."""
    problem = unstorable(text)
    if problem is not None:
        raise InvalidValue("format", problem)
    return text


@dataclass(frozen=True, slots=True)
class WidgetKind:
    """How a screen edits a field: ``kind`` is ``input``, ``textarea``, ``checkbox``,
    ``select``, ``reference`` or ``children``; ``input_type`` the HTML input's type."""

    kind: str = "input"
    input_type: str = "text"
    step: str | None = None


class FieldKind(Protocol):
    blank_is_empty: bool
    """``""`` counts as no value (a required field refuses it): text types."""

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

    def filter_parser(self) -> Callable[[Any], Any] | None:
        """A list filter's text → the value compared (raises ``InvalidValue``); None: the
        text itself."""

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        """The OpenAPI schema of a list filter's text (``field`` is None for a system
        field of this type)."""

    def computed_converter(self, field: FieldDef) -> Callable[[Any], Any]:
        """A computed expression's result → the field's value (rounding, text of numbers)."""

    def widget(self, field: FieldDef) -> WidgetKind:
        """How a screen edits the field."""

    def column_default(self, value: Any) -> str | None:
        """The column's DEFAULT for the constant field default ``value``, or None when the
        column cannot hold it as a constant (the engine fills it per record)."""

    def server_default(self, field: FieldDef, value: Any) -> Any:
        """The column's DEFAULT clause for the constant default ``value`` of ``field``: the
        text of ``column_default``, or a clause each database writes its own way."""

    def schema_default(self, value: Any) -> Any:
        """``value`` as the JSON Schema ``default``, or None to leave it out."""


class KindDefaults:
    """What most field types share; a kind overrides what differs."""

    blank_is_empty = False

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        raise NotImplementedError

    def filter_parser(self) -> Callable[[Any], Any] | None:
        return None

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return {"type": "string"}

    def computed_converter(self, field: FieldDef) -> Callable[[Any], Any]:
        return self.coercer(field)

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind()

    def column_default(self, value: Any) -> str | None:
        if isinstance(value, bool):
            return "1" if value else "0"
        return str(value)

    def server_default(self, field: FieldDef, value: Any) -> Any:
        return self.column_default(value)

    def schema_default(self, value: Any) -> Any:
        return value


class StoredAsIs(KindDefaults):
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


def kind_of_type(field_type: FieldType) -> FieldKind:
    return _REGISTRY[field_type.value]


def registered_types() -> frozenset[str]:
    return frozenset(_REGISTRY)
