"""What a posting works out from the rows it locks (docs/ledgers.md, "Values from the
balance row"): the ledger fields a ``post``'s ``compute`` fills from its balance row as
locked, before the move (a moving average: an issue valued at the bin's valuation rate),
and the computed fields of a balance, which follow every move of its row (projected
quantity, valuation rate), on submit and on cancel alike.

Both are compiled once (the ``compute`` of a ``post`` with its action handler, a balance's
computed fields with its store) and evaluated only once the row is locked, so the values
come from the row's committed state and no concurrent posting can slip between the read
and the write.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import SecurityError

from engine.computed import ComputedFields
from engine.errors import FieldError, ValidationFailed
from engine.expressions import Expression, Scope, compile_expression
from engine.fieldtypes import InvalidValue, kind_of
from metadata import expression_names

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from engine.postings.book import PostingStore


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    evaluate: Expression


class Compute:
    """The ``compute`` of a ``post``'s balance, compiled: ledger field → expression over the
    balance row (before the move), ``entry`` and ``posted``."""

    __slots__ = ("_converters", "fields", "reads_posted")

    def __init__(self, compute: Mapping[str, str]) -> None:
        self.fields = tuple(_Field(name, compile_expression(src)) for name, src in compute.items())
        self._converters: dict[int, tuple[Any, Callable[[Any], Any]]] = {}
        self.reads_posted = any("posted" in expression_names(src) for src in compute.values())
        """Whether it reads the voucher's other rows: then it settles after them."""

    def evaluate(
        self,
        ledger: PostingStore,
        row: Mapping[str, Any],
        entry: Mapping[str, Any],
        posted: Mapping[str, Decimal],
        *,
        at: str,
        rule: str,
    ) -> dict[str, Any]:
        """The ledger fields, each converted (rounded) to its field's type."""
        scope = Scope(row)
        for name, value in (("entry", dict(entry)), ("posted", dict(posted))):
            scope.names[name] = value
            scope.context.vars[name] = value
        values: dict[str, Any] = {}
        for computed in self.fields:
            convert = self._converter(ledger.entity.fields[computed.name])
            try:
                result = computed.evaluate(scope)
                values[computed.name] = None if result is None else convert(result)
                scope.names["entry"][computed.name] = values[computed.name]
            except (InvalidValue, SecurityError, ArithmeticError, TypeError, ValueError) as exc:
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                detail = f"rule '{rule}': {ledger.entity.qualified_name}.{computed.name}: {message}"
                raise ValidationFailed([FieldError(at, "computed", detail, rule=rule)]) from None
        return values

    def _converter(self, field_def: Any) -> Callable[[Any], Any]:
        """The field's converter (rounding to its scale), made once per definition."""
        cached = self._converters.get(id(field_def))
        if cached is None or cached[0] is not field_def:
            convert = kind_of(field_def).computed_converter(field_def)
            cached = self._converters[id(field_def)] = (field_def, convert)
        return cached[1]


_BALANCE_FIELDS: weakref.WeakKeyDictionary[Any, ComputedFields | None] = weakref.WeakKeyDictionary()


def balance_computed(
    store: PostingStore, old: Mapping[str, Any], new: Mapping[str, Any]
) -> dict[str, Any]:
    """The balance's computed fields over its row ``new`` as moved (``old``: as it was),
    those whose value changes; compiled on the store's first move."""
    if store not in _BALANCE_FIELDS:
        computed = ComputedFields(store.entity)
        _BALANCE_FIELDS[store] = computed if computed else None
    fields = _BALANCE_FIELDS[store]
    if fields is None:
        return {}
    values = fields.compute(Scope(new, old))
    return {name: value for name, value in values.items() if value != new.get(name)}


def moved_from(new: Mapping[str, Any], deltas: Mapping[str, Decimal]) -> dict[str, Any]:
    """The row before a move of ``deltas`` that left it ``new``."""
    old = dict(new)
    for name, delta in deltas.items():
        if old.get(name) is not None:
            old[name] = Decimal(old[name]) - delta
    return old
