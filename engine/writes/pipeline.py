"""The write pipeline of one entity: every create, update and delete goes

    validate → derive → workflow → store → audit → asserts → effects

— the body checked and coerced (``engine.validation``); defaults, computed fields,
``required_if`` and the rules that need nothing the database assigns (``derive``); the
workflow's move judged; the row written (``engine.store``, which also writes the audit
row); the entity's rules on the record as stored (and its lines'); then the actions of the
rules due (``engine.effects``: found by kind, the pipeline names none).

An ``EntityStore`` is compiled once per entity at start-up. Its reads are its record
store's (``records``); the guard (``engine.guard``) wraps it for a caller's rights.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from typing import TYPE_CHECKING, Any

from engine.assignment import Assigner
from engine.audit import AuditAction, changes_between
from engine.database import IntegrityViolation
from engine.effects.triggers import RuleEffects
from engine.errors import EngineError, FieldError, StaleVersion, ValidationFailed
from engine.expressions import Scope, template_names, whole_name
from engine.fieldtypes import ReferenceByKey
from engine.formstate import FormConditions
from engine.lookups import parent_traversed
from engine.postings import settle as postings_settle
from engine.references import expression_sources, traversed_references
from engine.rules import RuleSet
from engine.store import SYSTEM_TAIL, KeyTaken, RecordStore, rows, write_lines
from engine.validation import RecordValidator
from engine.workflow import Move, Workflow
from engine.writes import documents, upsert
from engine.writes.context import PreparedCreate, WriteContext
from engine.writes.derivation import Derivation
from engine.writes.references import References
from metadata import (
    AMENDED_FROM,
    DOCSTATUS,
    RUN_AS_SYSTEM,
    FieldType,
    RecordAction,
    RuleEvent,
    expression_names,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Dialect

    from engine.access import AccessPolicy
    from engine.aggregate import AggregateQuery, AggregateResult
    from engine.audit import AuditLog
    from engine.database import Connection
    from engine.errors import Conflict
    from engine.outbox import Outbox
    from engine.query import ListQuery
    from engine.rollups import Keeper
    from engine.store import ListResult
    from metadata import EntityDef


class _Unfolded(Exception):
    """A create's triggered records cannot be written in its statement after all."""


class _Placeholder(str):
    __slots__ = ()


_NEW_ID_PLACEHOLDER = _Placeholder("1")
"""The id a record about to be created shows its create triggers when the statement itself
hands them the real one (``EntityStore.binds_new_id``): a valid id, told apart from any
other value by identity."""
_SCALARS = (str, int, float, bool, type(None))


