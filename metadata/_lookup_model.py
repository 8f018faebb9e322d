"""The definition of a field's lookup (``LookupDef``), apart from its checks
(``metadata._lookups``) so that ``FieldDef`` can name it without importing them."""

from __future__ import annotations

from dataclasses import dataclass

LOOKUP_PARENT = "parent"
LINE_PARENT_KEY = "_parent"
"""A ``where`` key of a lookup that reads a line item entity: the line's parent record."""
"""The name a line entity's lookup expressions read their parent record by
(``parent.account.price_list``)."""

DEFAULT_LOOKUP_CODE = "no_match"
"""The error code of a required lookup that finds no record, unless it declares its own."""


@dataclass(frozen=True, slots=True)
class LookupDef:
    """``lookup:`` on a field: when a write leaves the field empty, its value is read from
    the one record of ``entity`` that ``where`` (and ``on_or_before``) select."""

    entity: str
    """Qualified name of the entity read."""
    field: str
    """The field of ``entity`` whose value is taken."""
    where: tuple[tuple[str, str], ...] = ()
    """Pairs (field of ``entity``, expression over the record written) that must be equal."""
    latest_by: str | None = None
    """A date or datetime field of ``entity``: the record with the latest value on or before
    ``on_or_before`` is taken (``latest: {by: …, on_or_before: …}``)."""
    on_or_before: str | None = None
    """Expression over the record written: the date ``latest_by`` may not pass."""
    when: str | None = None
    """Expression: the lookup runs only when it holds (otherwise the field's default)."""
    code: str = DEFAULT_LOOKUP_CODE
    """The error code of a required field for which no record matches."""
    message: str | None = None
    """The error message then (default: says what was looked for)."""

    @property
    def selects_by_parent(self) -> bool:
        """Whether it reads the lines of one record (``where: {_parent: …}``)."""
        return any(key == LINE_PARENT_KEY for key, _ in self.where)

    def sources(self) -> tuple[str, ...]:
        """Every expression of the lookup."""
        found = [expression for _, expression in self.where]
        found += [s for s in (self.on_or_before, self.when) if s]
        return tuple(found)
