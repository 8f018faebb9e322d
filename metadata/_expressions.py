"""Syntax checks for expressions written in definitions (SPEC §3.2).

Expressions are compiled by the rules engine; here we only make sure that a definition
whose expression does not parse is rejected at load time, with its position.
"""

from __future__ import annotations

import functools

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment()


def expression_syntax_error(source: str) -> str | None:
    """The parser's message when ``source`` is not a valid expression, else None."""
    try:
        _environment().compile_expression(source)
    except TemplateSyntaxError as exc:
        return f"expression does not parse: {exc.message}"
    return None