class StoreRegistry:
    """Protocol-like base: how a store finds the stores of other entities and the outbox."""

    outbox: Outbox
    audit: AuditLog
    access: AccessPolicy

    def store_for(self, qualified_name: str) -> EntityStore:
        raise KeyError(qualified_name)

    def records_for(self, qualified_name: str) -> RecordStore:
        return self.store_for(qualified_name).records


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
        self.records: RecordStore = RecordStore(
            entity,
            table,
            registry,
            dialect=dialect,
            dialect_name=dialect_name,
            children={name: child.records for name, child in self.children.items()},
        )
        records = self.records
        self.assigner = Assigner(entity, table, records, dialect, dialect_name)
        self.stored_fields = records.stored_fields
        self.columns = records.columns
        self.query_columns = records.query_columns
        self.parser = records.parser
        self.lists = records.lists
        self.aggregate_parser = records.aggregate_parser
        self.aggregates = records.aggregates
        self.validator: RecordValidator = RecordValidator(
            entity, {name: store.validator for name, store in self.children.items()}
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
        self.form_conditions = FormConditions(
            entity, {name: child.entity for name, child in self.children.items()}
        )
        self.workflow = Workflow(entity.workflow) if entity.workflow is not None else None
        self._references = tuple(
            f.name for f in entity.fields.values() if f.type is FieldType.REFERENCE
        )
        """Fields that a create may write as a lookup (``ReferenceByKey``)."""
        self.traversed = traversed_references(entity, expression_sources(entity))
        self.traversed.update(parent_traversed(entity, [c.entity for c in self.children.values()]))
        """Reference fields whose targets' fields expressions read, by target entity."""
        self.references: References = References(
            records,
            self.traversed,
            registry.access,
            {name: child.references for name, child in self.children.items()},
        )
        self.derivation: Derivation = Derivation(
            entity,
            records.blank_record,
            self.references,
            self.rules,
            self.traversed,
            {name: child.derivation for name, child in self.children.items()},
        )
        self.computed = self.derivation.computed
        self.effects = RuleEffects(self, records, self.references, entity.rules, assigned)
        self.triggers = self.effects.triggers
        self.scheduled = self.effects.scheduled
        self.schedules = self.scheduled.schedules
        """Scheduled rules by name: when they run (``engine.scheduling`` runs them)."""
        self.rollups: Keeper | None = None
        """What this entity's writes keep of other records' rollups (``engine.rollups``; set
        by the ``EngineModel``); None when no rollup reads it, and its writes pay nothing."""

    # -- reads (the record store's) ------------------------------------------------------------

    def decode(self, row: Sequence[Any], names: Sequence[str] | None = None) -> dict[str, Any]:
        return self.records.decode(row, names)

    async def get(self, conn: Connection, record_id: int) -> dict[str, Any]:
        return await self.records.get(conn, record_id)

    async def get_many(self, conn: Connection, ids: Sequence[int]) -> dict[str, dict[str, Any]]:
        return await self.records.get_many(conn, ids)

    async def list_page(self, conn: Connection, query: ListQuery) -> ListResult:
        return await self.records.list_page(conn, query)

    async def aggregate(self, conn: Connection, query: AggregateQuery) -> AggregateResult:
        return await self.records.aggregate(conn, query)

    async def expand_one(
        self, conn: Connection, record: dict[str, Any], names: Sequence[str]
    ) -> None:
        await self.records.expand_one(conn, record, names)

    async def id_by_unique(
        self, conn: Connection, field_name: str, value: Any, *, lock: bool = False
    ) -> int | None:
        return await self.records.id_by_unique(conn, field_name, value, lock=lock)

    def unique_conflict(self, fields: Sequence[str]) -> Conflict:
        return self.records.unique_conflict(fields)

    # -- create ----------------------------------------------------------------------------

    def prepare_create(
        self, data: Any, ctx: WriteContext, *, validated: dict[str, Any] | None = None
    ) -> PreparedCreate:
        """Everything about a create that needs no database: validation, computed fields,
        ``required_if``, the rules that can run before the INSERT, and whether a trigger
        can be due (which decides whether the create needs a transaction). ``validated``:
        what ``self.validator.validate(data)`` returned for this very ``data`` already (a
        ledger row's values, checked before anything was posted), taken as it is."""
        values = validated if validated is not None else self.validator.validate(data)
        if self.workflow is not None:
            self.workflow.check_create(data, values)
        derivation = self.derivation
        if derivation.loads(values):
            return PreparedCreate(values, None, derived=False)
        scope = derivation.derive(values, None, ctx, creating=True) if derivation.derives else None
        due: bool | None = False
        if self.triggers.runs_on(RuleEvent.CREATE):
            if scope is None:
                scope = Scope({**self.records.blank_record, **values}, None, ctx.user)
            due = self.triggers.due_before_insert(scope)
        return PreparedCreate(values, due)

    def writes_one_statement(self, prepared: PreparedCreate) -> bool:
        """Whether this create is a single SQL statement (no lines, no numbering, no
        lookups, no rule or action after the INSERT), which is atomic without an explicit
        transaction and saves the BEGIN and COMMIT round trips."""
        values = prepared.values
        if self.dialect_name != "postgresql":
            return False  # the audit row is a second statement (PostgreSQL writes it in a CTE)
        if self.assigner.runs_on(RuleEvent.CREATE):
            return False  # the assignment locks its rule's cursor until the create commits
        if self.rollups is not None:
            return False  # the records it keeps are updated in the same transaction
        if self.records.autonumbers or any(name in values for name in self.children):
            return False
        if self.rules.runs_on(RuleEvent.CREATE) or prepared.triggers_due is None:
            return False  # a broken rule or a failing action must undo the insert
        if prepared.triggers_due and not self.folds_create_triggers:
            return False
        return not any(isinstance(values.get(n), ReferenceByKey) for n in self._references)

    @functools.cached_property
    def folds_create_triggers(self) -> bool:
        """Whether the records this entity's create triggers make are written in the same
        statement as the record (PostgreSQL): every action of a create trigger is a
        ``create`` with every right (``run_as: system``) of another entity whose creates are
        themselves one statement (no lines, numbering, rules after the INSERT or triggers).
        The new record's id is then drawn first (``nextval``), so that the triggers are
        resolved before the INSERT: two round trips, no transaction."""
        if self.dialect_name != "postgresql" or self.children or self.records.autonumbers:
            return False
        rules = [r for r in self.entity.rules if r.actions and r.schedule is None]
        rules = [r for r in rules if RuleEvent.CREATE in r.events]
        if not rules or self.traversed:
            return False
        for rule in rules:
            if rule.run_as != RUN_AS_SYSTEM:
                return False
            for action in rule.actions:
                if not isinstance(action, RecordAction) or not action.creates:
                    return False
                if action.deferred or action.entity is None or action.reads_back:
                    return False
                target = self.registry.store_for(action.entity)
                if (
                    target is self
                    or target.children
                    or target.records.autonumbers
                    or target.traversed
                    or target.rules.runs_on(RuleEvent.CREATE)
                    or target.triggers.runs_on(RuleEvent.CREATE)
                    or target.rollups is not None  # keeps others in a transaction
                ):
                    return False
        return True

    @functools.cached_property
    def binds_new_id(self) -> bool:
        """Whether the records this entity's create triggers make (``folds_create_triggers``)
        need nothing of the new record's id but a reference to it: every value of their
        actions that reads ``id`` is exactly ``{{ id }}``, for a reference field of a target
        that derives nothing from its values. Then the statement itself hands the id to
        them, and the create is one round trip (no ``nextval`` first)."""
        if not self.folds_create_triggers:
            return False
        for rule in self.entity.rules:
            if not rule.actions or rule.schedule is not None or RuleEvent.CREATE not in rule.events:
                continue
            if rule.when and "id" in expression_names(rule.when):
                return False
            for action in rule.actions:
                assert isinstance(action, RecordAction)
                assert action.entity is not None  # folds_create_triggers
                target = self.registry.store_for(action.entity)
                for name, value in action.values.items():
                    if whole_name(value) == "id":
                        field = target.entity.fields.get(name)
                        if field is None or field.type is not FieldType.REFERENCE:
                            return False
                        if target.derivation.derives:
                            return False
                    elif not isinstance(value, _SCALARS) or "id" in template_names(value):
                        return False  # a nested value (JSON) is not looked into
        return True

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
            await self.references.resolve(conn, values, ctx)
            await self.references.resolve_lines(conn, values, ctx)
            await self.load_references(conn, [values], ctx)
            await self.derivation.look_up(conn, values, None, ctx)
            self.derivation.derive(values, None, ctx, creating=True)
            for check in prepared.checks:
                check(values)
        children = {name: values.pop(name) for name in self.children if name in values}
        await self.references.resolve(conn, values, ctx)
        if (
            key is None
            and prepared.triggers_due
            and not conn.in_transaction  # a failed statement would abort it: no fallback
            and self.writes_one_statement(prepared)
        ):
            return await self._create_with_triggered(conn, values, ctx)
        assigns = self.assigner.runs_on(RuleEvent.CREATE)
        # a create that gives way gives back the numbers it drew and the turn it took
        numbered = key is not None and (bool(self.records.autonumbers) or assigns)
        try:
            async with conn.savepoint() if numbered else contextlib.nullcontext():
                if assigns:
                    await self.assigner.assign(conn, values, None, ctx)
                row, audit = await rows.insert(
                    self.records, conn, values, children, ctx.user_id, key
                )
        except KeyTaken:
            return None
        record = self.records.decode(row)
        if self.dialect_name != "postgresql":  # PostgreSQL wrote it with the INSERT
            await self.registry.audit.add(conn, {**audit, "record_id": str(record["id"])})
        errors: list[FieldError] = []
        if self.children:
            for name, child in self.children.items():
                record[name] = await child._write_lines(
                    conn, int(record["id"]), children.get(name, []), ctx, name, errors
                )
            record = self.records.ordered(record)
        self._check_rules(RuleEvent.CREATE, record, None, ctx, errors)
        written = record  # as this write left it, before its triggers wrote again
        if prepared.triggers_due is not False:
            written = dict(record) if self.rollups is not None else record
            record = await self.effects.after_write(conn, RuleEvent.CREATE, record, None, ctx)
        if self.rollups is not None:
            await self.rollups.after_write(conn, None, record, written=written)
        return record

    async def _create_with_triggered(
        self, conn: Connection, values: dict[str, Any], ctx: WriteContext
    ) -> dict[str, Any]:
        """A create whose create triggers are due (``folds_create_triggers``): its id drawn,
        the triggers resolved over the record as it will be stored, and the record and the
        ones the triggers create written in one statement. Anything else (an action that
        turns out to need more, a value a target refuses, a constraint) makes the create go
        the usual way, in a transaction (or a savepoint), so that it answers exactly as it
        would have."""
        new_id: int | None = None
        placeholder: str = _NEW_ID_PLACEHOLDER
        if not self.binds_new_id:
            next_id = self.records.sql.next_id
            row = await conn.fetchrow(next_id.sql, next_id.args({}))
            assert row is not None
            new_id = int(row[0])
            placeholder = str(new_id)
        now = self.records.timestamp(dt.datetime.now(dt.UTC))
        predicted = {
            **self.records.blank_record,
            **values,
            "id": placeholder,
            "created_at": now,
            "updated_at": now,
            "created_by": ctx.user_id,
            "updated_by": ctx.user_id,
            "version": 1,
        }
        parts: list[tuple[RecordStore, Mapping[str, Any], str | None, tuple[str, ...]]] = [
            (self.records, values, ctx.user_id, ())
        ]
        try:
            for target, data, nested in await self.effects.collect_creates(conn, predicted, ctx):
                store = self.registry.store_for(target.entity.qualified_name)
                prepared = store.prepare_create(data, nested)
                if not store.writes_one_statement(prepared) or prepared.triggers_due:
                    raise _Unfolded
                bound = (
                    ()
                    if new_id is not None
                    else tuple(k for k, v in data.items() if v is placeholder)
                )
                parts.append((store.records, prepared.values, nested.user_id, bound))
            inserted = await rows.insert_together(conn, parts, new_id, now)
        except (EngineError, IntegrityViolation, _Unfolded, ValueError, TypeError):
            async with conn.savepoint():
                return await self._create_unfolded(conn, values, ctx)
        return self.records.decode(inserted)

    async def _create_unfolded(
        self, conn: Connection, values: dict[str, Any], ctx: WriteContext
    ) -> dict[str, Any]:
        """The usual create of an entity without lines or numbering whose create triggers
        are due: the INSERT, then the triggers."""
        row, _ = await rows.insert(self.records, conn, dict(values), {}, ctx.user_id, None)
        record = self.records.decode(row)
        self._check_rules(RuleEvent.CREATE, record, None, ctx, [])
        return await self.effects.after_write(conn, RuleEvent.CREATE, record, None, ctx)

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
        view, old_view = self.references.view(record, ctx), self.references.view(old, ctx)
        failures = [*errors, *self.rules.failures(event, view, old_view, ctx.user)]
        if failures:
            raise ValidationFailed(failures)

    # -- documents (``document: true``; engine.writes.documents) --------------------------

    async def transition(
        self,
        conn: Connection,
        record_id: int,
        event: RuleEvent,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
        old: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``_submit`` (draft → submitted) or ``_cancel`` (submitted → cancelled): the
        status written, an audit row with the action ``submit`` or ``cancel``, the rules
        ``on`` the event checked (every failure at once) and their actions run, all in the
        caller's transaction, which a refusal rolls back (the document keeps its status)."""
        if old is None:
            old = await self.get(conn, record_id)
        before, after = documents.check_move(self.entity, old, event)
        if expected_version is None:  # a concurrent submit or edit: 412, never both
            expected_version = int(old["version"])
        values: dict[str, Any] = {DOCSTATUS: after}
        if event is RuleEvent.SUBMIT and self.records.submit_numbers:
            # drawn first: the series is the first lock a submit takes (no deadlock), and a
            # refused submit rolls the series back with everything else (no gap)
            values.update(await self.records.number_at_submit(conn, old))
        action = AuditAction.SUBMIT if event is RuleEvent.SUBMIT else AuditAction.CANCEL
        changes = {name: [old.get(name), value] for name, value in values.items()}
        changes[DOCSTATUS] = [before, after]
        user_id = ctx.user_id
        if self.dialect_name == "postgresql":  # the status and its audit row: one statement
            record = await rows.update_audited(
                self.records, conn, record_id, values, user_id, expected_version, action, changes
            )
        else:
            record = await rows.update(
                self.records, conn, record_id, values, user_id, expected_version
            )
            await rows.audit(self.records, conn, record_id, action, changes, user_id)
        if self.children:
            if all(name in old for name in self.children):  # a move leaves the lines as read
                for name in self.children:
                    record[name] = [dict(line) for line in old[name]]
            else:
                await self.records.attach_children(conn, [record])
            record = self.records.ordered(record)
        if self.traversed:
            await self.load_references(conn, [old, record], ctx)
        lines = await documents.line_failures(conn, self.children, record, event, ctx)
        self._check_rules(event, record, old, ctx, lines)
        written = record  # as this write left it, before its triggers wrote again
        if self.triggers.runs_on(event):
            written = dict(record) if self.rollups is not None else record
            record = await self.effects.after_write(conn, event, record, old, ctx)
        await postings_settle(conn, self, record_id, event, ctx)  # ledgers, balances
        if self.rollups is not None:
            await self.rollups.after_write(conn, old, record, written=written)
        return record

    async def amend(
        self,
        conn: Connection,
        record_id: int,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
        old: dict[str, Any] | None = None,
        check: Callable[[PreparedCreate], None] = lambda prepared: None,
    ) -> dict[str, Any]:
        """``_amend``: a new draft copy of a cancelled document (its writable fields and
        lines) whose ``amended_from`` is the original; anything but a cancelled document is
        a 409. ``check``: called with the copy's values before it is written."""
        if old is None:
            old = await self.get(conn, record_id)
        if expected_version is not None and int(old["version"]) != expected_version:
            raise StaleVersion(
                f"record {record_id} is at version {old['version']}, not {expected_version}"
            )
        documents.check_amend(self.entity, old)
        children = {name: child.entity for name, child in self.children.items()}
        body = documents.amendment(self.entity, children, old)
        prepared = self.prepare_create(body, ctx)
        prepared.values[AMENDED_FROM] = record_id
        check(prepared)
        return await self.create(conn, body, ctx, prepared=prepared)

    # -- update ----------------------------------------------------------------------------

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
        system_values: Mapping[str, Any] | None = None,
        document_touched: bool = False,
    ) -> dict[str, Any]:
        """``old``: the stored record, when the caller has just read it (in this
        transaction); read here otherwise. ``check``: called with the record as the UPDATE
        stored it, before anything else is written; what it raises undoes the write (the
        caller's transaction rolls back). ``system_values``: values the engine sets itself,
        already coerced, read-only fields included (a posting's increments). A line written
        on its own touches its document first (``RecordStore.touch_documents``), unless the
        caller did (``document_touched``: a posting touches every document it adjusts
        lines of before it locks anything else)."""
        values = self.validator.validate(data, partial=True)
        if system_values:
            values.update(system_values)
        workflow = self.workflow if self.workflow and self.workflow.field in values else None
        if old is None:  # for the audit trail, rules and computed fields
            old = await self.get(conn, record_id)
        documents.check_update(self.entity, old, data, ctx)
        if self.entity.document and expected_version is None and old is not None:
            expected_version = int(old["version"])  # not an edit of what was just submitted
        await self.references.resolve(conn, values, ctx, stored=old)
        if old is not None and self.derivation.loads(values):
            await self.references.resolve_lines(conn, values, ctx, stored=old)
            unsent = {name for name in self.children if name not in values}
            kept = {k: v for k, v in old.items() if k not in unsent} if unsent else old
            await self.load_references(conn, [kept, values], ctx)
            await self.derivation.look_up(conn, values, old, ctx)
        scope = None
        if old is not None and (self.derivation.computes or self.derivation.required_if):
            scope = self.derivation.derive(values, old, ctx, creating=False)
        if workflow is not None and old is not None:
            before = old.get(workflow.field) or workflow.initial  # set before the workflow
            after = values[workflow.field]
            if before != after:
                view = self.references.view
                scope = scope or Scope(view({**old, **values}, ctx), view(old, ctx), ctx.user)
                workflow.check_move(before, after, scope, ctx.roles)
        await self.assigner.on_update(conn, values, old, ctx)
        children = {name: values.pop(name) for name in self.children if name in values}
        await self._touch_document(conn, record_id, already=document_touched)
        record = await rows.update(
            self.records, conn, record_id, values, ctx.user_id, expected_version
        )
        check(record)
        errors: list[FieldError] = []
        if self.children:
            await self.records.attach_children(conn, [record])
            for name, lines in children.items():
                record[name] = await self.children[name]._write_lines(
                    conn, record_id, lines, ctx, name, errors
                )
            record = self.records.ordered(record)
        changes = changes_between(old, record, record.keys())
        if changes:
            await rows.audit(
                self.records, conn, record_id, AuditAction.UPDATE, changes, ctx.user_id
            )
        self._check_rules(RuleEvent.UPDATE, record, old, ctx, errors)
        written = record  # as this write left it, before its triggers wrote again
        if self.triggers.runs_on(RuleEvent.UPDATE):
            written = dict(record) if self.rollups is not None else record
            record = await self.effects.after_write(conn, RuleEvent.UPDATE, record, old, ctx)
        await self._keep_rollups(conn, old, record, written)
        return record

    async def _touch_document(
        self, conn: Connection, record_id: int, *, already: bool = False
    ) -> None:
        """A line written on its own: its document first (``touch_documents``)."""
        if self.entity.is_child and not already:
            await self.records.touch_documents(conn, [record_id])

    async def _keep_rollups(
        self,
        conn: Connection,
        old: Mapping[str, Any] | None,
        new: dict[str, Any] | None,
        written: Mapping[str, Any] | None = None,
    ) -> None:
        """The rollups this write changed, kept in its transaction (``engine.rollups``);
        ``written``: the record as the write left it, before its triggers (see there)."""
        if self.rollups is not None:
            await self.rollups.after_write(conn, old, new, written=written)

    # -- delete ----------------------------------------------------------------------------

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
        documents.check_delete(self.entity, old)
        if self.entity.document and expected_version is None and old is not None:
            expected_version = int(old["version"])  # not a delete of what was just submitted
        if self.rules.runs_on(RuleEvent.DELETE) or self.triggers.runs_on(RuleEvent.DELETE):
            await self.load_references(conn, [old], ctx)
            view = self.references.view(old, ctx)
            self.rules.check(RuleEvent.DELETE, view, view, ctx.user)
        await self._touch_document(conn, record_id)
        await rows.delete(self.records, conn, record_id, old, ctx.user_id, expected_version)
        if self.triggers.runs_on(RuleEvent.DELETE):
            await self.effects.after_write(conn, RuleEvent.DELETE, old, old, ctx)
        if self.rollups is not None:  # a versioned delete removed ``old`` as read: its delta
            exact = expected_version is not None and expected_version == int(old["version"])
            await self.rollups.after_write(conn, old, None, deleted_as_read=exact)

    # -- upsert ----------------------------------------------------------------------------

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
        """An upsert as one atomic step of the caller's transaction
        (``engine.writes.upsert.upsert_with``)."""
        return await upsert.upsert_with(
            self.records, conn, field_name, key_value, data, create, update
        )

    # -- expressions, workflow and scheduled rules -----------------------------------------

    async def workflow_moves(
        self, conn: Connection, record: Mapping[str, Any], ctx: WriteContext
    ) -> list[Move]:
        """The workflow's moves out of ``record``'s state, judged for this writer."""
        if self.workflow is None:
            return []
        await self.load_references(conn, [record], ctx)
        view = self.references.view(record, ctx)
        return self.workflow.moves(view, Scope(view, None, ctx.user), ctx.roles)

    async def load_references(
        self, conn: Connection, records: Iterable[Mapping[str, Any]], ctx: WriteContext
    ) -> None:
        """Load, into the write's cache, the records that this entity's expressions reach
        through references from ``records`` (and their lines)."""
        await self.references.load(conn, records, ctx)

    async def run_scheduled(self, conn: Connection, name: str, ctx: WriteContext) -> int:
        """Run the scheduled rule ``name`` (``engine.effects.triggers``)."""
        return await self.effects.run_scheduled(conn, name, ctx)

    # -- line items (this store being the line entity's) --------------------------------------

    async def _write_lines(
        self,
        conn: Connection,
        parent_id: int,
        lines: list[dict[str, Any]],
        ctx: WriteContext,
        field_name: str,
        errors: list[FieldError],
    ) -> list[dict[str, Any]]:
        """Make the parent's lines exactly ``lines`` (``engine.store.write_lines``), their
        references resolved for this writer. The line entity's rules run on each line as
        stored (``create`` rules on new lines, ``update`` rules on kept ones, with ``old``);
        their failures are added to ``errors``, at ``<field_name>[<position>].<field>``, for
        the parent to report with its own."""

        async def prepare(values: dict[str, Any], line_id: int | None) -> None:
            await self.references.resolve(conn, values, ctx, stored=line_id)

        written, stored = await write_lines(
            conn,
            self.records,
            parent_id,
            lines,
            ctx.user_id,
            field_name,
            prepare=prepare,
            with_stored=self.rules.runs_on(RuleEvent.UPDATE),  # kept lines are judged on old
        )
        await self._check_lines(conn, written, lines, stored, ctx, field_name, errors)
        return written

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
        view = self.references.view
        for position, (line, request) in enumerate(zip(written, sent, strict=True)):
            old = stored.get(request["id"]) if "id" in request else None
            event = RuleEvent.CREATE if "id" not in request else RuleEvent.UPDATE
            failures = self.rules.failures(event, view(line, ctx), view(old, ctx), ctx.user)
            errors.extend(failure.within(field_name, position) for failure in failures)
