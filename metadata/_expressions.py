"""Syntax checks for expressions written in definitions (SPEC §3.2).

Expressions are compiled by the rules engine; here we only make sure that a definition
whose expression does not parse is rejected at load time, with its position.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from metadata._errors import did_you_mean


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


COMPANY_KEYS: tuple[str, ...] = ("name", "currency")
"""The keys of ``company:`` in ``tessera.yaml``; each is the name ``company_<key>`` in
expressions (``company_currency``), empty (``none``) when the instance does not set it."""
INSTANCE_NAMES: frozenset[str] = frozenset(f"company_{key}" for key in COMPANY_KEYS)
"""Names whose values the instance sets, not the definitions."""
DATE_FUNCTIONS: frozenset[str] = frozenset(
    {
        "add_days",
        "add_hours",
        "add_months",
        "days_between",
        "business_hours_between",
        "add_business_hours",
    }
)
"""The date and working-time functions (``engine.dates``; docs/rules.md)."""
SCOPE_NAMES: frozenset[str] = (
    frozenset({"old", "user", "changed", "today", "now"}) | INSTANCE_NAMES | DATE_FUNCTIONS
)
"""Names every rule expression may use besides the record's fields (SPEC §3.2)."""


CALENDARS: ContextVar[frozenset[str] | None] = ContextVar("calendars", default=None)
"""The calendars of the project being loaded (``calendars/<name>.yaml``), while it is."""
_CALENDAR_ARGUMENT = {"business_hours_between": 2, "add_business_hours": 2}
"""The date functions that name a calendar, and the position of its argument."""


def calendar_problems(source: str, *, template: bool = False) -> list[str]:
    """A calendar named by a constant (``add_business_hours(t, 8, 'suport')``) that the
    project being loaded does not define; ``source`` must parse."""
    known = CALENDARS.get()
    if known is None:
        return []
    tree = _environment().parse(source if template else "{{ (" + source + ") }}")
    found = []
    for call in tree.find_all(nodes.Call):
        if not isinstance(call.node, nodes.Name) or call.node.name not in _CALENDAR_ARGUMENT:
            continue
        index = _CALENDAR_ARGUMENT[call.node.name]
        argument = call.args[index] if len(call.args) > index else None
        name = argument.value if isinstance(argument, nodes.Const) else None
        if isinstance(name, str) and name not in known:
            hint = did_you_mean(name, known)
            found.append(f"no calendar '{name}' (calendars/<name>.yaml){hint}")
    return found


def expression_names(source: str) -> set[str]:
    """The top-level names ``source`` reads (``account`` for ``account.name``), minus Jinja's
    own globals; ``source`` must parse."""
    environment = _environment()
    tree = environment.parse("{{ (" + source + ") }}")
    return set(meta.find_undeclared_variables(tree)) - set(environment.globals)


def expression_problems(source: str, scope: set[str]) -> list[str]:
    """What is wrong with an expression written in a definition: it does not parse, or it
    reads names that are not in ``scope`` (each with a suggestion)."""
    problem = expression_syntax_error(source)
    if problem:
        return [problem]
    return [
        f"unknown name '{name}' in expression{did_you_mean(name, scope)}"
        for name in sorted(expression_names(source) - scope)
    ] + calendar_problems(source)


def is_template(value: object) -> bool:
    """Action values are literals unless they contain ``{{ }}`` (SPEC §3.2)."""
    return isinstance(value, str) and "{{" in value


def template_syntax_error(source: str) -> str | None:
    try:
        _environment().parse(source)
    except TemplateSyntaxError as exc:
        return f"template does not parse: {exc.message}"
    return None


def template_problem(source: str, scope: set[str]) -> str | None:
    """Why ``source`` is not a usable template over ``scope``, or None."""
    environment = _environment()
    try:
        tree = environment.parse(source)
    except TemplateSyntaxError as exc:
        return f"template does not parse: {exc.message}"
    unknown = sorted(set(meta.find_undeclared_variables(tree)) - set(environment.globals) - scope)
    if unknown:
        return f"unknown name '{unknown[0]}' in template"
    calendars = calendar_problems(source, template=True)
    return calendars[0] if calendars else None
