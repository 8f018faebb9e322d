"""The contract of a filter operator's engine side, and the registry of operator classes.

A class implements one ``OperatorSpec`` of ``metadata/_operators.py`` (its name, arity, field
types and text): how the values of ``field__<name>=text`` are parsed, what is bound, the SQL
condition, and how a record is judged in Python (a role's ``where`` on a record in hand).
``register`` adds the class, and its spec to the vocabulary if it is new there: an operator
defined anywhere (a plugin, a test module) works in lists, aggregates, dashboards and role
``where`` filters once registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from engine.errors import BadQuery
from engine.fieldtypes import InvalidValue
from engine.fieldtypes.choice import parse_boolean
from metadata._operators import FILTER_OPERATORS, Arity, OperatorSpec, register_spec

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import ColumnElement


def split_csv(text: str, parameter: str) -> list[str]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise BadQuery(f"'{parameter}' has an empty item: '{text}'")
    return items


def parse_flag(text: str, parameter: str) -> bool:
    try:
        return parse_boolean(text)
    except InvalidValue:
        raise BadQuery(f"'{parameter}' must be true or false") from None


def same(actual: Any, expected: Any) -> bool:
    """Equality as the database sees it: a whole-number column equals the text of its
    number (``owner == user.id``, where ids are text)."""
    if actual is None or expected is None:
        return False
    if isinstance(actual, int) and isinstance(expected, str) and expected.isdigit():
        return actual == int(expected)
    return bool(actual == expected)


class Operator:
    """One filter operator. Subclasses set ``spec`` and implement ``sql`` and ``holds``."""

    spec: ClassVar[OperatorSpec]

    @property
    def name(self) -> str:
        return self.spec.name

    def values(self, text: str, parse: Callable[[str], Any], key: str) -> tuple[Any, ...]:
        """The values of ``key=text``; ``parse`` turns one item into the column's bound value
        (raising ``InvalidValue``), ``key`` names the parameter in messages."""
        if self.spec.arity is Arity.FLAG:
            return (parse_flag(text, key),)
        items = split_csv(text, key) if self.spec.arity is Arity.MANY else [text]
        return tuple(parse(item) for item in items)

    def operand(self, value: Any) -> Any:
        """What is bound for ``value`` (``icontains`` binds a LIKE pattern)."""
        return value

    def shape(self, values: Sequence[Any]) -> Any:
        """What of ``values`` decides the SQL text (part of the cached statement's key)."""
        return values[0] if self.spec.arity is Arity.FLAG else len(values)

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        """The condition on ``column``: ``operands`` are the bound parameters of ``values``
        (none for a ``FLAG`` operator, whose value is in ``values``)."""
        raise NotImplementedError

    def holds(self, actual: Any, expected: Any) -> bool:
        """Whether a record whose field is ``actual`` passes, judged like the SQL; ``expected``
        is the value (a tuple for ``MANY``, a bool for ``FLAG``)."""
        raise NotImplementedError


_OPERATORS: dict[str, Operator] = {}
_Cls = TypeVar("_Cls", bound=type[Operator])


def register(cls: _Cls) -> _Cls:
    """Registers ``cls`` as the operator of ``cls.spec`` (adding the spec if it is new)."""
    spec = register_spec(cls.spec)
    known = _OPERATORS.get(spec.name)
    if known is not None and type(known) is not cls:
        raise ValueError(f"operator {spec.name!r} has a class already: {type(known).__name__}")
    _OPERATORS[spec.name] = cls()
    return cls


def operator(name: str) -> Operator:
    """The registered operator ``name`` (a name from ``FILTER_OPERATORS``)."""
    found = _OPERATORS.get(name)
    if found is None:
        raise KeyError(f"operator {name!r} has no engine class (engine.operators.register)")
    return found


def registered() -> frozenset[str]:
    return frozenset(_OPERATORS)


def unimplemented() -> frozenset[str]:
    """Operators of the vocabulary without an engine class (none, or a spec is orphaned)."""
    return frozenset(FILTER_OPERATORS) - frozenset(_OPERATORS)
