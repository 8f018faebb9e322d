"""When rule actions run (SPEC §3.3): after the write, in its transaction, so that a failure
in any action rolls the whole write back; a write made by an action runs that entity's
rules in turn (cascades). Actions that leave the database (e-mails, webhooks, ``async:
true``) become outbox events in the same transaction, delivered after commit. Scheduled
rules run their actions on the records their ``where`` selects.

A cascade that comes back to a rule already running for the same record is a cycle: it is
stopped at once with an error naming the chain, and the write is rolled back.

What each action does is its handler's business (``engine.effects``): nothing here knows
the kinds.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.access import Caller
from engine.database import IntegrityViolation
from engine.effects import ActionHandler, ActionRun, handler_for
from engine.effects._selection import Selection, selection
from engine.effects._values import bound, lines_of
from engine.errors import EngineError, FieldError, ValidationFailed
from engine.expressions import Actor, Expression, Scope, compile_any, compile_expression
from engine.writes.context import NO_USER, CascadeStep, cascade_error
from metadata import (
    RUN_AS_SYSTEM,
    RUN_AS_USER,
    CronSchedule,
    RecordAction,
    RuleEvent,
    expression_names,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from engine.database import Connection
    from engine.effects import EffectStore
    from engine.store import RecordStore
    from engine.writes.context import WriteContext
    from engine.writes.references import References
    from metadata import RuleDef

log = logging.getLogger("tessera.rules")

SCHEDULE_PAGE = 500
Resolved = list[tuple[ActionHandler, Any]]


@dataclass(frozen=True, slots=True)
class _Later:
    """The actions of a rule after one that fills a field of the record (a create's
    ``set``): resolved once it has run, with the field's new value in scope."""

    trigger: _Trigger
    start: int
    scope: Scope

    def resolve(self, filled: Mapping[str, Any]) -> Resolved:
        for name, value in filled.items():
            self.scope.names[name] = value
            self.scope.context.vars[name] = value
        return self.trigger.resolve(self.scope, self.start)


@dataclass(frozen=True, slots=True)
class _Trigger:
    rule: RuleDef
    when: Expression | None
    actions: tuple[tuple[ActionHandler, str | None, Expression | None], ...]
    """Each action's handler, with its ``for_each`` children field and its ``when``."""
    fills: frozenset[int] = frozenset()
    """The positions of the actions that fill a field of the record (``set``)."""

    def resolve(self, scope: Scope, start: int = 0) -> Resolved:
        """Each action's values; an action ``for_each`` line once per line (with the line
        in scope as ``line``), in the lines' order. The actions after one that fills a
        field are resolved after it has run (a ``_Later`` in the list)."""
        resolved: Resolved = []
        for index in range(start, len(self.actions)):
            action, for_each, when = self.actions[index]
            if for_each is None:
                if when is not None and not when(scope):
                    continue
                resolved.append((action, action.resolve(scope)))
                if index in self.fills and index + 1 < len(self.actions):
                    resolved.append((_LATER, _Later(self, index + 1, scope)))
                    break
                continue
            for line in lines_of(scope, for_each):
                with bound(scope, "line", line):
                    if when is None or when(scope):
                        resolved.append((action, action.resolve(scope)))
        return resolved


class _LaterHandler:
    """The marker in a resolved list where the rest of a rule's actions wait (``_Later``)."""

    def resolve(self, scope: Scope) -> Any:  # pragma: no cover - never resolved itself
        raise NotImplementedError

    async def run(self, run: ActionRun, resolved: Any) -> bool:  # pragma: no cover
        raise NotImplementedError


_LATER = _LaterHandler()


def _compile(rule: RuleDef, when: Expression | None) -> _Trigger:
    fills = frozenset(
        i for i, a in enumerate(rule.actions) if isinstance(a, RecordAction) and a.set is not None
    )
    actions = tuple(
        (handler_for(a), a.for_each, compile_expression(a.when) if a.when else None)
        for a in rule.actions
    )
    return _Trigger(rule, when, actions, fills)


