"""The vocabulary of filter operators: one ``OperatorSpec`` per operator, in one registry.

A spec says what the definition language and the API documents need to know: the name
(``field__<name>=`` in a list or an aggregate, ``field is <name>(value)`` in a role's
``where`` when the operator has no comparison symbol there), how many values it takes,
which field types take it, and a line of text for the docs and OpenAPI. What it does in SQL
is the engine's part: each spec has exactly one class in ``engine/operators/`` registered
against it by name (``engine.operators.register``), which parses its values, builds its SQL
and judges a record in Python. Nothing else lists operators: the list and aggregate
parsers, dashboard checks, role ``where`` parsing, OpenAPI and ``docs/api.md`` read this.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from metadata._fieldkeys import TEXTUAL_TYPES

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata._model import FieldType


class Arity(enum.StrEnum):
    ONE = "one"
    """One value: ``field__gt=5``."""
    MANY = "many"
    """A comma-separated list (``field__in=a,b``); a list in a ``where`` (``in ['a']``)."""
    FLAG = "flag"
    """``true`` or ``false``, which shapes the SQL rather than being bound (``__isnull``)."""


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    name: str
    arity: Arity
    summary: str
    """What it selects, for docs/api.md and OpenAPI (``"greater than"``)."""
    types: frozenset[FieldType] | None = None
    """The field types it applies to; None: every filterable field, system fields too."""
    where: str | None = None
    """Its Jinja comparison in a ``where`` (``"lteq"`` is ``<=``); None: it is written as a
    test there, ``field is <name>(value)``, with a constant value."""
    mirror: str | None = None
    """The operator meaning the same with its sides swapped (``lt`` for ``gt``), which lets
    a ``where`` put the constant first; None: the sides cannot be swapped."""
    value_type: type | None = None
    """What a constant must be in a ``where``'s ``is <name>(value)`` (``str`` for text
    operators); None: any constant."""

    def applies_to(self, field_type: FieldType | None) -> bool:
        """Whether a field of ``field_type`` (None: a system field) takes it."""
        return self.types is None or (field_type is not None and field_type in self.types)

    def fields_text(self) -> str:
        """The fields it applies to, for messages: "any", "text", or their types."""
        if self.types is None:
            return "any"
        if self.types == TEXTUAL_TYPES:
            return "text"
        return "/".join(sorted(self.types))

    def example(self) -> str:
        """How a list writes it: ``field__in=a,b``."""
        value = {Arity.ONE: "value", Arity.MANY: "a,b", Arity.FLAG: "true|false"}[self.arity]
        return f"field__{self.name}={value}"


_REGISTRY: dict[str, OperatorSpec] = {}

FILTER_OPERATORS: Mapping[str, OperatorSpec] = MappingProxyType(_REGISTRY)
"""Every operator by name, live: an operator registered later appears here too."""


def register_spec(spec: OperatorSpec) -> OperatorSpec:
    """Adds ``spec`` to the vocabulary; registering the same spec again is harmless."""
    if not spec.name.isidentifier() or "__" in spec.name or spec.name.startswith("_"):
        raise ValueError(f"operator name {spec.name!r} must be an identifier without '__'")
    known = _REGISTRY.get(spec.name)
    if known is not None and known != spec:
        raise ValueError(f"operator {spec.name!r} is registered already")
    _REGISTRY[spec.name] = spec
    return spec


def where_symbols() -> dict[str, OperatorSpec]:
    """Jinja comparison (``"eq"``, ``"lteq"``, ``"notin"``...) → the operator it is."""
    return {spec.where: spec for spec in _REGISTRY.values() if spec.where is not None}


for _spec in (
    OperatorSpec("eq", Arity.ONE, "equals (`field=value` is the same)", where="eq", mirror="eq"),
    OperatorSpec(
        "ne", Arity.ONE, "does not equal; also matches empty values", where="ne", mirror="ne"
    ),
    OperatorSpec("gt", Arity.ONE, "greater than", where="gt", mirror="lt"),
    OperatorSpec("gte", Arity.ONE, "greater than or equal", where="gteq", mirror="lte"),
    OperatorSpec("lt", Arity.ONE, "less than", where="lt", mirror="gt"),
    OperatorSpec("lte", Arity.ONE, "less than or equal", where="lteq", mirror="gte"),
    OperatorSpec("in", Arity.MANY, "one of a comma-separated list", where="in"),
    OperatorSpec(
        "nin",
        Arity.MANY,
        "none of a comma-separated list; also matches empty values",
        where="notin",
    ),
    OperatorSpec(
        "contains",
        Arity.ONE,
        "contains the text (case-sensitive)",
        TEXTUAL_TYPES,
        value_type=str,
    ),
    OperatorSpec(
        "icontains", Arity.ONE, "contains the text, ignoring case", TEXTUAL_TYPES, value_type=str
    ),
    OperatorSpec("startswith", Arity.ONE, "starts with the text", TEXTUAL_TYPES, value_type=str),
    OperatorSpec("isnull", Arity.FLAG, "`true`: empty; `false`: not empty"),
):
    register_spec(_spec)

BUILT_IN = tuple(_REGISTRY)
"""The operators Tessera itself defines (others may be registered later)."""


def markdown_table(names: tuple[str, ...] = BUILT_IN) -> str:
    """The table of operators in docs/api.md (a test keeps the two equal)."""
    rows = ["| operator | selects records whose field | fields |", "|---|---|---|"]
    for name in names:
        spec = _REGISTRY[name]
        rows.append(f"| `{spec.example()}` | {spec.summary} | {spec.fields_text()} |")
    return "\n".join(rows) + "\n"
