"""What the definition language knows of each field type: which keys make sense for it,
and its traits (text, searched by ``q``, groupable, measurable, scalar, default length).

Kept as data, one line per type, so a new field type is one entry in ``TYPE_KEYS`` and one in
``TYPE_TRAITS`` here plus its engine module (``engine/fieldtypes/``); ``test_field_types``
checks that every type has all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from metadata._errors import did_you_mean
from metadata._model import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

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
        "allow_on_submit",
        "renamed_from",
        "lookup",
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
    FieldType.DECIMAL: _COMMON | {"min", "max", "precision", "scale", "currency"},
    FieldType.BOOLEAN: _COMMON,
    FieldType.DATE: _COMMON,
    FieldType.DATETIME: _COMMON,
    FieldType.ENUM: _COMMON | {"values"},
    FieldType.REFERENCE: _COMMON | {"to", "on_delete"},
    FieldType.CHILDREN: frozenset({"type", "label", "help", "entity", "read_only"}),
    FieldType.JSON: _COMMON - {"unique", "index", "lookup"},
    FieldType.AUTONUMBER: frozenset(
        {
            "type",
            "label",
            "help",
            "format",
            "assign",
            "date_field",
            "gapless",
            "index",
            "renamed_from",
        }
    ),
    FieldType.USER: _COMMON - {"lookup"},
    FieldType.FILE: frozenset(
        {
            "type",
            "label",
            "help",
            "read_only",
            "allow_on_submit",
            "renamed_from",
            "accept",
            "max_size",
        }
    ),
}


def _enum_default(value: Any, values: Iterable[str]) -> str | None:
    if value in values:
        return None
    return f"default '{value}' is not one of the values{did_you_mean(str(value), values)}"


def _boolean_default(value: Any, values: Iterable[str]) -> str | None:
    return None if isinstance(value, bool) else "default of a boolean field must be true or false"


def _integer_default(value: Any, values: Iterable[str]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    return "default of an integer field must be a whole number"


def _decimal_default(value: Any, values: Iterable[str]) -> str | None:
    try:
        Decimal(str(value))
    except InvalidOperation:
        return "default of a decimal field must be a number"
    return None


@dataclass(frozen=True, slots=True)
class TypeTraits:
    textual: bool = False
    """Its values are text: the text operators (``__contains``...) take it."""
    searched: bool = False
    """``q`` searches it (the title field is searched whatever its type)."""
    groupable: bool = True
    """An aggregate or a dashboard may group by it."""
    measure: str | None = None
    """``"number"``: every measure function applies (sum, avg, min, max); ``"date"``: min and
    max; None: none."""
    scalar: bool = True
    """One stored value: lists and role ``where`` filters compare it, a view or a table of
    lines shows it in a cell (not a JSON document, not line items)."""
    listed: bool = True
    """Among the columns a list shows when no view chooses them (long text is not)."""
    literal_default: bool = True
    """A constant may be its ``default`` (a reference's default is a template; children
    and autonumbers have none: ``default`` is not among their keys)."""
    default_max_length: int | None = None
    """The length a value may have when the field sets no ``max_length``."""
    default_problem: Callable[[Any, Iterable[str]], str | None] | None = None
    """Why a constant cannot be a default of this type (given the enum's values), or None."""


TYPE_TRAITS: dict[FieldType, TypeTraits] = {
    FieldType.STRING: TypeTraits(textual=True, searched=True),
    FieldType.TEXT: TypeTraits(textual=True, searched=True, groupable=False, listed=False),
    FieldType.EMAIL: TypeTraits(textual=True, searched=True, default_max_length=254),
    FieldType.URL: TypeTraits(textual=True, default_max_length=2048),
    FieldType.PHONE: TypeTraits(textual=True, default_max_length=40),
    FieldType.INTEGER: TypeTraits(measure="number", default_problem=_integer_default),
    FieldType.DECIMAL: TypeTraits(measure="number", default_problem=_decimal_default),
    FieldType.BOOLEAN: TypeTraits(default_problem=_boolean_default),
    FieldType.DATE: TypeTraits(measure="date"),
    FieldType.DATETIME: TypeTraits(measure="date"),
    FieldType.ENUM: TypeTraits(textual=True, default_problem=_enum_default),
    FieldType.REFERENCE: TypeTraits(literal_default=False),
    FieldType.CHILDREN: TypeTraits(
        groupable=False, scalar=False, listed=False, literal_default=False
    ),
    FieldType.JSON: TypeTraits(groupable=False, scalar=False, listed=False),
    FieldType.AUTONUMBER: TypeTraits(
        textual=True, searched=True, default_max_length=64, literal_default=False
    ),
    FieldType.USER: TypeTraits(literal_default=False),
    FieldType.FILE: TypeTraits(groupable=False, scalar=False, listed=False, literal_default=False),
}


def types_where(**traits: object) -> frozenset[FieldType]:
    """The field types whose traits have these values: ``types_where(textual=True)``."""
    return frozenset(
        field_type
        for field_type, known in TYPE_TRAITS.items()
        if all(getattr(known, name) == value for name, value in traits.items())
    )


TEXTUAL_TYPES = types_where(textual=True)
SEARCHED_TYPES = types_where(searched=True)
DEFAULT_MAX_LENGTH: dict[FieldType, int] = {
    field_type: traits.default_max_length
    for field_type, traits in TYPE_TRAITS.items()
    if traits.default_max_length is not None
}