class Triggers:
    """The rules of an entity that have actions, compiled once, by event."""

    def __init__(self, rules: Iterable[RuleDef], assigned_by_database: Iterable[str]) -> None:
        late = set(assigned_by_database)
        compiled = [
            _compile(rule, compile_expression(rule.when) if rule.when else None)
            for rule in rules
            if rule.actions and rule.schedule is None
        ]
        self._by_event = {
            event: tuple(t for t in compiled if event in t.rule.events) for event in RuleEvent
        }
        creating = self._by_event[RuleEvent.CREATE]
        self._when_needs_the_insert = any(
            t.rule.when is None or expression_names(t.rule.when) & late for t in creating
        )
        self._any_create_due = (
            compile_any([t.rule.when or "" for t in creating])
            if creating and not self._when_needs_the_insert
            else None
        )
        """The create triggers' ``when``s as one expression (``due_before_insert``)."""

    def runs_on(self, event: RuleEvent) -> bool:
        return bool(self._by_event[event])

    def due_before_insert(self, scope: Scope) -> bool | None:
        """Whether a create trigger can fire, judged before the INSERT: None when a ``when``
        reads what the database assigns (or a trigger has none), so only the inserted
        record can tell."""
        if self._when_needs_the_insert:
            return None
        if self._any_create_due is None:
            return False
        try:  # `a or b`: left to right, as one by one would, in one evaluation
            return bool(self._any_create_due(scope))
        except Exception:  # noqa: BLE001 - the error is raised where the trigger runs
            return True

    def due(
        self,
        event: RuleEvent,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        user: Actor | None,
    ) -> list[tuple[RuleDef, Resolved]]:
        """The triggers whose ``when`` holds, with their actions' values resolved over the
        record as written (all resolved before any action runs)."""
        triggers = self._by_event[event]
        if not triggers:
            return []
        scope = Scope(record, old, user)
        due = []
        for trigger in triggers:
            try:
                if trigger.when is not None and not trigger.when(scope):
                    continue
                resolved = trigger.resolve(scope)
            except Exception as exc:  # noqa: BLE001 - the write is rejected, with the reason
                message = f"rule '{trigger.rule.name}' could not run: {exc}"
                raise ValidationFailed(
                    [FieldError("", "rule", message, rule=trigger.rule.name)]
                ) from None
            due.append((trigger.rule, resolved))
        return due


class ScheduledActions:
    """An entity's scheduled rules: their schedule, record filter and actions, compiled
    once. The filter is ``where`` (and ``when``, if the rule has one too)."""

    def __init__(self, rules: Iterable[RuleDef]) -> None:
        self._rules = {
            rule.name: _compile(rule, _selector(rule))
            for rule in rules
            if rule.schedule is not None
        }
        self.schedules = {
            name: CronSchedule.parse(t.rule.schedule or "") for name, t in self._rules.items()
        }

    def rule(self, name: str) -> RuleDef:
        return self._rules[name].rule

    def resolve(self, name: str, record: Mapping[str, Any], user: Actor | None) -> Resolved | None:
        """The rule's actions with their values over ``record``, or None when the rule's
        filter leaves the record out."""
        trigger = self._rules[name]
        scope = Scope(record, None, user)
        if trigger.when is not None and not trigger.when(scope):
            return None
        return trigger.resolve(scope)


def _selector(rule: RuleDef) -> Expression | None:
    conditions = [c for c in (rule.where, rule.when) if c]
    if not conditions:
        return None
    return compile_expression(" and ".join(f"({c})" for c in conditions))


