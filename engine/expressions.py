"""Expressions from definitions (SPEC §3.2), compiled once into sandboxed callables.

Jinja2's immutable sandbox refuses access to Python internals (``__class__``, ``mro``,
``func_globals``, ...) and any mutation of values in scope. On top of it this sandbox bounds
the work one evaluation can ask for: ``range`` is capped by Jinja, and the operators that
could build huge values (``**`` with a large exponent, ``*`` repeating a string or list)
are checked before they run.
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

MAX_EXPONENT = 1_000
MAX_POWER_BITS = 100_000
MAX_SEQUENCE = 100_000
"""Longest string or list an expression may build by repetition."""


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _number(right):
            if abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
            if isinstance(left, int) and abs(left).bit_length() * abs(right) > MAX_POWER_BITS:
                raise SecurityError("the power would be a number too large to compute")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                repeats = isinstance(sequence, str | list | tuple) and isinstance(count, int)
                if repeats and len(sequence) * count > MAX_SEQUENCE:
                    raise SecurityError(
                        f"repeating a value would build more than {MAX_SEQUENCE} items"
                    )
        return super().call_binop(context, operator, left, right)


def _number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


@functools.cache
def environment() -> BoundedSandbox:
    """One environment per process: it holds no state that a definition could change."""
    return BoundedSandbox()


def compile_expression(source: str) -> Callable[[Mapping[str, Any]], Any]:
    """``source`` compiled to Python code once; call the result with the names in scope."""
    expression = environment().compile_expression(source, undefined_to_none=False)

    def evaluate(scope: Mapping[str, Any]) -> Any:
        return expression(scope)

    return evaluate


def expression_scope(
    record: Mapping[str, Any], old: Mapping[str, Any] | None, user: str | None
) -> dict[str, Any]:
    """The names an expression sees (SPEC §3.2): the record's fields, ``old``,
    ``changed('field')``, ``user``, ``today()`` and ``now()``."""

    def changed(name: str) -> bool:
        if old is None:
            return record.get(name) is not None
        return bool(record.get(name) != old.get(name))

    return {
        **record,
        "old": old,
        "user": user,
        "changed": changed,
        "today": lambda: dt.datetime.now(dt.UTC).date(),
        "now": lambda: dt.datetime.now(dt.UTC),
    }
