"""The ``where`` of a scheduled rule as a record filter the engine can run as SQL.

A scheduled rule's ``where`` (and ``when``) is an ordinary expression, evaluated over each
record. Where it only compares fields of the record with constants or with ``today()`` /
``now()``, joined by ``and`` / ``or`` / ``not`` (plus ``is none`` and ``in``), it is also a
``RecordFilter``: the engine selects the records it holds with one query instead of reading
every record of the table. Anything else (a reference traversed, arithmetic, a function)
is left to the expression, read over every record, and ``tessera validate`` says so.

The filter means what the expression means, Python's way: ``field == 'a'`` and
``field in [...]`` are false for an empty field, ``!=`` and ``not in`` true, a boolean field
alone holds when it is true. Comparisons are kept where both databases compare as Python
does: equality and membership of text, order of numbers and of dates with ``today()``
(datetimes with ``now()``); text order (collations differ) and mixed types are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser

from metadata._expressions import _environment
from metadata._model import AllOf, AnyOf, Constant, FieldComparison, FieldType, NoneOf

if TYPE_CHECKING:
    from metadata._model import EntityDef, RecordFilter, RuleDef


@dataclass(frozen=True, slots=True)
class Moment:
    """``today()`` or ``now()`` in a scheduled rule's filter: its value when the rule runs,
    maybe shifted by a date function (``add_days(today(), -30)``)."""

    name: str
    shift: str | None = None
    """``add_days``, ``add_months`` or ``add_hours``, applied with ``by``."""
    by: int = 0

    @property
    def key(self) -> str:
        """A name for the value in the query (``today``, ``today_add_days_m30``)."""
        if self.shift is None:
            return self.name
        return f"{self.name}_{self.shift}_{'m' if self.by < 0 else ''}{abs(self.by)}"


_SHIFTS = {"add_days": 36_600, "add_months": 1_200, "add_hours": 878_400}
"""The date functions a scheduled filter may shift ``today()``/``now()`` by, and the
largest count (a century): the moment stays a date of the calendar."""


_TEXTUAL = frozenset(
    {
        FieldType.STRING,
        FieldType.TEXT,
        FieldType.EMAIL,
        FieldType.URL,
        FieldType.PHONE,
        FieldType.ENUM,
    }
)
_NUMBERS = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
_OPS = {
    "eq": "eq",
    "ne": "ne",
    "lt": "lt",
    "lteq": "lte",
    "gt": "gt",
    "gteq": "gte",
    "in": "in",
    "notin": "nin",
}
_MIRROR = {"lt": "gt", "lteq": "gteq", "gt": "lt", "gteq": "lteq", "eq": "eq", "ne": "ne"}
_ORDER = frozenset({"lt", "lte", "gt", "gte"})
_INT64 = range(-(2**63), 2**63)


class NotSql(ValueError):
    """Why a ``where`` cannot run as SQL."""


def scheduled_filter(rule: RuleDef, entity: EntityDef) -> RecordFilter | None:
    """The record filter of a scheduled rule's ``where`` and ``when`` (None: every record);
    ``NotSql`` when the expression says more than a record filter can."""
    conditions = [c for c in (rule.where, rule.when) if c]
    if not conditions:
        return None
    parts: list[RecordFilter] = []
    for source in conditions:
        try:
            parser = Parser(_environment(), source, state="variable")
            expression = parser.parse_expression()
        except TemplateSyntaxError as exc:
            raise NotSql(f"does not parse: {exc.message}") from None
        if not parser.stream.eos:
            raise NotSql("does not parse")
        parts.append(_Translator(entity).node(expression))
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def scheduled_where_advice(entities: Any) -> list[str]:
    """Scheduled rules whose ``where`` cannot run as SQL: each run reads every record of the
    entity to judge it (``tessera validate`` prints these)."""
    advice = []
    for entity in entities:
        for rule in entity.rules:
            if rule.schedule is None:
                continue
            try:
                scheduled_filter(rule, entity)
            except NotSql as exc:
                advice.append(
                    f"{rule.origin}: scheduled rule '{rule.name}' of {entity.qualified_name}: "
                    f"its where cannot run as SQL ({exc}); every run reads all the records "
                    "of the entity to judge it. Compare fields with constants, today() or "
                    "now() (or add_days(today(), -30)), joined by and/or/not, to select them "
                    "in the database"
                )
    return advice


class _Translator:
    def __init__(self, entity: EntityDef) -> None:
        self.entity = entity

    def _moment(self, node: nodes.Call, moment: str, kind: FieldType) -> Moment:
        """``today()``, ``now()``, or one shifted by a date function."""
        if moment in _SHIFTS:
            return self._shifted(node, moment, kind)
        if node.args or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise NotSql(f"{moment}() with arguments")
        wanted = {"today": FieldType.DATE, "now": FieldType.DATETIME}.get(moment)
        if wanted is None:
            raise NotSql(f"the function {moment}()")
        if wanted is not kind:
            raise NotSql(f"{moment}() compared with a {kind.value} field")
        return Moment(moment)

    def _shifted(self, node: nodes.Call, shift: str, kind: FieldType) -> Moment:
        """``add_days(today(), -30)``: a moment shifted by a constant count."""
        if len(node.args) != 2 or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise NotSql(f"{shift}() with other arguments than today() or now() and a number")
        inner, count = node.args
        if isinstance(count, nodes.Neg) and isinstance(count.node, nodes.Const):
            by = count.node.value
            by = -by if isinstance(by, int) else by
        else:
            by = count.value if isinstance(count, nodes.Const) else None
        if not isinstance(by, int) or isinstance(by, bool) or abs(by) > _SHIFTS[shift]:
            raise NotSql(f"{shift}() by something else than a whole number up to {_SHIFTS[shift]}")
        base = None
        if isinstance(inner, nodes.Call) and isinstance(inner.node, nodes.Name):
            base = self._moment(inner, inner.node.name, kind)
        if base is None or base.shift is not None:
            raise NotSql(f"{shift}() of something else than today() or now()")
        if shift == "add_hours" and base.name != "now":
            raise NotSql("add_hours() of today()")
        return Moment(base.name, shift, by)

    def node(self, node: nodes.Node) -> RecordFilter:
        if isinstance(node, nodes.And):
            return AllOf((self.node(node.left), self.node(node.right)))
        if isinstance(node, nodes.Or):
            return AnyOf((self.node(node.left), self.node(node.right)))
        if isinstance(node, nodes.Not):
            return NoneOf(self.node(node.node))
        if isinstance(node, nodes.Const) and isinstance(node.value, bool):
            return Constant(node.value)
        if isinstance(node, nodes.Test):
            if node.name != "none" or node.args or node.kwargs or node.dyn_args:
                raise NotSql(f"the test 'is {node.name}'")
            self.field(node.node, None)
            return FieldComparison(node.node.name, "eq", None)  # type: ignore[attr-defined]
        if isinstance(node, nodes.Name):
            field = self.entity.fields.get(node.name)
            if field is not None and field.type is FieldType.BOOLEAN:
                return FieldComparison(node.name, "eq", True)
            raise NotSql(f"'{node.name}' alone is no condition SQL can hold")
        if isinstance(node, nodes.Compare):
            return self.comparison(node)
        raise NotSql(f"a {type(node).__name__.lower()} expression")

    def comparison(self, node: nodes.Compare) -> FieldComparison:
        if len(node.ops) != 1:
            raise NotSql("a chained comparison")
        op, left, right = node.ops[0].op, node.expr, node.ops[0].expr
        if op not in _OPS:
            raise NotSql(f"the operator '{op}'")
        if not isinstance(left, nodes.Name) and isinstance(right, nodes.Name) and op in _MIRROR:
            left, right, op = right, left, _MIRROR[op]
        name = _OPS[op]
        kind = self.field(left, name)
        if name in ("in", "nin"):
            if not isinstance(right, nodes.List | nodes.Tuple) or not right.items:
                raise NotSql("'in' with something else than a list of constants")
            values = tuple(self.value(item, kind, name) for item in right.items)
            if any(v is None for v in values):
                raise NotSql("'in' a list holding none")
            return FieldComparison(left.name, name, values)  # type: ignore[attr-defined]
        value = self.value(right, kind, name)
        if value is None and name not in ("eq", "ne"):
            raise NotSql("an order comparison with none")
        return FieldComparison(left.name, name, value)  # type: ignore[attr-defined]

    def field(self, node: nodes.Node, op: str | None) -> FieldType:
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            raise NotSql(f"'{node.node.name}.{node.attr}' reads another record")
        if not isinstance(node, nodes.Name):
            raise NotSql("a comparison without a field of the record on one side")
        found = self.entity.fields.get(node.name)
        if found is None or not found.is_stored:
            raise NotSql(f"'{node.name}' is not a stored field of the record")
        kind = found.type
        if op is None:  # ``is none``: any scalar column
            if kind in (FieldType.CHILDREN, FieldType.JSON, FieldType.FILE):
                raise NotSql(f"'{node.name}' ({kind.value})")
            return kind
        allowed = (
            kind in _NUMBERS
            or kind in (FieldType.DATE, FieldType.DATETIME)
            or (kind in _TEXTUAL | {FieldType.BOOLEAN} and op not in _ORDER)
        )
        if not allowed:
            raise NotSql(f"'{op}' on '{node.name}' ({kind.value})")
        return kind

    def value(self, node: nodes.Node, kind: FieldType, op: str) -> Any:
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Name):
            return self._moment(node, node.node.name, kind)
        if isinstance(node, nodes.Neg) and isinstance(node.node, nodes.Const):
            number = node.node.value
            if isinstance(number, int | float) and not isinstance(number, bool):
                node = nodes.Const(-number)
        if not isinstance(node, nodes.Const):
            raise NotSql("a comparison with something else than a constant, today() or now()")
        value = node.value
        if value is None:
            return None
        fits = (
            (kind in _TEXTUAL and isinstance(value, str) and "\x00" not in value)
            or (kind is FieldType.BOOLEAN and isinstance(value, bool))
            or (
                kind in _NUMBERS
                and isinstance(value, int)
                and not isinstance(value, bool)
                and value in _INT64
            )
        )
        if not fits:
            raise NotSql(f"{value!r} compared with a {kind.value} field")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise NotSql("a text constant with unpaired surrogates") from None
        return value