class RuleEffects:
    """The actions of one entity's rules, run after its writes and on their schedules."""

    def __init__(
        self,
        store: EffectStore,
        records: RecordStore,
        references: References,
        rules: Iterable[RuleDef],
        assigned_by_database: Iterable[str],
    ) -> None:
        rules = tuple(rules)
        self.store = store
        self.records = records
        self.references = references
        self.triggers = Triggers(rules, assigned_by_database)
        self.scheduled = ScheduledActions(rules)
        self.selections: dict[str, Selection | None] = {
            rule.name: selection(
                rule, records.entity, records.table, records.to_db, records.dialect
            )
            for rule in rules
            if rule.schedule is not None
        }
        """Each scheduled rule's query of the records it acts on (None: it reads them all)."""

    async def after_write(
        self,
        conn: Connection,
        event: RuleEvent,
        record: dict[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
    ) -> dict[str, Any]:
        """Run the actions of the rules due after this write; the record as it ends up."""
        view = self.references.view
        due = self.triggers.due(event, view(record, ctx), view(old, ctx), ctx.user)
        updated = False
        for rule, actions in due:
            updated = await self._perform(conn, rule, actions, record, ctx, event.value) or updated
        return await self.records.get(conn, int(record["id"])) if updated else record

    async def collect_creates(
        self, conn: Connection, record: dict[str, Any], ctx: WriteContext
    ) -> list[tuple[EffectStore, Any, WriteContext]]:
        """The creates that the create triggers due for ``record`` (about to be inserted)
        would make with every right, resolved but not run: for the pipeline to write them
        in one statement with the record (``EntityStore.folds_create_triggers``)."""
        view = self.references.view
        collected: list[tuple[EffectStore, Any, WriteContext]] = []
        for rule, actions in self.triggers.due(RuleEvent.CREATE, view(record, ctx), None, ctx.user):
            await self._perform(conn, rule, actions, record, ctx, "create", collected)
        return collected

    async def _perform(
        self,
        conn: Connection,
        rule: RuleDef,
        actions: Resolved,
        record: Mapping[str, Any],
        ctx: WriteContext,
        event: str,
        collected: list[tuple[EffectStore, Any, WriteContext]] | None = None,
    ) -> bool:
        """Run one rule's resolved actions for ``record``; whether one updated the record."""
        step = CascadeStep(self.store.entity.qualified_name, str(record["id"]), rule.name, event)
        error = cascade_error(ctx.cascade, step)
        if error is not None:
            raise error
        caller = self._rights(rule, ctx)
        roles = caller.roles if caller is not None else None
        nested = dataclasses.replace(ctx, cascade=(*ctx.cascade, step), roles=roles)
        run = ActionRun(conn, self.store, record, rule, event, ctx, nested, caller, collected)
        updated = False
        pending = list(actions)
        while pending:
            handler, resolved = pending.pop(0)
            if handler is _LATER:
                try:
                    pending[:0] = resolved.resolve(run.filled)
                except EngineError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the write is rejected, with the reason
                    message = f"rule '{rule.name}' could not run: {exc}"
                    raise ValidationFailed(
                        [FieldError("", "rule", message, rule=rule.name)]
                    ) from None
                continue
            updated = await handler.run(run, resolved) or updated
        return updated

    def _rights(self, rule: RuleDef, ctx: WriteContext) -> Caller | None:
        """Whose rights the rule's writes have (its ``run_as``); None: every right. With
        ``run_as: user`` and no user (the command line, fixtures), none limits them."""
        if rule.run_as == RUN_AS_SYSTEM:
            return None
        policy = self.store.registry.access
        if rule.run_as == RUN_AS_USER:
            if ctx.user is None:
                return None
            return Caller(ctx.user, ctx.user.roles, policy)
        actor = ctx.user if ctx.user is not None else NO_USER
        return Caller(actor, policy.project.role_closure({rule.run_as}), policy)

    async def run_scheduled(
        self, conn: Connection, name: str, ctx: WriteContext, *, read_all: bool = False
    ) -> int:
        """Run the scheduled rule ``name`` on every record its filter selects, each in a
        savepoint: a record whose actions fail is logged and left out, the others go on.
        The records are found by the rule's query (``engine.effects._selection``), or, when
        its filter is no record filter (or ``read_all``), by reading every record. The
        number of records acted on."""
        chosen = None if read_all else self.selections.get(name)
        acted = 0
        after = 0
        while True:
            if chosen is not None:
                args = chosen.args(after, SCHEDULE_PAGE)
                rows = await conn.fetch(chosen.sql.sql, args)
            else:
                page = self.records.sql.ids_after
                rows = await conn.fetch(
                    page.sql, page.args({"after": after, "limit": SCHEDULE_PAGE})
                )
            ids = [int(row[0]) for row in rows]
            if not ids:
                return acted
            after = ids[-1]
            acted += await self._run_page(conn, name, ids, ctx)

    async def _run_page(
        self, conn: Connection, name: str, ids: list[int], ctx: WriteContext
    ) -> int:
        rule = self.scheduled.rule(name)
        entity = self.store.entity.qualified_name
        acted = 0
        records = await self.records.get_many(conn, ids)
        await self.references.load(conn, records.values(), ctx)
        for record in records.values():
            queued = len(ctx.events)
            try:
                view = self.references.view(record, ctx)
                actions = self.scheduled.resolve(name, view, ctx.user)
                if actions is None:
                    continue
                async with conn.savepoint():
                    await self._perform(conn, rule, actions, record, ctx, "schedule")
            except (EngineError, IntegrityViolation, ValueError, TypeError) as exc:
                del ctx.events[queued:]
                log.warning(
                    "scheduled rule %s skipped %s#%s: %s",
                    name,
                    entity,
                    record["id"],
                    getattr(exc, "detail", None) or exc,
                )
                continue
            acted += 1
        return acted
