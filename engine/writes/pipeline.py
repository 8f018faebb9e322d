"""The write pipeline of one entity: every create, update and delete goes

    validate → derive → workflow → store → audit → asserts → effects

— the body checked and coerced (``engine.validation``); defaults, computed fields,
``required_if`` and the rules that need nothing the database assigns (``derive``); the
workflow's move judged; the row written (``engine.store``, which also writes the audit
row); the entity's rules on the record as stored (and its lines'); then the actions of the
rules due (``engine.effects``: found by kind, the pipeline names none).

An ``EntityStore`` is compiled once per entity at start-up. Its reads are its record
store's (``records``); its creates are ``engine.writes.creating`` (a mixin, so they stay its
own methods); the guard (``engine.guard``) wraps it for a caller's rights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.assignment import Assigner
from engine.audit import AuditAction, changes_between
from engine.effects.triggers import RuleEffects
from engine.errors import FieldError, StaleVersion, ValidationFailed
from engine.expressions import Scope
from engine.formstate import FormConditions
from engine.lookups import parent_traversed
from engine.postings import settle as postings_settle
from engine.references import expression_sources, traversed_references
from engine.rules import RuleSet
from engine.store import SYSTEM_TAIL, RecordStore, rows, write_lines
from engine.validation import RecordValidator
from engine.workflow import Move, Workflow
from engine.writes import documents, upsert
from engine.writes.context import PreparedCreate, WriteContext
from engine.writes.creating import Creating
from engine.writes.derivation import Derivation
from engine.writes.references import References
from metadata import AMENDED_FROM, DOCSTATUS, FieldType, RuleEvent

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


class StoreRegistry:
    """Protocol-like base: how a store finds the stores of other entities and the outbox."""

    outbox: Outbox
    audit: AuditLog
    access: AccessPolicy

    def store_for(self, qualified_name: str) -> EntityStore:
        raise KeyError(qualified_name)

    def records_for(self, qualified_name: str) -> RecordStore:
        return self.store_for(qualified_name).records


class EntityStore(Creating):
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
        self.registry: StoreRegistry = registry
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

    # -- create: ``prepare_create``, ``create``, … (``engine.writes.creating``) -----------

    # -- rules on the record as stored (every write) --------------------------------------

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
            # refused submit rolls the series back with everything else (no gap); one of
            # gapless: false is committed at once instead, and locks nothing here
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
