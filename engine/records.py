"""Reading and writing the records of one entity.

An ``EntityStore`` is compiled once per entity at start-up: its SQL texts, its row decoder,
its validator and its list-query builder. Requests then only bind values, run SQL through
the async driver and hand back plain dicts ready for JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Float,
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    insert,
    literal,
    literal_column,
    select,
    update,
)

from engine.access import Forbidden, matches
from engine.actions import CascadeStep, ScheduledActions, Triggers, cascade_error
from engine.aggregate import AggregateParser, AggregateSqlBuilder
from engine.audit import AuditAction, AuditLog, changes_between
from engine.computed import ComputedFields, DefaultExpressions
from engine.database import IntegrityViolation
from engine.errors import (
    Conflict,
    EngineError,
    FieldError,
    RecordNotFound,
    StaleVersion,
    ValidationFailed,
)
from engine.expressions import Actor, Scope
from engine.fieldtypes import InvalidValue, ReferenceByKey, id_text, kind_of
from engine.fieldtypes.temporal import sqlite_datetime_text
from engine.formstate import FormConditions
from engine.guard import Caller, GuardedStore
from engine.outbox import DEFERRED_ACTION, NewEvent, Outbox
from engine.query import (
    ListQuery,
    ListSqlBuilder,
    QueryColumn,
    QueryColumns,
    QueryParser,
    encode_cursor,
)
from engine.references import (
    RecordRef,
    ReferenceCache,
    expression_sources,
    reference_id,
    traversed_references,
)
from engine.rules import RequiredIf, RuleSet
from engine.sql import CompiledSql, compile_sql, id_list_condition, id_list_param
from engine.tables import PARENT_COLUMN, POSITION_COLUMN, audit_table, sequence_table
from engine.validation import RecordValidator
from engine.workflow import Move, Workflow
from metadata import (
    ADMIN_ROLE,
    RUN_AS_SYSTEM,
    RUN_AS_USER,
    ActionKind,
    FieldType,
    Permission,
    RuleEvent,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.engine import Dialect

    from engine.access import AccessPolicy
    from engine.aggregate import AggregateQuery, AggregateResult
    from engine.database import Connection
    from metadata import EntityDef, FieldDef, RuleDef

log = logging.getLogger("tessera.rules")

SCHEDULE_PAGE = 500
UPSERT_ATTEMPTS = 3
"""How often an upsert looks its key up again after its create gave way to a record that
was then deleted before it could be locked (``EntityStore.upsert_with``)."""
SYSTEM_TAIL = ("created_at", "updated_at", "created_by", "updated_by", "version")
_KEY_DETAIL = re.compile(r"Key \(([^)]*)\)=")
_AUTONUMBER_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")
MISSING_REFERENCE = "refers to a record that does not exist"
"""What a reference to a missing record, or to one the writer may not read, is told."""


class _KeyTaken(Exception):
    """A create that gives way to an existing key (``create_unless_taken``) inserted nothing."""


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Who is writing, and which rules led to this write; passed explicitly through every
    write."""

    user: Actor | None = None
    """Who writes; None for the command line, fixtures and scheduled runs."""
    cascade: tuple[CascadeStep, ...] = ()
    roles: frozenset[str] | None = None
    """The rights the write runs with: the writer's roles, or the role a rule's actions run
    as. They limit workflow transitions granted to roles, and the records a reference may
    point at (only ones these roles may read). None when no user is authenticated (the
    command line, fixtures) or a rule runs as the system, which such limits do not stop."""
    references: ReferenceCache = dataclasses.field(default_factory=dict)
    """Records that expressions traverse to (``account.name``), loaded in batches."""
    events: list[int] = dataclasses.field(default_factory=list)
    """Outbox events this write (and its cascades) queued; for whoever commits it, to hand
    them to the deliverers after the commit."""

    @property
    def user_id(self) -> str | None:
        """What ``created_by`` and ``updated_by`` record."""
        return self.user.id if self.user is not None else None


@dataclass(frozen=True, slots=True)
class PreparedCreate:
    """A create's values, validated and derived, ready for ``EntityStore.create``."""

    values: dict[str, Any]
    triggers_due: bool | None
    """False: no trigger can fire; None: only known once the record is inserted."""
    derived: bool = True
    """False when computed fields and rules wait for referenced records to be loaded."""


@dataclass(frozen=True, slots=True)
class ListResult:
    records: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool
    count: int | None


class StoreRegistry:
    """Protocol-like base: how a store finds the stores of other entities and the outbox."""

    outbox: Outbox
    audit: AuditLog
    access: AccessPolicy

    def store_for(self, qualified_name: str) -> EntityStore:
        raise KeyError(qualified_name)


