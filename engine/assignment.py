"""Assignment rules (``assign:``, docs/rules.md#assignment): on create, or on update when
the rule's ``when`` holds, an empty user or reference field gets one of its candidates.

Candidates are users named in the rule, the active users holding a role, or the records of
the referenced entity a ``where`` selects. ``round_robin`` takes the one after the last
picked, ``least_load`` the one holding the fewest of this entity's records that ``load``
selects (ties in turn), ``first`` the first for which ``select`` holds.

Concurrent creates must not all pick the same person: each rule keeps its cursor (the id
last picked) in a row of ``tessera_sequence`` that the write's transaction locks first
(an upsert: the row lock on PostgreSQL, the write lock on SQLite), so the assignments of
one rule happen one after the other, and ``least_load`` counts inside that locked section
(under READ COMMITTED each statement sees what the previous holder committed). A write
that is rolled back gives its turn back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, bindparam, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.access import filter_clause, user_parameters
from engine.expressions import Scope, compile_expression
from engine.sql import compile_sql, id_list_condition, id_list_param
from engine.tables import sequence_table, user_table
from metadata import AssignStrategy, FieldType, RuleEvent
from metadata._roles import parse_record_filter

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Dialect

    from engine.database import Connection
    from engine.expressions import Expression
    from engine.sql import CompiledSql
    from engine.store import RecordStore
    from engine.writes.context import WriteContext
    from metadata import AssignDef, EntityDef, RuleDef

SERIES_PREFIX = "assign:"


@dataclass(frozen=True, slots=True)
class _Candidate:
    id: str
    """The user's or record's id, as the field holds it."""
    data: Mapping[str, Any]
    """What ``select`` reads as ``candidate``: a user's id, username and roles; a record."""


class _Rule:
    """One assignment rule, compiled once."""

    def __init__(self, rule: RuleDef, assign: AssignDef, entity: EntityDef) -> None:
        self.name = rule.name
        self.events = rule.events
        self.assign = assign
        self.field = entity.fields[assign.field]
        self.when: Expression | None = compile_expression(rule.when) if rule.when else None
        self.select = compile_expression(assign.select) if assign.select else None
        self.series = f"{SERIES_PREFIX}{entity.qualified_name}.{rule.name}"[:200]
        self.load = parse_record_filter(assign.load, entity) if assign.load else None


