"""An action's values compiled once (literals and ``{{ }}`` templates), resolved per write."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from engine.expressions import ValueTemplate
from engine.references import RecordRef

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engine.expressions import Scope

CompiledValues = tuple[tuple[str, Any], ...]


def compile_values(values: Mapping[str, Any]) -> CompiledValues:
    """Each value compiled once; nested mappings (a webhook's payload) keep their shape."""
    return tuple(
        (name, compile_values(value) if isinstance(value, Mapping) else ValueTemplate(value))
        for name, value in values.items()
    )


def resolve_values(values: CompiledValues, scope: Scope) -> dict[str, Any]:
    return {
        name: value.resolve(scope)
        if isinstance(value, ValueTemplate)
        else resolve_values(value, scope)
        for name, value in values
    }


@contextmanager
def bound(scope: Scope, name: str, value: Any) -> Iterator[None]:
    """``scope`` with ``name`` (a line: ``line``) bound to ``value`` for the expressions and
    templates resolved inside; unbound after."""
    scope.names[name] = value
    scope.context.vars[name] = value
    try:
        yield
    finally:
        scope.names.pop(name, None)
        scope.context.vars.pop(name, None)


def lines_of(scope: Scope, field_name: str) -> list[Mapping[str, Any]]:
    """The lines of the record's children field ``field_name`` (none when it has none), or
    with ``<reference>.<children field>`` those of the record the reference points at."""
    reference, dot, children = field_name.partition(".")
    if dot:
        target = scope.names.get(reference)
        lines = getattr(target, children, None) if isinstance(target, RecordRef) else None
    else:
        lines = scope.names.get(field_name)
    if not isinstance(lines, list | tuple):
        return []
    return [line for line in lines if isinstance(line, Mapping)]