class EntityStore:
    def __init__(
        self,
        entity: EntityDef,
        table: Table,
        registry: StoreRegistry,
        *,
        dialect: Dialect,
        dialect_name: str,
        children: Mapping[str, EntityStore] | None = None,
    ) -> None:
        self.entity = entity
        self.table = table
        self.registry = registry
        self.dialect = dialect
        self.dialect_name = dialect_name
        self.children: dict[str, EntityStore] = dict(children or {})
        self.validator: RecordValidator = RecordValidator(
            entity, {name: store.validator for name, store in self.children.items()}
        )
        self.stored_fields: tuple[FieldDef, ...] = tuple(
            f for f in entity.fields.values() if f.is_stored
        )
        self.columns = ("id", *(f.name for f in self.stored_fields), *SYSTEM_TAIL)
        self._autonumbers = tuple(
            (f.name, f.format)
            for f in self.stored_fields
            if f.type is FieldType.AUTONUMBER and f.format
        )
        self._to_db = {f.name: kind_of(f).to_db(f, dialect_name) for f in self.stored_fields}
        self._timestamp: Callable[[dt.datetime], Any] = (
            sqlite_datetime_text if dialect_name == "sqlite" else (lambda v: v)
        )
        self._decoders = self._build_decoders()
        self._active_decoders = tuple(
            (name, decoder) for name, decoder in self._decoders.items() if decoder is not None
        )
        self.query_columns = self._query_columns()
        self.parser = QueryParser(self.query_columns, self._lookup_columns)
        self.lists = ListSqlBuilder(
            self.query_columns,
            self._lookup_columns,
            dialect=dialect,
            dialect_name=dialect_name,
            select_columns=self._select_columns,
        )
        self.aggregate_parser = AggregateParser(self.parser)
        self.aggregates = AggregateSqlBuilder(
            self.lists,
            dialect=dialect,
            dialect_name=dialect_name,
            scales={
                f.name: f.scale if f.scale is not None else 2
                for f in self.stored_fields
                if f.type is FieldType.DECIMAL
            },
            decoders=self._decoders,
        )
        assigned = (
            "id",
            *SYSTEM_TAIL,
            *(f.name for f in self.stored_fields if f.type is FieldType.AUTONUMBER),
        )
        line_rules = any(child.entity.rules for child in self.children.values())
        self.rules = RuleSet(
            entity.rules, assigned, before_insert=not entity.is_child and not line_rules
        )
        self.triggers = Triggers(entity.rules, assigned)
        self.scheduled = ScheduledActions(entity.rules)
        self.schedules = self.scheduled.schedules
        """Scheduled rules by name: when they run (``engine.scheduling`` runs them)."""
        self.computed = ComputedFields(entity)
        self.defaults = DefaultExpressions(entity)
        self._computes = bool(self.computed) or any(c.computed for c in self.children.values())
        self.required_if = RequiredIf(entity.fields.values())
        self.form_conditions = FormConditions(entity)
        self.workflow = Workflow(entity.workflow) if entity.workflow is not None else None
        self.traversed = traversed_references(entity, expression_sources(entity))
        """Reference fields whose targets' fields expressions read, by target entity."""
        self._derives = (
            self._computes
            or bool(self.required_if)
            or bool(self.rules.before_insert)
            or bool(self.defaults)
        )
        self._blank_record: dict[str, Any] = {
            **dict.fromkeys(("id", *(f.name for f in self.stored_fields), *SYSTEM_TAIL)),
            **{name: [] for name in self.children},
        }
        self._sql = _StoreSql(self)
        self._update_cache: dict[tuple[tuple[str, ...], bool], CompiledSql] = {}

    # -- compilation helpers ---------------------------------------------------------------

    def _build_decoders(self) -> dict[str, Callable[[Any], Any] | None]:
        decoders: dict[str, Callable[[Any], Any] | None] = {"id": id_text}
        for field in self.stored_fields:
            decoders[field.name] = kind_of(field).from_db(field, self.dialect_name)
        timestamp = dt.datetime.fromisoformat if self.dialect_name == "sqlite" else None
        decoders.update(
            created_at=timestamp,
            updated_at=timestamp,
            created_by=None,
            updated_by=None,
            version=None,
        )
        return decoders

    def _query_columns(self) -> QueryColumns:
        columns: dict[str, QueryColumn] = {"id": QueryColumn("id", None, False, None)}
        for field in self.stored_fields:
            if field.type is FieldType.JSON:
                continue
            columns[field.name] = QueryColumn(
                field.name,
                field.type,
                nullable=not field.required or field.type is FieldType.AUTONUMBER,
                to_db=self._to_db[field.name],
                target=field.to,
            )
        timestamp_to_db = sqlite_datetime_text if self.dialect_name == "sqlite" else None
        for name in ("created_at", "updated_at"):
            columns[name] = QueryColumn(name, FieldType.DATETIME, False, timestamp_to_db)
        for name in ("created_by", "updated_by"):
            columns[name] = QueryColumn(name, FieldType.STRING, True, None)
        columns["version"] = QueryColumn("version", FieldType.INTEGER, False, None)
        title = self.entity.title
        search = tuple(
            f.name
            for f in self.stored_fields
            if f.name == title
            or f.type in {FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.AUTONUMBER}
        )
        return QueryColumns(
            entity=self.entity.qualified_name,
            table=self.table,
            columns=columns,
            search=search,
            expandable=tuple(f.name for f in self.stored_fields if f.type is FieldType.REFERENCE),
            all_fields=(*self.columns, *self.children),
        )

    def _lookup_columns(self, qualified_name: str) -> QueryColumns:
        return self.registry.store_for(qualified_name).query_columns

    def _select_columns(self, fields: tuple[str, ...] | None) -> list[ColumnElement[Any]]:
        names = self.columns if fields is None else self._sparse_columns(fields)
        return [self.table.c[name] for name in names]

    def _sparse_columns(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        wanted = set(fields) | {"id"}
        return tuple(name for name in self.columns if name in wanted)

    # -- decoding --------------------------------------------------------------------------

    def decode(self, row: Sequence[Any], names: Sequence[str] | None = None) -> dict[str, Any]:
        """A driver row as a record dict; only the columns that need converting are touched."""
        # sqlite3 rows are tuples; asyncpg records map their column names themselves.
        record = (
            dict(zip(names or self.columns, row, strict=True))
            if isinstance(row, tuple)
            else dict(row)
        )
        for name, decoder in self._active_decoders:
            value = record.get(name)
            if value is not None:
                record[name] = decoder(value)
        return record

    def _encode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        encoded = {}
        for name, value in values.items():
            converter = self._to_db.get(name)
            encoded[name] = (
                converter(value) if converter is not None and value is not None else (value)
            )
        return encoded

    def _ordered(
        self, record: dict[str, Any], fields: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Children belong between the declared fields and the system fields."""
        if not self.children or (fields is not None and not set(fields) & set(self.children)):
            return record
        ordered = {}
        for name in ("id", *self.entity.fields):
            if name in record:
                ordered[name] = record[name]
        for name in SYSTEM_TAIL:
            if name in record:
                ordered[name] = record[name]
        return ordered

    # -- reads -----------------------------------------------------------------------------

    async def get(self, conn: Connection, record_id: int) -> dict[str, Any]:
        row = await conn.fetchrow(self._sql.get.sql, (record_id,))
        if row is None:
            raise RecordNotFound(f"no {self.entity.qualified_name} record with id {record_id}")
        record = self.decode(row)
        if self.children:
            await self._attach_children(conn, [record])
            record = self._ordered(record)
        return record

    async def get_many(self, conn: Connection, ids: Sequence[int]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        rows = await conn.fetch(self._sql.get_many.sql, (id_list_param(ids, self.dialect_name),))
        records = [self.decode(row) for row in rows]
        if self.children:
            await self._attach_children(conn, records)
            records = [self._ordered(r) for r in records]
        return {r["id"]: r for r in records}

    async def list_page(self, conn: Connection, query: ListQuery) -> ListResult:
        list_sql, count_sql, args = self.lists.statements(query)
        rows = await conn.fetch(list_sql.sql, args)
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        names = self.columns if query.fields is None else self._sparse_columns(query.fields)
        records = [self.decode(row, names) for row in rows]
        next_cursor = None
        if has_more and records:
            last = rows[-1]
            position = {name: i for i, name in enumerate(names)}
            try:
                values = [last[position[name]] for name, _ in query.sort] + [last[position["id"]]]
            except KeyError:
                values = None
            if values is not None:
                next_cursor = encode_cursor(query, [self._cursor_value(v) for v in values])
        count = None
        if count_sql is not None:
            count_row = await conn.fetchrow(count_sql.sql, self.lists.count_args(count_sql, query))
            count = int(count_row[0]) if count_row else 0
        if self.children and (query.fields is None or set(query.fields) & set(self.children)):
            await self._attach_children(conn, records, query.fields)
            records = [self._ordered(r, query.fields) for r in records]
        for name in query.expand:
            await self._expand(conn, records, name)
        return ListResult(records, next_cursor, has_more, count)

    async def aggregate(self, conn: Connection, query: AggregateQuery) -> AggregateResult:
        compiled, args = self.aggregates.statement(query)
        rows = await conn.fetch(compiled.sql, args)
        return self.aggregates.decode(query, rows)

    @staticmethod
    def _cursor_value(value: Any) -> Any:
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        return value

    async def _expand(self, conn: Connection, records: list[dict[str, Any]], name: str) -> None:
        target = self.registry.store_for(self.entity.fields[name].to or "")
        ids = {int(r[name]) for r in records if r.get(name) is not None}
        found = await target.get_many(conn, sorted(ids))
        for record in records:
            if record.get(name) is not None:
                record[name] = found.get(record[name], record[name])

    async def expand_one(
        self, conn: Connection, record: dict[str, Any], names: Sequence[str]
    ) -> None:
        for name in names:
            await self._expand(conn, [record], name)

    async def _attach_children(
        self, conn: Connection, records: list[dict[str, Any]], fields: tuple[str, ...] | None = None
    ) -> None:
        ids = [int(r["id"]) for r in records]
        by_id = {r["id"]: r for r in records}
        for name, child in self.children.items():
            if fields is not None and name not in fields:
                continue
            for record in records:
                record[name] = []
            rows = await conn.fetch(
                child._sql.children_of.sql, (id_list_param(ids, self.dialect_name),)
            )
            for row in rows:
                line = child.decode(tuple(row)[1:])
                by_id[id_text(row[0])][name].append(line)

    async def id_by_unique(
        self, conn: Connection, field_name: str, value: Any, *, lock: bool = False
    ) -> int | None:
        """The id of the record whose unique ``field_name`` is ``value``; ``lock``: locked
        until the transaction ends (PostgreSQL's ``FOR UPDATE``)."""
        field = self.entity.fields.get(field_name)
        if field is None or field_name not in self.entity.unique_fields():
            unique = ", ".join(self.entity.unique_fields()) or "none"
            raise InvalidValue(
                "reference",
                f"'{field_name}' is not a unique field of {self.entity.qualified_name} "
                f"(unique fields: {unique})",
            )
        coerced = kind_of(field).coercer(field)(value)
        converter = self._to_db[field_name]
        sql = self._sql.id_by_field(field_name, lock=lock)
        row = await conn.fetchrow(sql.sql, (converter(coerced) if converter else coerced,))
        return int(row[0]) if row else None

    # -- writes ----------------------------------------------------------------------------

    def prepare_create(self, data: Any, ctx: WriteContext) -> PreparedCreate:
        """Everything about a create that needs no database: validation, computed fields,
        ``required_if``, the rules that can run before the INSERT, and whether a trigger
        can be due (which decides whether the create needs a transaction)."""
        values = self.validator.validate(data)
        if self.workflow is not None:
            self.workflow.check_create(data, values)
        if self.traversed:
            return PreparedCreate(values, None, derived=False)
        scope = self._derive(values, None, ctx, creating=True) if self._derives else None
        due: bool | None = False
        if self.triggers.runs_on(RuleEvent.CREATE):
            if scope is None:
                scope = Scope({**self._blank_record, **values}, None, ctx.user)
            due = self.triggers.due_before_insert(scope)
        return PreparedCreate(values, due)

    def writes_one_statement(self, prepared: PreparedCreate) -> bool:
        """Whether this create is a single SQL statement (no lines, no numbering, no
        lookups, no rule or action after the INSERT), which is atomic without an explicit
        transaction and saves the BEGIN and COMMIT round trips."""
        values = prepared.values
        if self.dialect_name != "postgresql":
            return False  # the audit row is a second statement (PostgreSQL writes it in a CTE)
        if self._autonumbers or any(name in values for name in self.children):
            return False
        if self.rules.runs_on(RuleEvent.CREATE) or prepared.triggers_due is not False:
            return False  # a broken rule or a failing action must undo the insert
        return not any(isinstance(v, ReferenceByKey) for v in values.values())

    async def create(
        self,
        conn: Connection,
        data: Any,
        ctx: WriteContext,
        *,
        prepared: PreparedCreate | None = None,
    ) -> dict[str, Any]:
        record = await self._create(conn, data, ctx, prepared, None)
        assert record is not None  # only a create with a key gives way
        return record

    async def create_unless_taken(
        self,
        conn: Connection,
        data: Any,
        ctx: WriteContext,
        key: str,
        *,
        prepared: PreparedCreate | None = None,
    ) -> dict[str, Any] | None:
        """``create``, unless a record already holds the value the new record gives the
        unique field ``key``: then nothing is written and the answer is None (an upsert then
        updates that record). The INSERT is ``INSERT … ON CONFLICT (key) DO NOTHING``: a
        concurrent transaction that has just inserted the same value is waited for, and
        gives None if it commits, while if it rolls back this create goes ahead. Numbers an
        autonumber drew for a create that gives way are given back (a savepoint), so that
        numbering stays gap-free."""
        return await self._create(conn, data, ctx, prepared, key)

    async def _create(
        self,
        conn: Connection,
        data: Any,
        ctx: WriteContext,
        prepared: PreparedCreate | None,
        key: str | None,
    ) -> dict[str, Any] | None:
        prepared = prepared if prepared is not None else self.prepare_create(data, ctx)
        values = prepared.values
        if not prepared.derived:
            await self._resolve_references(conn, values, ctx)
            await self.load_references(conn, [values], ctx)
            self._derive(values, None, ctx, creating=True)
        children = {name: values.pop(name) for name in self.children if name in values}
        await self._resolve_references(conn, values, ctx)
        numbered = key is not None and bool(self._autonumbers)
        try:
            async with conn.savepoint() if numbered else contextlib.nullcontext():
                row, audit = await self._insert(conn, values, children, ctx, key)
        except _KeyTaken:
            return None
        record = self.decode(row)
        if self.dialect_name != "postgresql":  # PostgreSQL wrote it with the INSERT
            await self.registry.audit.add(conn, {**audit, "record_id": str(record["id"])})
        errors: list[FieldError] = []
        if self.children:
            for name, child in self.children.items():
                record[name] = await child._replace_lines(
                    conn, int(record["id"]), children.get(name, []), ctx, name, errors
                )
            record = self._ordered(record)
        self._check_rules(RuleEvent.CREATE, record, None, ctx, errors)
        if prepared.triggers_due is not False:
            record = await self._run_triggers(conn, RuleEvent.CREATE, record, None, ctx)
        return record

    async def _insert(
        self,
        conn: Connection,
        values: dict[str, Any],
        children: Mapping[str, Any],
        ctx: WriteContext,
        key: str | None,
    ) -> tuple[Sequence[Any], dict[str, Any]]:
        """Draw the autonumbers and INSERT the record (on PostgreSQL with its audit row, in
        the same statement); the inserted row, and the audit row. With ``key``, raise
        ``_KeyTaken`` instead when a record already holds the new record's ``key``."""
        await self._number(conn, values)
        now = self._timestamp(dt.datetime.now(dt.UTC))
        params = self._encode(values)
        params.update(
            created_at=now,
            updated_at=now,
            created_by=ctx.user_id,
            updated_by=ctx.user_id,
            version=1,
        )
        changes = changes_between(None, {**values, **children}, [*values, *children])
        audit = self.registry.audit.row(
            self.entity.qualified_name, "", AuditAction.CREATE, changes, ctx.user_id
        )
        inline = self.dialect_name == "postgresql"
        insert_sql = self._sql.insert_unless_taken(key, audited=inline)
        if inline:
            params.update(audit_at=audit["at"], audit_user=audit["user_id"])
            params["audit_changes"] = audit["changes"]
        constants = insert_sql.constants
        args = [params[n] if n in params else constants.get(n) for n in insert_sql.names]
        try:
            row = await conn.fetchrow(insert_sql.sql, args)
        except IntegrityViolation as exc:
            raise await self._integrity_error(conn, exc, values) from None
        if row is None:
            assert key is not None  # only ON CONFLICT DO NOTHING inserts no row
            raise _KeyTaken
        return row, audit

    def _check_rules(
        self,
        event: RuleEvent,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
        errors: list[FieldError],
    ) -> None:
        """The rules of ``event`` on the record as stored, after its lines': every failure
        of both at once (``errors`` holds the lines')."""
        view, old_view = self._view(record, ctx), self._view(old, ctx)
        failures = [*errors, *self.rules.failures(event, view, old_view, ctx.user)]
        if failures:
            raise ValidationFailed(failures)

    async def update(
        self,
        conn: Connection,
        record_id: int,
        data: Any,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
        old: dict[str, Any] | None = None,
        check: Callable[[Mapping[str, Any]], None] = lambda record: None,
    ) -> dict[str, Any]:
        """``old``: the stored record, when the caller has just read it (in this
        transaction); read here otherwise. ``check``: called with the record as the UPDATE
        stored it, before anything else is written; what it raises undoes the write (the
        caller's transaction rolls back)."""
        values = self.validator.validate(data, partial=True)
        workflow = self.workflow if self.workflow and self.workflow.field in values else None
        if old is None:  # for the audit trail, rules and computed fields
            old = await self.get(conn, record_id)
        await self._resolve_references(conn, values, ctx, stored=old)
        if old is not None and self.traversed:
            await self.load_references(conn, [old, values], ctx)
        scope = None
        if old is not None and (self._computes or self.required_if):
            scope = self._derive(values, old, ctx, creating=False)
        if workflow is not None and old is not None:
            before = old.get(workflow.field) or workflow.initial  # set before the workflow
            after = values[workflow.field]
            if before != after:
                scope = scope or Scope(
                    self._view({**old, **values}, ctx), self._view(old, ctx), ctx.user
                )
                workflow.check_move(before, after, scope, ctx.roles)
        children = {name: values.pop(name) for name in self.children if name in values}
        params = self._encode(values)
        params.update(
            updated_at=self._timestamp(dt.datetime.now(dt.UTC)),
            updated_by=ctx.user_id,
            record_id=record_id,
            expected_version=expected_version,
        )
        sql = self._update_sql(tuple(sorted(values)), expected_version is not None)
        try:
            row = await conn.fetchrow(sql.sql, sql.args(params))
        except IntegrityViolation as exc:
            raise await self._integrity_error(conn, exc, values) from None
        if row is None:
            await self._raise_missing_or_stale(conn, record_id, expected_version)
        assert row is not None
        record = self.decode(row)
        check(record)
        errors: list[FieldError] = []
        if self.children:
            await self._attach_children(conn, [record])
            for name, lines in children.items():
                record[name] = await self.children[name]._replace_lines(
                    conn, record_id, lines, ctx, name, errors
                )
            record = self._ordered(record)
        changes = changes_between(old, record, record.keys())
        if changes:
            await self.registry.audit.add(
                conn,
                self.registry.audit.row(
                    self.entity.qualified_name,
                    str(record_id),
                    AuditAction.UPDATE,
                    changes,
                    ctx.user_id,
                ),
            )
        self._check_rules(RuleEvent.UPDATE, record, old, ctx, errors)
        if self.triggers.runs_on(RuleEvent.UPDATE):
            record = await self._run_triggers(conn, RuleEvent.UPDATE, record, old, ctx)
        return record

    async def workflow_moves(
        self, conn: Connection, record: Mapping[str, Any], ctx: WriteContext
    ) -> list[Move]:
        """The workflow's moves out of ``record``'s state, judged for this writer."""
        if self.workflow is None:
            return []
        await self.load_references(conn, [record], ctx)
        view = self._view(record, ctx)
        return self.workflow.moves(view, Scope(view, None, ctx.user), ctx.roles)

    async def load_references(
        self, conn: Connection, records: Iterable[Mapping[str, Any]], ctx: WriteContext
    ) -> None:
        """Load, into the write's cache, the records that this entity's expressions reach
        through references from ``records`` (and their lines): one query per target
        entity, whatever the number of records."""
        if not self.traversed and not any(c.traversed for c in self.children.values()):
            return
        records = list(records)
        wanted: dict[str, set[str]] = {}
        for field_name, target in self.traversed.items():
            for record in records:
                ident = reference_id(record.get(field_name))
                if ident is not None and (target, ident) not in ctx.references:
                    wanted.setdefault(target, set()).add(ident)
        for target, ids in wanted.items():
            found = await self.registry.store_for(target).get_many(conn, [int(i) for i in ids])
            for ident in ids:
                ctx.references[(target, ident)] = found.get(ident)
        for name, child in self.children.items():
            lines = [
                line for r in records for line in (r.get(name) or []) if isinstance(line, dict)
            ]
            if child.traversed and lines:
                await child.load_references(conn, lines, ctx)

    def _view(self, record: Mapping[str, Any] | None, ctx: WriteContext) -> Any:
        """``record`` as expressions see it: traversed references become ``RecordRef``s
        over the loaded targets. The record itself when nothing is traversed."""
        if not self.traversed or record is None:
            return record
        view = dict(record)
        for field_name, target in self.traversed.items():
            ident = reference_id(record.get(field_name))
            if ident is not None:
                view[field_name] = RecordRef(ident, ctx.references.get((target, ident)))
        return view

    async def _run_triggers(
        self,
        conn: Connection,
        event: RuleEvent,
        record: dict[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
    ) -> dict[str, Any]:
        """Run the actions of the rules due after this write; the record as it ends up."""
        record_id = int(record["id"])
        updated = False
        due = self.triggers.due(event, self._view(record, ctx), self._view(old, ctx), ctx.user)
        for rule, actions in due:
            updated = await self._perform(conn, rule, actions, record, ctx, event.value) or updated
        return await self.get(conn, record_id) if updated else record

    async def _perform(
        self,
        conn: Connection,
        rule: RuleDef,
        actions: list[tuple[Any, dict[str, Any]]],
        record: Mapping[str, Any],
        ctx: WriteContext,
        event: str,
    ) -> bool:
        """Run one rule's resolved actions for ``record``; whether it updated the record."""
        record_id = int(record["id"])
        step = CascadeStep(self.entity.qualified_name, str(record_id), rule.name)
        error = cascade_error(ctx.cascade, step)
        if error is not None:
            raise error
        caller = self._rights(rule, ctx)
        roles = caller.roles if caller is not None else None
        nested = dataclasses.replace(ctx, cascade=(*ctx.cascade, step), roles=roles)
        updated = False
        for action, values in actions:
            if action.deferred or action.kind.is_outbound:
                kind, payload = _event(action, values, event, record, self.entity)
                outgoing = NewEvent(
                    kind, self.entity.qualified_name, str(record_id), rule.name, payload
                )
                ctx.events.append(await self.registry.outbox.add(conn, outgoing))
            elif action.kind is ActionKind.CREATE:
                target = self.registry.store_for(action.entity or self.entity.qualified_name)
                if caller is None:
                    await target.create(conn, values, nested)
                else:
                    await _as_rule(
                        rule, GuardedStore(target, caller).create(conn, values, nested, None)
                    )
            elif event == RuleEvent.DELETE.value:
                message = "a deleted record cannot be updated"
                raise ValidationFailed([FieldError("", "rule", message, rule=rule.name)])
            else:
                if caller is None:
                    await self.update(conn, record_id, values, nested)
                else:
                    changed = GuardedStore(self, caller).update(conn, record_id, values, nested)
                    await _as_rule(rule, changed)
                updated = True
        return updated

    def _rights(self, rule: RuleDef, ctx: WriteContext) -> Caller | None:
        """Whose rights the rule's writes have (its ``run_as``); None: every right. With
        ``run_as: user`` and no user (the command line, fixtures), none limits them."""
        if rule.run_as == RUN_AS_SYSTEM:
            return None
        if rule.run_as == RUN_AS_USER:
            if ctx.user is None:
                return None
            return Caller(ctx.user, ctx.user.roles, self.registry.access)
        actor = ctx.user if ctx.user is not None else NO_USER
        policy = self.registry.access
        return Caller(actor, policy.project.role_closure({rule.run_as}), policy)

    async def run_scheduled(self, conn: Connection, name: str, ctx: WriteContext) -> int:
        """Run the scheduled rule ``name`` on every record its filter selects, each in a
        savepoint: a record whose actions fail is logged and left out, the others go on.
        The number of records acted on."""
        rule = self.scheduled.rule(name)
        acted = 0
        after = 0
        while True:
            page = self._sql.ids_after
            rows = await conn.fetch(page.sql, page.args({"after": after, "limit": SCHEDULE_PAGE}))
            ids = [int(row[0]) for row in rows]
            if not ids:
                return acted
            after = ids[-1]
            records = await self.get_many(conn, ids)
            await self.load_references(conn, records.values(), ctx)
            for record in records.values():
                queued = len(ctx.events)
                try:
                    actions = self.scheduled.resolve(name, self._view(record, ctx), ctx.user)
                    if actions is None:
                        continue
                    async with conn.savepoint():
                        await self._perform(conn, rule, actions, record, ctx, "schedule")
                except (EngineError, IntegrityViolation, ValueError, TypeError) as exc:
                    del ctx.events[queued:]
                    log.warning(
                        "scheduled rule %s skipped %s#%s: %s",
                        name,
                        self.entity.qualified_name,
                        record["id"],
                        getattr(exc, "detail", None) or exc,
                    )
                    continue
                acted += 1

    def _derive(
        self,
        values: dict[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
        *,
        creating: bool,
    ) -> Scope:
        """Before the statement, over one scope of the record as it will be stored: computed
        fields (the lines' first; a line sent with an id over its stored values and the ones
        sent), then ``required_if``, then on create the rules that need nothing the database
        assigns."""
        for name, child in self.children.items():
            if not child.computed or not values.get(name):
                continue
            old_lines = {str(line["id"]): line for line in (old or {}).get(name, [])}
            for line in values[name]:
                base = old_lines.get(str(line.get("id")), child._blank_record)
                view = child._view({**base, **line}, ctx)
                line.update(child.computed.compute(Scope(view, None, ctx.user)))
        record = {**(old or self._blank_record), **values}
        view = self._view(record, ctx)
        scope = Scope(view, self._view(old, ctx), ctx.user)
        if creating and self.defaults:
            filled = self.defaults.fill(values, scope)
            values.update(filled)
            record.update(filled)
        if self.computed:
            computed = self.computed.compute(scope)
            values.update(computed)
            record.update(computed)
        if self.required_if:
            self.required_if.check(record, scope)
        if creating:
            self.rules.check_before_insert(scope)
        return scope

    async def delete(
        self,
        conn: Connection,
        record_id: int,
        *,
        expected_version: int | None = None,
        ctx: WriteContext | None = None,
        old: dict[str, Any] | None = None,
    ) -> None:
        ctx = ctx or WriteContext()
        if old is None:  # for the audit trail and the delete rules
            old = await self.get(conn, record_id)
        if self.rules.runs_on(RuleEvent.DELETE) or self.triggers.runs_on(RuleEvent.DELETE):
            await self.load_references(conn, [old], ctx)
            view = self._view(old, ctx)
            self.rules.check(RuleEvent.DELETE, view, view, ctx.user)
        sql = self._sql.delete if expected_version is None else self._sql.delete_versioned
        args = (record_id,) if expected_version is None else (record_id, expected_version)
        try:
            changed = await conn.execute(sql.sql, args)
        except IntegrityViolation:
            # the database's detail names a table: an internal name, and a record's
            # neighbours the caller may not be allowed to know of
            raise Conflict(
                f"this {self.entity.label.lower()} is still referenced by other records; "
                "change or delete those first"
            ) from None
        if not changed:
            await self._raise_missing_or_stale(conn, record_id, expected_version)
        await self.registry.audit.add(
            conn,
            self.registry.audit.row(
                self.entity.qualified_name,
                str(record_id),
                AuditAction.DELETE,
                changes_between(old, None, old.keys()),
                ctx.user_id,
            ),
        )
        if self.triggers.runs_on(RuleEvent.DELETE):
            await self._run_triggers(conn, RuleEvent.DELETE, old, old, ctx)

    async def upsert(
        self, conn: Connection, field_name: str, key_value: Any, data: Any, ctx: WriteContext
    ) -> tuple[dict[str, Any], bool]:
        """Update the record whose unique ``field_name`` equals ``key_value``, or create it
        (see ``upsert_with``)."""
        if not isinstance(data, dict):
            raise ValidationFailed([FieldError("", "type", "a record must be a JSON object")])

        async def create(body: Any, key: str) -> dict[str, Any] | None:
            return await self.create_unless_taken(conn, body, ctx, key)

        async def update(record_id: int) -> dict[str, Any]:
            return await self.update(conn, record_id, data, ctx)

        return await self.upsert_with(conn, field_name, key_value, data, create, update)

    async def upsert_with(
        self,
        conn: Connection,
        field_name: str,
        key_value: Any,
        data: Any,
        create: Callable[[Any, str], Awaitable[dict[str, Any] | None]],
        update: Callable[[int], Awaitable[dict[str, Any]]],
    ) -> tuple[dict[str, Any], bool]:
        """An upsert as one atomic step of the caller's transaction, whatever other
        transactions do with the same key at the same time:

        1. look the key up, locking the record found until the transaction ends (``FOR
           UPDATE``) and given to ``update``: the update's checks, rules and audit;
        2. none: ``create`` the record from ``data`` and the key, giving way to a record
           with the same key (``create`` is passed ``field_name``, for
           ``create_unless_taken``, and answers None when it gave way): ``INSERT … ON
           CONFLICT (key) DO NOTHING`` waits for a concurrent transaction that has just
           inserted that key and inserts nothing if it commits;
        3. it gave way: back to 1, which now finds that record and updates it.

        So concurrent upserts of a new key answer one create and then updates, never a
        conflict. Each branch does exactly what a create or an update does (the create's
        rights, rules and triggers on one side, the update's on the other), which one
        ``INSERT … ON CONFLICT DO UPDATE`` could not. On SQLite write transactions run one
        at a time, so step 1 always sees the committed record. ``create`` and ``update``
        are the store's own or a ``GuardedStore``'s, which check the caller's rights. The
        body may give the key field a new value when it updates (a rename), not when it
        creates: the record created is the one the path names (a 422 otherwise), so that
        sending the same upsert again updates it. A record deleted between 2 and 1 makes
        the upsert start again, ``UPSERT_ATTEMPTS`` times at most."""
        key = self._upsert_key(field_name, key_value)
        body = dict(data) if isinstance(data, dict) else data
        if isinstance(body, dict):
            body.setdefault(field_name, key_value)
        for _ in range(UPSERT_ATTEMPTS):
            existing = await self.upsert_target(conn, field_name, key_value)
            if existing is not None:
                return await update(existing), False
            if isinstance(body, dict) and self._upsert_key(field_name, body[field_name]) != key:
                message = (
                    f"must be the key in the path ({key_value!r}) when the record is created: "
                    "no record has that key"
                )
                raise ValidationFailed([FieldError(field_name, "key", message)])
            created = await create(body, field_name)
            if created is not None:
                return created, True
        raise Conflict(
            f"the {self.entity.label.lower()} with this {field_name} was created and deleted "
            "by other writes while this one ran; send it again"
        )

    def _upsert_key(self, field_name: str, value: Any) -> Any:
        """``value`` as a value of the unique field ``field_name``; a 422 when it is not one."""
        field = self.entity.fields.get(field_name)
        try:
            if field is None or field_name not in self.entity.unique_fields():
                raise InvalidValue("reference", f"'{field_name}' is not a unique field")
            if value is None:
                raise InvalidValue("required", "is required")
            return kind_of(field).coercer(field)(value)
        except InvalidValue as exc:
            raise ValidationFailed([FieldError(field_name, exc.code, exc.message)]) from None

    async def upsert_target(self, conn: Connection, field_name: str, key_value: Any) -> int | None:
        """The id of the record an upsert on ``field_name`` = ``key_value`` updates, locked
        until the transaction ends (so that the update reads and writes it as it is), or
        None (it creates); a key that is not a valid value of the field is a 422."""
        try:
            return await self.id_by_unique(conn, field_name, key_value, lock=True)
        except InvalidValue as exc:
            raise ValidationFailed([FieldError(field_name, exc.code, exc.message)]) from None

    async def _raise_missing_or_stale(
        self, conn: Connection, record_id: int, expected_version: int | None
    ) -> None:
        row = await conn.fetchrow(self._sql.version.sql, (record_id,))
        if row is None:
            raise RecordNotFound(f"no {self.entity.qualified_name} record with id {record_id}")
        raise StaleVersion(
            f"the record is at version {row[0]}, not {expected_version}; "
            "read it again and reapply your change"
        )

    def _update_sql(self, names: tuple[str, ...], versioned: bool) -> CompiledSql:
        key = (names, versioned)
        sql = self._update_cache.get(key)
        if sql is None:
            sql = self._sql.update(names, versioned)
            self._update_cache[key] = sql
        return sql

    async def _resolve_references(
        self,
        conn: Connection,
        values: dict[str, Any],
        ctx: WriteContext | None = None,
        *,
        stored: Mapping[str, Any] | int | None = None,
    ) -> None:
        """Replace each reference written as ``{"<unique field>": value}`` by the id it
        names; with a writer whose rights are limited (``ctx.roles``), also refuse every
        reference to a record the writer may not read exactly like one to a missing record,
        so that a write cannot tell whether such a record exists. ``stored`` (the record
        being updated, or its id) exempts a reference left as it is."""
        limits = self._limits(ctx)
        errors = []
        for name, value in values.items():
            if limits is not None and not isinstance(value, ReferenceByKey):
                if await self._refused_reference(conn, limits, name, value, ctx, stored):
                    errors.append(FieldError(name, "reference", MISSING_REFERENCE))
                continue
            if isinstance(value, ReferenceByKey):
                target = self.registry.store_for(self.entity.fields[name].to or "")
                try:
                    if limits is not None:
                        _check_lookup_key(limits, target, value.key_field)
                    found = await target.id_by_unique(conn, value.key_field, value.value)
                except InvalidValue as exc:
                    errors.append(FieldError(name, exc.code, exc.message))
                    continue
                if (
                    found is not None
                    and limits is not None
                    and not await _may_point_at(conn, limits, target, found, ctx)
                ):
                    found = None  # answered like a missing record: no existence oracle
                if found is None:
                    errors.append(
                        FieldError(
                            name,
                            "reference",
                            f"no {target.entity.qualified_name} record with "
                            f"{value.key_field} = {value.value!r}",
                        )
                    )
                else:
                    values[name] = found
        if errors:
            raise ValidationFailed(errors)

    def _limits(self, ctx: WriteContext | None) -> Caller | None:
        """Whose read rights limit the records a write may point at: the writer's, or the
        role a rule runs as (``ctx.roles``); None for the engine's own writes (the command
        line, fixtures, rules running as the system), which may point anywhere."""
        if ctx is None or ctx.roles is None or ADMIN_ROLE in ctx.roles:
            return None
        return Caller(ctx.user or NO_USER, ctx.roles, self.registry.access)

    async def _refused_reference(
        self,
        conn: Connection,
        limits: Caller,
        name: str,
        value: Any,
        ctx: WriteContext | None,
        stored: Mapping[str, Any] | int | None,
    ) -> bool:
        """Whether the id ``value`` of the reference field ``name`` points at a record the
        writer may not read (or at no record: the same answer), and is not the value the
        record already holds nor one the pack chose (a default, a computed field)."""
        field = self.entity.fields.get(name)
        if field is None or field.type is not FieldType.REFERENCE or field.computed:
            return False
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        if value == self._reference_defaults.get(name):
            return False
        target = self.registry.store_for(field.to or "")
        if await _may_point_at(conn, limits, target, value, ctx):
            return False
        if isinstance(stored, int):
            stored = (await self.get_many(conn, [stored])).get(str(stored))
        return stored is None or reference_id(stored.get(name)) != str(value)

    @functools.cached_property
    def _reference_defaults(self) -> dict[str, Any]:
        """The constant default id of each reference field that has one."""
        defaults = {}
        for field in self.stored_fields:
            if field.type is FieldType.REFERENCE and field.default is not None:
                try:
                    defaults[field.name] = kind_of(field).coercer(field)(field.default)
                except InvalidValue:
                    continue
        return defaults

    async def _number(self, conn: Connection, values: dict[str, Any]) -> None:
        for name, fmt in self._autonumbers:
            values[name] = await self._next_number(conn, name, fmt)

    async def _next_number(self, conn: Connection, field_name: str, fmt: str) -> str:
        today = dt.datetime.now(dt.UTC)
        dates = {
            "YYYY": f"{today:%Y}",
            "YY": f"{today:%y}",
            "MM": f"{today:%m}",
            "DD": f"{today:%d}",
        }
        prefix = _AUTONUMBER_TOKEN.sub(lambda m: dates.get(m.group(1), m.group(0)), fmt)
        series = f"{self.entity.qualified_name}.{field_name}:{prefix}"
        row = await conn.fetchrow(self._sql.next_number.sql, (series,))
        assert row is not None
        number = int(row[0])
        return _AUTONUMBER_TOKEN.sub(
            lambda m: f"{number:0{len(m.group(1))}d}" if m.group(1).startswith("#") else m.group(0),
            prefix,
        )

    async def _integrity_error(
        self, conn: Connection, exc: IntegrityViolation, values: Mapping[str, Any]
    ) -> Exception:
        columns = exc.columns
        match = _KEY_DETAIL.search(exc.detail)
        if match:
            columns = tuple(c.strip().strip('"') for c in match.group(1).split(","))
        if exc.kind == "unique":
            fields = [c for c in columns if c in self.entity.fields] or list(columns)
            return self.unique_conflict(fields)
        if exc.kind == "foreign_key":
            fields = [c for c in columns if c in self.entity.fields]
            if not fields:
                fields = await self._missing_references(conn, values)
            return ValidationFailed(
                [FieldError(f, "reference", MISSING_REFERENCE) for f in fields]
                or [FieldError("", "reference", "refers to a missing record")]
            )
        return ValidationFailed([FieldError(c, "required", "is required") for c in columns])

    def unique_conflict(self, fields: Sequence[str]) -> Conflict:
        """The 409 of a value a unique field already holds. It says only that the value is
        taken (which a unique constraint cannot hide), never which record holds it, and reads
        the same whether or not the writer may read that record."""
        listing = ", ".join(fields)
        plural = self.entity.label_plural.lower()
        return Conflict(
            f"this {listing} is already in use: it must be unique among all {plural}",
            [FieldError(f, "unique", "is already in use") for f in fields],
        )

    async def _missing_references(self, conn: Connection, values: Mapping[str, Any]) -> list[str]:
        missing = []
        for field in self.stored_fields:
            value = values.get(field.name)
            if field.type is FieldType.REFERENCE and isinstance(value, int):
                target = self.registry.store_for(field.to or "")
                if not await target.get_many(conn, [value]):
                    missing.append(field.name)
        return missing

    # -- children --------------------------------------------------------------------------

    async def _replace_lines(
        self,
        conn: Connection,
        parent_id: int,
        lines: list[dict[str, Any]],
        ctx: WriteContext,
        field_name: str,
        errors: list[FieldError],
    ) -> list[dict[str, Any]]:
        """Make the parent's lines exactly ``lines``: keep those sent with an id, add the new
        ones, delete the rest. Positions follow list order. The line entity's rules run on
        each line as stored (``create`` rules on new lines, ``update`` rules on kept ones,
        with ``old``); their failures are added to ``errors``, at
        ``<field_name>[<position>].<field>``, for the parent to report with its own."""
        stored: dict[int, dict[str, Any]] = {}
        if self.rules.runs_on(RuleEvent.UPDATE):  # kept lines are judged against ``old``
            rows = await conn.fetch(self._sql.lines_of.sql, (parent_id,))
            stored = {int(line["id"]): line for line in (self.decode(row) for row in rows)}
            existing = set(stored)
        else:
            rows = await conn.fetch(self._sql.line_ids.sql, (parent_id,))
            existing = {int(row[0]) for row in rows}
        kept = {line["id"] for line in lines if "id" in line}
        unknown = kept - existing
        if unknown:
            raise ValidationFailed(
                [
                    FieldError(
                        "id", "reference", f"line {line['id']} is not a line of this record"
                    ).within(field_name, position)
                    for position, line in enumerate(lines)
                    if line.get("id") in unknown
                ]
            )
        for stale in sorted(existing - kept):
            await conn.execute(self._sql.delete.sql, (stale,))
        result = []
        for position, line in enumerate(lines):
            values = dict(line)
            line_id = values.pop("id", None)
            try:
                await self._resolve_references(conn, values, ctx, stored=line_id)
            except ValidationFailed as exc:
                raise _at_line(exc, field_name, position) from None
            if line_id is None:  # a kept line keeps its number
                await self._number(conn, values)
            now = self._timestamp(dt.datetime.now(dt.UTC))
            params = self._encode(values)
            params.update(
                {
                    PARENT_COLUMN: parent_id,
                    POSITION_COLUMN: position,
                    "updated_at": now,
                    "updated_by": ctx.user_id,
                }
            )
            try:
                if line_id is None:
                    params.update(created_at=now, created_by=ctx.user_id, version=1)
                    row = await conn.fetchrow(
                        self._sql.insert.sql, [params.get(n) for n in self._sql.insert.names]
                    )
                else:
                    params["record_id"] = line_id
                    names = tuple(sorted({*values, POSITION_COLUMN}))
                    sql = self._update_sql(names, False)
                    row = await conn.fetchrow(sql.sql, sql.args(params))
            except IntegrityViolation as exc:
                error = await self._integrity_error(conn, exc, values)
                if isinstance(error, ValidationFailed):
                    error = _at_line(error, field_name, position)
                raise error from None
            assert row is not None
            result.append(self.decode(row))
        await self._check_lines(conn, result, lines, stored, ctx, field_name, errors)
        return result

    async def _check_lines(
        self,
        conn: Connection,
        written: list[dict[str, Any]],
        sent: list[dict[str, Any]],
        stored: Mapping[int, dict[str, Any]],
        ctx: WriteContext,
        field_name: str,
        errors: list[FieldError],
    ) -> None:
        """This line entity's rules on each line as written (``sent`` says which were new)."""
        if not written or not (
            self.rules.runs_on(RuleEvent.CREATE) or self.rules.runs_on(RuleEvent.UPDATE)
        ):
            return
        if self.traversed:
            await self.load_references(conn, written, ctx)
        for position, (line, request) in enumerate(zip(written, sent, strict=True)):
            old = stored.get(request["id"]) if "id" in request else None
            event = RuleEvent.CREATE if "id" not in request else RuleEvent.UPDATE
            view, old_view = self._view(line, ctx), self._view(old, ctx)
            failures = self.rules.failures(event, view, old_view, ctx.user)
            errors.extend(failure.within(field_name, position) for failure in failures)


def _at_line(exc: ValidationFailed, field_name: str, position: int) -> ValidationFailed:
    """A line's errors as the parent reports them: at ``<field_name>[<position>].<field>``."""
    return ValidationFailed([error.within(field_name, position) for error in exc.errors])


def _event(
    action: Any, values: dict[str, Any], event: str, record: Mapping[str, Any], entity: EntityDef
) -> tuple[str, dict[str, Any]]:
    """The kind and payload of the outbox event of an action: a deferred create or update
    with its resolved values; an e-mail as rendered; a webhook's URL and the JSON document
    it will POST (the record as written, unless the action gives a payload)."""
    if action.deferred:
        target = action.entity or entity.qualified_name
        return DEFERRED_ACTION, {"action": action.kind.value, "entity": target, "values": values}
    if action.kind is ActionKind.EMAIL:
        return action.kind.value, values
    data = values["data"] if values.get("data") is not None else dict(record)
    return action.kind.value, {"url": values["url"], "event": event, "data": data}


class _StoreSql:
    """The fixed SQL of one entity. Each statement is compiled once, on first use, so that an
    instance with hundreds of entities starts fast and pays only for what it serves."""

    def __init__(self, store: EntityStore) -> None:
        self.store = store
        self.table = store.table
        self.dialect = store.dialect
        self._by_field: dict[str, CompiledSql] = {}
        self._by_field_locked: dict[str, CompiledSql] = {}
        self._unless_taken: dict[tuple[str, bool], CompiledSql] = {}

    @functools.cached_property
    def _columns(self) -> list[Any]:
        return [self.table.c[name] for name in self.store.columns]

    @functools.cached_property
    def get(self) -> CompiledSql:
        statement = select(*self._columns).where(self.table.c.id == bindparam("id"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def get_many(self) -> CompiledSql:
        condition = id_list_condition(self.table.c.id, self.store.dialect_name, "ids")
        return compile_sql(select(*self._columns).where(condition), self.dialect)

    @functools.cached_property
    def version(self) -> CompiledSql:
        statement = select(self.table.c.version).where(self.table.c.id == bindparam("id"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def insert(self) -> CompiledSql:
        return self._insert_plain(None)

    @functools.cached_property
    def insert_audited(self) -> CompiledSql:
        return self._insert_audited(None)

    def insert_unless_taken(self, key: str | None, *, audited: bool) -> CompiledSql:
        """The INSERT of a create (``audited``: with its audit row, on PostgreSQL); with
        ``key``, one that inserts nothing, and returns no row, when a record already holds
        the value of that unique field (``ON CONFLICT (key) DO NOTHING``)."""
        if key is None:
            return self.insert_audited if audited else self.insert
        sql = self._unless_taken.get((key, audited))
        if sql is None:
            sql = self._insert_audited(key) if audited else self._insert_plain(key)
            self._unless_taken[key, audited] = sql
        return sql

    def _insert_into(self, key: str | None) -> Any:
        if key is None:
            return insert(self.table)
        statement = self._dialect_insert(self.table)
        return statement.on_conflict_do_nothing(index_elements=[self.table.c[key]])

    def _insert_plain(self, key: str | None) -> CompiledSql:
        names = [n for n in self.store.columns if n != "id"]
        if self.store.entity.is_child:
            names += [PARENT_COLUMN, POSITION_COLUMN]
        statement = self._insert_into(key).returning(*self._columns)
        return compile_sql(statement, self.dialect, names)

    def _insert_audited(self, key: str | None) -> CompiledSql:
        """PostgreSQL: the INSERT and its audit row as one statement (a data-modifying
        CTE), so a create stays a single round trip and needs no transaction. An INSERT
        that gives way to an existing ``key`` returns no row, and so writes no audit row."""
        table = self.table
        names = [n for n in self.store.columns if n != "id"]
        written = (
            self._insert_into(key)
            .values({n: bindparam(n, type_=table.c[n].type) for n in names})
            .returning(*self._columns)
            .cte("written")
        )
        audit_columns = ["at", "user_id", "entity", "record_id", "action", "changes"]
        audited = (
            insert(audit_table)
            .from_select(
                audit_columns,
                select(
                    bindparam("audit_at", type_=Float()),
                    bindparam("audit_user", type_=String()),
                    literal(self.store.entity.qualified_name, type_=String()),
                    cast(written.c.id, String()),
                    literal(AuditAction.CREATE.value, type_=String()),
                    bindparam("audit_changes", type_=Text()),
                ).select_from(written),
            )
            .cte("audited")
        )
        statement = select(*(written.c[n] for n in self.store.columns)).add_cte(audited)
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def delete(self) -> CompiledSql:
        statement = delete(self.table).where(self.table.c.id == bindparam("id"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def delete_versioned(self) -> CompiledSql:
        table = self.table
        condition = and_(
            table.c.id == bindparam("id"), table.c.version == bindparam("expected_version")
        )
        return compile_sql(delete(table).where(condition), self.dialect)

    @functools.cached_property
    def next_number(self) -> CompiledSql:
        return compile_sql(self._sequence_upsert(sequence_table), self.dialect)

    @functools.cached_property
    def children_of(self) -> CompiledSql:
        parent = self.table.c[PARENT_COLUMN]
        statement = (
            select(parent, *self._columns)
            .where(id_list_condition(parent, self.store.dialect_name, "ids"))
            .order_by(parent, self.table.c[POSITION_COLUMN])
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def ids_after(self) -> CompiledSql:
        """A page of ids in order, for walking every record (scheduled rules)."""
        table = self.table
        statement = (
            select(table.c.id)
            .where(table.c.id > bindparam("after"))
            .order_by(table.c.id)
            .limit(bindparam("limit"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def lines_of(self) -> CompiledSql:
        """The stored lines of one parent."""
        parent = self.table.c[PARENT_COLUMN]
        statement = select(*self._columns).where(parent == bindparam("parent"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def line_ids(self) -> CompiledSql:
        statement = select(self.table.c.id).where(
            self.table.c[PARENT_COLUMN] == bindparam("parent")
        )
        return compile_sql(statement, self.dialect)

    def _dialect_insert(self, table: Table) -> Any:
        """An INSERT that can take ``ON CONFLICT`` (PostgreSQL's and SQLite's own)."""
        from sqlalchemy.dialects.postgresql import insert as postgres_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        if self.store.dialect_name == "postgresql":
            return postgres_insert(table)
        return sqlite_insert(table)

    def _sequence_upsert(self, sequence: Table) -> Any:
        one: Any = literal_column("1")
        statement = self._dialect_insert(sequence).values(series=bindparam("series"), value=one)
        return statement.on_conflict_do_update(
            index_elements=[sequence.c.series], set_={"value": sequence.c.value + one}
        ).returning(sequence.c.value)

    def id_by_field(self, field_name: str, *, lock: bool = False) -> CompiledSql:
        """The id of the record whose ``field_name`` is a value; ``lock``: locking it until
        the transaction ends (``FOR UPDATE``; SQLite has none, and needs none: its write
        transactions run one at a time)."""
        cache = self._by_field_locked if lock else self._by_field
        sql = cache.get(field_name)
        if sql is None:
            table = self.store.table
            statement = select(table.c.id).where(table.c[field_name] == bindparam("value"))
            if lock:
                statement = statement.with_for_update()
            sql = compile_sql(statement, self.store.dialect)
            cache[field_name] = sql
        return sql

    def update(self, names: tuple[str, ...], versioned: bool) -> CompiledSql:
        table = self.store.table
        condition = table.c.id == bindparam("record_id")
        if versioned:
            condition = and_(condition, table.c.version == bindparam("expected_version"))
        columns = [table.c[name] for name in self.store.columns]
        statement = (
            update(table).where(condition).values(version=table.c.version + literal_column("1"))
        )
        return compile_sql(
            statement.returning(*columns), self.store.dialect, [*names, "updated_at", "updated_by"]
        )


NO_USER = Actor("", "", frozenset())
"""The actor of a rule running as a role with no writing user (a scheduled run)."""


async def _as_rule(rule: RuleDef, write: Awaitable[Any]) -> None:
    """Await a write of ``rule``'s actions limited by its ``run_as``; a refusal names the
    rule, so that the writer learns which consequence of their write was not allowed."""
    try:
        await write
    except (Forbidden, RecordNotFound) as exc:
        detail = f"rule '{rule.name}' (run_as: {rule.run_as}) may not do this: {exc.detail}"
        raise Forbidden(detail, getattr(exc, "errors", None)) from None


async def _may_point_at(
    conn: Connection, limits: Caller, target: EntityStore, record_id: int, ctx: WriteContext | None
) -> bool:
    """Whether ``limits`` may read ``target``'s record ``record_id``. A caller who may read
    every record of the target needs no lookup (a missing one then fails on the foreign
    key, with the same answer); otherwise the record is loaded, once per write (into
    ``ctx.references``, where expressions find it too), and judged by the read grant."""
    access = limits.access(target.entity.qualified_name)
    if not access.allows(Permission.READ):
        return False
    covered = access.permissions[Permission.READ]
    if covered is None:
        return True
    key = (target.entity.qualified_name, str(record_id))
    if ctx is not None and key in ctx.references:
        record = ctx.references[key]
    else:
        record = (await target.get_many(conn, [record_id])).get(str(record_id))
        if ctx is not None:
            ctx.references[key] = record
    return record is not None and matches(covered, record, limits.actor)


def _check_lookup_key(limits: Caller, target: EntityStore, key_field: str) -> None:
    """A lookup ``{"<unique field>": value}`` may not use a field hidden from the writer
    (it would tell whether a record holds that hidden value): it is answered as if the
    field were not a unique one."""
    hidden = limits.access(target.entity.qualified_name).hidden
    if key_field in hidden:
        unique = ", ".join(f for f in target.entity.unique_fields() if f not in hidden)
        raise InvalidValue(
            "reference",
            f"'{key_field}' is not a unique field of {target.entity.qualified_name} "
            f"(unique fields: {unique or 'none'})",
        )
