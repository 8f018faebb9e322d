"""Stored computed fields (SPEC §3.1 ``computed:``): recomputed on every write.

A computed field is a real column, so it can be filtered, sorted and read by BI tools. Its
expression is compiled once; on each create and update it is evaluated over the record as
it will be stored (line items included, so ``lines | sum(attribute='amount')`` works) and
the result, rounded and checked like any value of the field's type, is written with the
rest of the record. Computed fields that read other computed fields run after them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import SecurityError

from engine.errors import FieldError, ValidationFailed
from engine.expressions import Expression, Scope, ValueTemplate, compile_expression
from engine.fieldtypes import InvalidValue, kind_of
from metadata import expression_names

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from metadata import EntityDef, FieldDef


@dataclass(frozen=True, slots=True)
class _Computed:
    name: str
    evaluate: Expression
    convert: Callable[[Any], Any]


class ComputedFields:
    def __init__(self, entity: EntityDef) -> None:
        fields = {f.name: f for f in entity.fields.values() if f.computed and f.is_stored}
        self._fields = tuple(
            _Computed(f.name, compile_expression(f.computed or ""), _converter(f))
            for f in _dependency_order(fields)
        )

    def __bool__(self) -> bool:
        return bool(self._fields)

    def compute(self, scope: Scope) -> dict[str, Any]:
        """The computed fields' values over ``scope`` (the record as it will be stored),
        each also set in the scope for the expressions after it."""
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        for computed in self._fields:
            try:
                value = _null_propagating(computed.evaluate, scope)
                value = None if value is None else computed.convert(value)
            except InvalidValue as exc:
                errors.append(FieldError(computed.name, exc.code, f"computed value {exc.message}"))
                continue
            except SecurityError as exc:
                errors.append(FieldError(computed.name, "computed", f"was stopped: {exc}"))
                continue
            except Exception as exc:  # noqa: BLE001 - reported at the field, the write rejected
                errors.append(FieldError(computed.name, "computed", f"cannot be computed: {exc}"))
                continue
            values[computed.name] = value
            scope.set(computed.name, value)
        if errors:
            raise ValidationFailed(errors)
        return values


class DefaultExpressions:
    """Defaults written as templates (``default: "{{ today() }}"``, ``"{{ account.currency
    }}"``): evaluated when a record is created without the field, over the record as sent,
    before the computed fields (which may read them); converted like a computed value."""

    def __init__(self, entity: EntityDef) -> None:
        self._fields = tuple(
            (f.name, f.required, ValueTemplate(f.default), _converter(f))
            for f in entity.fields.values()
            if f.default_is_expression and f.is_stored
        )

    def __bool__(self) -> bool:
        return bool(self._fields)

    def fill(
        self,
        values: Mapping[str, Any],
        scope: Scope,
        shown: Callable[[str, Any], Any] | None = None,
    ) -> dict[str, Any]:
        """The defaults of the fields missing from ``values``, each also set in the scope
        (as ``shown`` gives it, when given: a reference as the record it points at), so
        that later defaults read it."""
        filled: dict[str, Any] = {}
        errors: list[FieldError] = []
        for name, required, template, convert in self._fields:
            if name in values:
                continue
            try:
                value = template.resolve(scope)
                value = None if value is None or value == "" else convert(value)
            except InvalidValue as exc:
                errors.append(FieldError(name, exc.code, f"default {exc.message}"))
                continue
            except Exception as exc:  # noqa: BLE001 - reported at the field, the write rejected
                errors.append(FieldError(name, "default", f"default cannot be evaluated: {exc}"))
                continue
            if value is None and required:
                errors.append(FieldError(name, "required", "is required (its default is empty)"))
                continue
            filled[name] = value
            scope.set(name, value if shown is None else shown(name, value))
        if errors:
            raise ValidationFailed(errors)
        return filled


def _null_propagating(evaluate: Expression, scope: Scope) -> Any:
    """Arithmetic on an empty input gives an empty result, as in SQL, rather than an error
    that would make every input of a computed field required."""
    try:
        return evaluate(scope)
    except TypeError as exc:
        if "NoneType" in str(exc):
            return None
        raise


def _converter(field: FieldDef) -> Callable[[Any], Any]:
    return kind_of(field).computed_converter(field)


def _dependency_order(fields: Mapping[str, FieldDef]) -> list[FieldDef]:
    """Each computed field after the computed fields its expression reads; a cycle keeps the
    declaration order for the fields in it (the loader reports it)."""
    ordered: list[FieldDef] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in visiting or fields[name] in ordered:
            return
        visiting.add(name)
        for dependency in sorted(expression_names(fields[name].computed or "") & fields.keys()):
            visit(dependency)
        ordered.append(fields[name])

    for name in fields:
        visit(name)
    return ordered
