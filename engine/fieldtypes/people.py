"""The ``user`` field type: a user of the instance (``tessera_user``), stored as the user's
id. Clients read the id (as text, like ``created_by`` and references) and write the id or
the user's name; the write resolves a name to its id and refuses a user that does not
exist or is inactive (``engine.writes.people``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger

from engine.fieldtypes._base import InvalidValue, StoredAsIs, WidgetKind, register, unstorable
from engine.fieldtypes.numeric import INT64_MAX
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.types import TypeEngine

    from metadata import FieldDef

USERNAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,149}$"
"""What a user name may be (``engine.identity.USERNAME``)."""


@dataclass(frozen=True, slots=True)
class UserByName:
    """A user field written as the user's name; resolved to the id before writing."""

    username: str


def parse_user(value: Any) -> str | UserByName:
    """A user as clients write it: an id (a whole number, or its digits as text) or a user
    name (any other text; ``{"username": "42"}`` for a name of digits only). The id comes
    back as text, the way the field is read and ``user`` compares."""
    if isinstance(value, dict):
        if set(value) != {"username"} or not isinstance(value["username"], str):
            raise InvalidValue("user", 'must be a user id, a user name or {"username": name}')
        value = UserByName(value["username"])
    if hasattr(value, "username") and hasattr(value, "id") and not isinstance(value, UserByName):
        value = value.id  # the acting user (``default: "{{ user }}"``)
    if isinstance(value, bool):
        raise InvalidValue("type", "must be a user id or a user name")
    if isinstance(value, int):
        if not 0 < value <= INT64_MAX:
            raise InvalidValue("user", "must be a user id or a user name")
        return str(value)
    text = value.username if isinstance(value, UserByName) else value
    if not isinstance(text, str):
        raise InvalidValue("type", "must be a user id or a user name")
    problem = unstorable(text)
    if problem is not None:
        raise InvalidValue("format", problem)
    if isinstance(value, str) and text.isascii() and text.isdigit():
        number = int(text)
        if not 0 < number <= INT64_MAX:
            raise InvalidValue("user", "must be a user id or a user name")
        return str(number)
    return UserByName(text)


def _to_int(value: Any) -> Any:
    return int(value) if isinstance(value, str) else value


def _to_text(value: Any) -> Any:
    return None if value is None else str(value)


@register(FieldType.USER)
class UserKind(StoredAsIs):
    def filter_parser(self) -> Callable[[Any], Any] | None:
        return parse_user

    def filter_schema(self, field: FieldDef | None) -> dict[str, Any]:
        return {"type": "string", "description": "A user id or a user name."}

    def widget(self, field: FieldDef) -> WidgetKind:
        return WidgetKind("user")

    def column_default(self, value: Any) -> str | None:
        return None  # a default user is a template (``{{ user }}``), filled per record

    def column_type(self, field: FieldDef) -> TypeEngine[Any]:
        return BigInteger()

    def json_schema(self, field: FieldDef) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "string", "pattern": USERNAME_PATTERN},
                {"type": "integer", "minimum": 1},
                {
                    "type": "object",
                    "properties": {"username": {"type": "string"}},
                    "required": ["username"],
                    "additionalProperties": False,
                },
            ],
            "description": "A user of the instance: read as the user's id (text); written "
            "as the id or the user's name (an active user).",
        }

    def coercer(self, field: FieldDef) -> Callable[[Any], Any]:
        return parse_user

    def to_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return _to_int

    def from_db(self, field: FieldDef, dialect: str) -> Callable[[Any], Any] | None:
        return _to_text