class Assigner:
    """The assignment rules of one entity, compiled once per entity store."""

    def __init__(
        self,
        entity: EntityDef,
        table: Table,
        records: RecordStore,
        dialect: Dialect,
        dialect_name: str,
    ) -> None:
        self.entity = entity
        self.table = table
        self.records = records
        self.dialect = dialect
        self.dialect_name = dialect_name
        self.rules = tuple(
            _Rule(rule, rule.assign, entity) for rule in entity.rules if rule.assign is not None
        )

    def __bool__(self) -> bool:
        return bool(self.rules)

    def runs_on(self, event: RuleEvent) -> bool:
        return any(event in rule.events for rule in self.rules)

    async def on_update(
        self,
        conn: Connection,
        values: dict[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
    ) -> None:
        """``assign`` for an update of the record ``old`` (nothing when no rule runs on
        update)."""
        if old is not None and self._on_update:
            await self.assign(conn, values, old, ctx)

    @functools.cached_property
    def _on_update(self) -> bool:
        return self.runs_on(RuleEvent.UPDATE)

    async def assign(
        self,
        conn: Connection,
        values: dict[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
    ) -> None:
        """Fill, in ``values`` (all of a new record's, or an update's), each empty field an
        assignment rule of this write's event sets, when its ``when`` holds."""
        event = RuleEvent.CREATE if old is None else RuleEvent.UPDATE
        for rule in self.rules:
            if event not in rule.events:
                continue
            record = {**self.records.blank_record, **(old or {}), **values}
            if record.get(rule.field.name) is not None:
                continue
            if rule.when is not None and not rule.when(Scope(record, old, ctx.user)):
                continue
            picked = await self._pick(conn, rule, record, old, ctx)
            if picked is not None:
                values[rule.field.name] = (
                    int(picked) if rule.field.type is FieldType.REFERENCE else picked
                )

    async def _pick(
        self,
        conn: Connection,
        rule: _Rule,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
    ) -> str | None:
        row = await conn.fetchrow(self._lock.sql, self._lock.args({"series": rule.series}))
        assert row is not None
        last = int(row[0])
        candidates = await self._candidates(conn, rule, ctx)
        if not candidates:
            return None
        ordered = _in_turn(candidates, last)
        strategy = rule.assign.strategy
        if strategy is AssignStrategy.ROUND_ROBIN:
            chosen: _Candidate | None = ordered[0]
        elif strategy is AssignStrategy.LEAST_LOAD:
            loads = await self._loads(conn, rule, [c.id for c in candidates], ctx)
            chosen = min(ordered, key=lambda c: loads.get(c.id, 0))  # ties: in turn
        else:
            assert rule.select is not None
            chosen = next((c for c in candidates if rule.select(_scope(record, old, ctx, c))), None)
        if chosen is None:
            return None
        await conn.execute(
            self._advance.sql,
            self._advance.args({"series": rule.series, "value": int(chosen.id)}),
        )
        return chosen.id

    async def _candidates(
        self, conn: Connection, rule: _Rule, ctx: WriteContext
    ) -> list[_Candidate]:
        assign = rule.assign
        if assign.records is None:
            rows = await conn.fetch(self._users.sql, self._users.args({}))
            users = [
                _Candidate(
                    str(row[0]), {"id": str(row[0]), "username": row[1], "roles": _roles(row[2])}
                )
                for row in rows
            ]
            if assign.role is not None:
                return [u for u in users if assign.role in u.data["roles"]]
            by_name = {u.data["username"]: u for u in users}
            return [by_name[name] for name in assign.users if name in by_name]
        target = self.records.registry.records_for(rule.field.to or "")
        statement = self._records_sql(rule.name, rule.field.to or "", assign.records)
        found = await conn.fetch(statement.sql, statement.args(_user_args(ctx)))
        ids = [int(row[0]) for row in found]
        if rule.select is None:
            return [_Candidate(str(i), {"id": str(i)}) for i in ids]
        loaded = await target.get_many(conn, ids)
        return [_Candidate(str(i), loaded[str(i)]) for i in ids if str(i) in loaded]

    async def _loads(
        self, conn: Connection, rule: _Rule, ids: Sequence[str], ctx: WriteContext
    ) -> dict[str, int]:
        statement = self._load_sql(rule.name)
        params = {**_user_args(ctx), "ids": id_list_param([int(i) for i in ids], self.dialect_name)}
        rows = await conn.fetch(statement.sql, statement.args(params))
        return {str(row[0]): int(row[1]) for row in rows}

    # -- SQL, compiled once --------------------------------------------------------------

    @functools.cached_property
    def _lock(self) -> CompiledSql:
        """The rule's cursor row, made if missing, locked until the write's transaction
        ends (an upsert that updates the row to itself), and its value."""
        dialect_insert = postgresql.insert if self.dialect_name == "postgresql" else sqlite.insert
        s = sequence_table
        zero: Any = literal_column("0")
        statement = (
            dialect_insert(s)
            .values(series=bindparam("series"), value=zero)
            .on_conflict_do_update(index_elements=[s.c.series], set_={"value": s.c.value})
            .returning(s.c.value)
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _advance(self) -> CompiledSql:
        s = sequence_table
        statement = (
            update(s).where(s.c.series == bindparam("series")).values(value=bindparam("value"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _users(self) -> CompiledSql:
        u = user_table.c
        statement = select(u.id, u.username, u.roles).where(u.active != 0).order_by(u.id)
        return compile_sql(statement, self.dialect)

    @functools.cache  # noqa: B019 - one per rule, for the store's lifetime
    def _records_sql(self, rule: str, target: str, where: str) -> CompiledSql:
        records = self.records.registry.records_for(target)
        table = records.table
        condition = filter_clause(
            parse_record_filter(where, records.entity), table, "a", self.dialect_name
        )
        statement = select(table.c.id).where(condition).order_by(table.c.id)
        return compile_sql(statement, self.dialect)

    @functools.cache  # noqa: B019 - one per rule, for the store's lifetime
    def _load_sql(self, rule: str) -> CompiledSql:
        found = next(r for r in self.rules if r.name == rule)
        column = self.table.c[found.field.name]
        conditions = [id_list_condition(column, self.dialect_name, "ids")]
        if found.load is not None:
            conditions.append(filter_clause(found.load, self.table, "l", self.dialect_name))
        statement = select(column, func.count()).where(and_(*conditions)).group_by(column)
        return compile_sql(statement, self.dialect)


def _in_turn(candidates: list[_Candidate], last: int) -> list[_Candidate]:
    """The candidates starting with the one after ``last`` (the id picked last): after it
    in their order when it is still a candidate, else the first with a greater id."""
    ids = [int(c.id) for c in candidates]
    if last in ids:
        start = ids.index(last) + 1
    else:
        start = next((i for i, ident in enumerate(ids) if ident > last), 0)
    start %= len(candidates)
    return candidates[start:] + candidates[:start]


def _scope(
    record: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    ctx: WriteContext,
    candidate: _Candidate,
) -> Scope:
    return Scope({**record, "candidate": candidate.data}, old, ctx.user)


def _user_args(ctx: WriteContext) -> dict[str, Any]:
    user = ctx.user
    return user_parameters(user.id if user else None, user.username if user else None)


def _roles(text: Any) -> list[str]:
    try:
        roles = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    return [str(r) for r in roles] if isinstance(roles, list) else []
