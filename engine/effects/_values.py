"""An action's values compiled once (literals and ``{{ }}`` templates), resolved per write."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engine.expressions import ValueTemplate

if TYPE_CHECKING:
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
