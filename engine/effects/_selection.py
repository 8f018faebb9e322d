"""The records a scheduled rule acts on, selected in the database.

A scheduled rule whose ``where`` (and ``when``) is a record filter
(``metadata.scheduled_filter``) selects its records with one paged query compiled when the
definitions load: a run costs what it matches, not the size of the table. ``today()`` and
``now()`` are bound when the rule runs. The SQL means what the expression means, Python's
way: every condition is true or false, never SQL's unknown (``field == 'a'`` is false for
an empty field and ``not (field == 'a')`` true, as in the expression). The records found
are still judged by the expression before the actions run, so the query only has to find
them all; a ``where`` that is no record filter reads every record, as before.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, false, not_, or_, select, true

from engine import dates
from engine.access import _scaled
from engine.expressions import scope_names
from engine.sql import CompiledSql, compile_sql
from metadata import AllOf, AnyOf, Constant, FieldType, NoneOf
from metadata._scheduled_where import Moment, NotSql, scheduled_filter

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.engine import Dialect

    from metadata import EntityDef, FieldComparison, RecordFilter, RuleDef

log = logging.getLogger("tessera.schedule")


class Selection:
    """One scheduled rule's query: ids of the records its filter holds, a page at a time
    (``after``, ``limit``), plus the moments (``m_today``, ``m_now``) bound at run time."""

    def __init__(
        self, sql: CompiledSql, moments: Mapping[str, tuple[Moment, Callable[[Any], Any] | None]]
    ):
        self.sql = sql
        self.moments = dict(moments)
        """The moments the query reads, with the conversion of their value for the column."""

    def args(self, after: int, limit: int) -> list[Any]:
        params: dict[str, Any] = {"after": after, "limit": limit}
        if self.moments:
            names = scope_names({}, None, None)
            for key, (moment, to_db) in self.moments.items():
                value = names[moment.name]()
                if moment.shift is not None:  # add_days(today(), -30)
                    value = dates.FUNCTIONS[moment.shift](value, moment.by)
                params[f"m_{key}"] = to_db(value) if to_db is not None else value
        return self.sql.args(params)


def selection(
    rule: RuleDef,
    entity: EntityDef,
    table: Table,
    to_db: Mapping[str, Callable[[Any], Any] | None],
    dialect: Dialect,
) -> Selection | None:
    """The query of a scheduled rule, or None when its filter is no record filter (the
    rule then reads every record)."""
    try:
        record_filter = scheduled_filter(rule, entity)
    except NotSql as exc:
        log.info(
            "scheduled rule %s.%s reads every record: its where cannot run as SQL (%s)",
            entity.qualified_name,
            rule.name,
            exc,
        )
        return None
    clauses = _Clauses(entity, table, to_db, dialect.name == "sqlite")
    condition = clauses.build(record_filter) if record_filter is not None else true()
    statement = (
        select(table.c.id)
        .where(and_(condition, table.c.id > bindparam("after")))
        .order_by(table.c.id)
        .limit(bindparam("limit"))
    )
    moments = {key: (clauses.moments[key], clauses.moment_to_db[key]) for key in clauses.moments}
    return Selection(compile_sql(statement, dialect), moments)


class _Clauses:
    def __init__(
        self,
        entity: EntityDef,
        table: Table,
        to_db: Mapping[str, Callable[[Any], Any] | None],
        sqlite: bool,
    ) -> None:
        self.entity = entity
        self.table = table
        self.to_db = to_db
        self.sqlite = sqlite
        self.moments: dict[str, Moment] = {}
        self.moment_to_db: dict[str, Callable[[Any], Any] | None] = {}
        self._count = 0

    def build(self, node: RecordFilter) -> ColumnElement[bool]:
        if isinstance(node, AllOf):
            return and_(*(self.build(part) for part in node.parts))
        if isinstance(node, AnyOf):
            return or_(*(self.build(part) for part in node.parts))
        if isinstance(node, NoneOf):
            return not_(self.build(node.part))
        if isinstance(node, Constant):
            return true() if node.value else false()
        return self.comparison(node)

    def comparison(self, node: FieldComparison) -> ColumnElement[bool]:
        column = self.table.c[node.field]
        op, value = node.op, node.value
        if value is None:
            return column.is_(None) if op == "eq" else column.is_not(None)
        if op in ("in", "nin"):
            members = column.in_([self.operand(node.field, v) for v in value])
            if op == "in":
                return and_(column.is_not(None), members)
            return or_(column.is_(None), not_(members))
        operand = self.operand(node.field, value)
        if op == "ne":
            return or_(column.is_(None), column != operand)
        compared = {
            "eq": column == operand,
            "lt": column < operand,
            "lte": column <= operand,
            "gt": column > operand,
            "gte": column >= operand,
        }[op]
        return and_(column.is_not(None), compared)

    def operand(self, name: str, value: Any) -> Any:
        convert = self.to_db.get(name)
        if isinstance(value, Moment):
            if value.key not in self.moments:
                self.moments[value.key] = value
                self.moment_to_db[value.key] = convert
            return bindparam(f"m_{value.key}")
        self._count += 1
        if self.entity.fields[name].type is FieldType.DECIMAL:
            column_type: Any = self.table.c[name].type
            bound = _scaled(value, column_type.scale or 0) if self.sqlite else Decimal(value)
        else:
            bound = convert(value) if convert is not None else value
        return bindparam(f"s{self._count}", value=bound)
