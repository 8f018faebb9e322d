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
import re
import types
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine import dates
from engine.references import ComparesAsId, RecordRef
from metadata import INSTANCE_NAMES

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from jinja2 import Template

MAX_EXPONENT = 1_000
MAX_POWER_BITS = 100_000
MAX_SEQUENCE = 100_000
"""Longest string or list an expression may build by repetition."""


_PLAIN_VALUES = frozenset({str, int, float, bool, Decimal, dt.date, dt.datetime, dt.time})
"""Types of the values a scope holds whose methods neither mutate nor reach code: calling
one of their (already vetted) methods needs no check at call time."""


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__()
        self._plain_attributes: dict[tuple[type, str], bool] = {}
        """Per (type, attribute name): whether the sandbox lets it through unwrapped. The
        sandbox judges by type and name only, and expressions name their attributes in
        their source, so this stays as small as the definitions."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Jinja's sandboxed attribute access, judged once per type and attribute name
        instead of on every access (several ``isinstance`` checks each time).

        ``line.quantity`` on a plain dict (a line, ``old``) is its item: Jinja finds that
        out by raising and catching ``AttributeError`` twice (here, then in the sandbox),
        so a name that no dict has as an attribute goes straight to the item, with
        Jinja's answer (the item, or undefined)."""
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        key = (type(obj), attribute)
        plain = self._plain_attributes.get(key)
        if plain is None:
            plain = self._plain_attributes[key] = self._is_plain_attribute(obj, attribute)
        if plain:
            try:
                return getattr(obj, attribute)
            except AttributeError:
                pass  # Jinja falls back to obj[attribute]
        return super().getattr(obj, attribute)

    def _is_plain_attribute(self, obj: Any, attribute: str) -> bool:
        """Safe, and not ``str.format`` (which the sandbox wraps)."""
        if isinstance(obj, str) and attribute in {"format", "format_map"}:
            return False
        return bool(self.is_safe_attribute(obj, attribute, None))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        """A method of a plain value (``code.startswith('DL-')``) or one of the scope's own
        functions is called directly; anything else goes through the sandbox's checks."""
        if (
            (type(__obj) is types.BuiltinMethodType and type(__obj.__self__) in _PLAIN_VALUES)
            or __obj is _today
            or __obj is _now
            or (type(__obj) is types.FunctionType and __obj in _DATE_FUNCTIONS)
        ):
            return __obj(*args, **kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and type(left) in _NUMBERS and type(right) in _NUMBERS:
            return left * right  # the usual case (quantity * price): nothing to bound
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


_DICT_ATTRIBUTES = frozenset(dir(dict))
"""What ``getattr`` finds on a plain dict (its methods, ``__class__``, …): any other name
is looked up as an item."""

_DATE_FUNCTIONS = frozenset(dates.FUNCTIONS.values())
"""``add_days``, ``add_business_hours``, …: called directly, like ``today``."""

_NUMBERS = frozenset({int, float, Decimal})
"""Exact types whose product is a number of the size of its operands (no repetition)."""


def _number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


@functools.cache
def environment() -> BoundedSandbox:
    """One environment per process: it holds no state that a definition could change.
    The date functions (``add_days``, …) are globals: every expression and template sees
    them."""
    env = BoundedSandbox()
    env.globals.update(dates.FUNCTIONS)
    return env


_RESULT = "_tessera_value"
"""Where an expression leaves its value; fields cannot start with '_', so never a field."""


class Scope:
    """The names the expressions of one write see, built once for all of them.

    Jinja's own ``compile_expression`` builds a fresh template context for every call,
    which costs more than evaluating a typical rule. Every expression of a write reads the
    same names, so they share one context: each sets only its private result variable.
    """

    __slots__ = ("context", "names")

    def __init__(
        self,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None = None,
        user: Actor | None = None,
    ) -> None:
        names = dict(_globals())
        names.update(record)
        _add_names(names, record, old, user)
        self.names = names
        """The names as built, which templates of the same write render with."""
        self.context = Context(environment(), names, None, {})

    def set(self, name: str, value: Any) -> None:
        """A value computed during the write (a computed field) for the next expressions."""
        self.context.vars[name] = value


class Expression:
    """One expression compiled to Python code once; evaluate it with ``expression(scope)``."""

    __slots__ = ("_render", "source")

    def __init__(self, source: str, node: nodes.Expr | None = None) -> None:
        self.source = source
        env = environment()
        expression = node if node is not None else _parse(source)
        body = [nodes.Assign(nodes.Name(_RESULT, "store"), expression, lineno=1)]
        self._render = env.from_string(nodes.Template(body, lineno=1)).root_render_func

    def __call__(self, scope: Scope) -> Any:
        context = scope.context
        for _ in self._render(context):
            pass
        return context.vars[_RESULT]


_SINGLE_EXPRESSION = re.compile(r"^\{\{(?P<expression>(?:(?!\}\}).)*)\}\}$", re.DOTALL)


class ValueTemplate:
    """A value written in a definition (an action's field value, a default): a literal,
    one ``{{ expression }}`` (keeps its type; a traversed reference gives its id), or a
    template rendered to text (converted by the target field like any input)."""

    __slots__ = ("_expression", "_literal", "_template")

    def __init__(self, value: Any) -> None:
        self._literal = value
        self._expression: Expression | None = None
        self._template: Template | None = None
        if isinstance(value, str) and "{{" in value:
            single = _SINGLE_EXPRESSION.match(value.strip())
            if single:
                self._expression = compile_expression(single["expression"])
            else:
                self._template = environment().from_string(value)

    def resolve(self, scope: Scope) -> Any:
        if self._expression is not None:
            value = self._expression(scope)
            return value.id if isinstance(value, RecordRef) else value
        if self._template is not None:
            return self._template.render(scope.names)
        return self._literal


def whole_name(value: Any) -> str | None:
    """The name a definition's value is exactly (``"{{ id }}"`` → ``id``), or None."""
    if not isinstance(value, str):
        return None
    single = _SINGLE_EXPRESSION.match(value.strip())
    if single is None:
        return None
    try:
        expression = _parse(single["expression"])
    except TemplateSyntaxError:
        return None
    return expression.name if isinstance(expression, nodes.Name) else None


def template_names(value: Any) -> set[str]:
    """The names a definition's value (a literal, or a template) reads."""
    if not isinstance(value, str) or "{{" not in value:
        return set()
    return set(meta.find_undeclared_variables(environment().parse(value)))


def compile_expression(source: str) -> Expression:
    return Expression(source)


def compile_checks(checks: Sequence[tuple[str | None, str]]) -> Expression:
    """One expression for many ``(when, condition)`` checks: the tuple of each condition's
    value where its ``when`` holds, ``True`` where it does not. Evaluating them together
    resolves every name once instead of once per check."""
    items: list[nodes.Expr] = []
    for when, condition in checks:
        test = _parse(condition)
        items.append(
            test if when is None else nodes.CondExpr(_parse(when), test, nodes.Const(True))
        )
    source = " , ".join(condition for _, condition in checks)
    return Expression(source, nodes.Tuple(items, "load"))


def compile_any(sources: Sequence[str]) -> Expression:
    """One expression that holds when any of ``sources`` does, judged left to right and no
    further than the first that holds (``a or b or ...``): one evaluation for many."""
    expression = _parse(sources[0])
    for source in sources[1:]:
        expression = nodes.Or(expression, _parse(source))
    return Expression(" or ".join(f"({source})" for source in sources), expression)


def _parse(source: str) -> nodes.Expr:
    parser = Parser(environment(), source, state="variable")
    expression = parser.parse_expression()
    if not parser.stream.eos:
        raise TemplateSyntaxError("chunk after expression", parser.stream.current.lineno)
    return expression


_INSTANCE: dict[str, Any] = dict.fromkeys(INSTANCE_NAMES)
"""The values of the names the instance sets (``company_currency``): ``use_instance_names``."""


def use_instance_names(values: Mapping[str, Any]) -> None:
    """Give the names the instance sets (``company_currency``, from ``tessera.yaml``) their
    values in every scope built from now on. One instance per process: the engine model
    built for it sets them (``EngineModel``); a name it does not set is ``none``."""
    _INSTANCE.clear()
    _INSTANCE.update(dict.fromkeys(INSTANCE_NAMES))
    _INSTANCE.update((name, values[name]) for name in INSTANCE_NAMES if name in values)
    dates.use_timezone(values.get("timezone"))  # today()'s date (tessera.yaml, else UTC)
    _globals.cache_clear()


@functools.cache
def _globals() -> dict[str, Any]:
    """Jinja's globals (``range``, ``dict``, ...) as a plain dict, copied once: a template's
    own ``new_context`` merges them from a chain of mappings on every call. The instance's
    names with them (a record's field of the same name hides one)."""
    return {**environment().globals, **_INSTANCE}


class Actor(ComparesAsId):
    """The acting user as expressions see it (``user``): ``user.id``, ``user.username``,
    ``user.roles``; it compares and prints as its id, the value ``created_by`` holds, so
    ``created_by == user`` and ``created_by == user.id`` both hold for one's own records."""

    __slots__ = ("roles", "username")

    def __init__(self, user_id: str, username: str, roles: frozenset[str]) -> None:
        super().__init__(user_id)
        self.username = username
        self.roles = roles

    def __repr__(self) -> str:
        return f"Actor({self.id!r}, {self.username!r})"


def scope_names(
    record: Mapping[str, Any], old: Mapping[str, Any] | None, user: Actor | None
) -> dict[str, Any]:
    """The names an expression sees (SPEC §3.2): the record's fields, ``old``,
    ``changed('field')``, ``user``, ``today()`` and ``now()``."""

    names = dict(record)
    _add_names(names, record, old, user)
    return names


def _add_names(
    names: dict[str, Any],
    record: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    user: Actor | None,
) -> None:
    """The names every scope has besides the record's fields, added to ``names`` (one dict
    built per write, not merged from several)."""

    def changed(name: str) -> bool:
        if old is None:
            return record.get(name) is not None
        return bool(record.get(name) != old.get(name))

    names["old"] = old
    names["user"] = user
    names["changed"] = changed
    names["today"] = _today
    names["now"] = _now


_today = dates.today
"""The current date in the instance time zone (``timezone:`` in ``tessera.yaml``)."""
_now = dates.now
