"""The create path of the write pipeline (``engine.writes.pipeline``), which
``EntityStore`` takes in as the ``Creating`` mixin, so that its methods stay the store's
own (no call in between, no indirection per request).

A create is prepared without the database first (``prepare_create``), and then, of the
ways it can be written, takes the fewest round trips that answer exactly as the usual way:
one statement with no transaction (``writes_one_statement``), together with the records
its create triggers make (``folds_create_triggers``, ``binds_new_id``), or the INSERT,
its lines, its rules and its triggers in the caller's transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from typing import TYPE_CHECKING, Any, Protocol

from engine.database import IntegrityViolation
from engine.errors import EngineError
from engine.expressions import Scope, template_names, whole_name
from engine.fieldtypes import ReferenceByKey
from engine.store import KeyTaken, RecordStore, rows
from engine.writes.context import PreparedCreate, WriteContext
from metadata import RUN_AS_SYSTEM, FieldType, RecordAction, RuleEvent, expression_names

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from engine.assignment import Assigner
    from engine.audit import AuditLog
    from engine.database import Connection
    from engine.effects.triggers import RuleEffects, Triggers
    from engine.errors import FieldError
    from engine.rollups import Keeper
    from engine.rules import RuleSet
    from engine.validation import RecordValidator
    from engine.workflow import Workflow
    from engine.writes.derivation import Derivation
    from engine.writes.references import References
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


class _Stores(Protocol):
    """What a create needs of the registry (``engine.writes.pipeline.StoreRegistry``)."""

    audit: AuditLog

    def store_for(self, qualified_name: str) -> Creating: ...


class Creating:
    """``EntityStore``'s creates. What they read of the store is declared here (the store
    sets it, ``EntityStore.__init__``), without naming the pipeline, which imports this."""

    entity: EntityDef
    registry: _Stores
    dialect_name: str
    children: Mapping[str, Creating]
    records: RecordStore
    assigner: Assigner
    validator: RecordValidator
    workflow: Workflow | None
    derivation: Derivation
    references: References
    rules: RuleSet
    triggers: Triggers
    effects: RuleEffects
    rollups: Keeper | None
    traversed: dict[str, str]
    _references: tuple[str, ...]

    if TYPE_CHECKING:

        async def load_references(
            self, conn: Connection, records: Iterable[Mapping[str, Any]], ctx: WriteContext
        ) -> None: ...

        def _check_rules(
            self,
            event: RuleEvent,
            record: Mapping[str, Any],
            old: Mapping[str, Any] | None,
            ctx: WriteContext,
            errors: list[FieldError],
        ) -> None: ...

        async def _write_lines(
            self,
            conn: Connection,
            parent_id: int,
            lines: list[dict[str, Any]],
            ctx: WriteContext,
            field_name: str,
            errors: list[FieldError],
        ) -> list[dict[str, Any]]: ...

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
