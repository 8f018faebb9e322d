"""Running the actions of the rules due after a write (and of scheduled rules)."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from engine.access import Caller, Forbidden
from engine.database import IntegrityViolation
from engine.errors import EngineError, FieldError, RecordNotFound, ValidationFailed
from engine.outbox import DEFERRED_ACTION, NewEvent
from engine.writes.context import NO_USER, CascadeStep, cascade_error
from metadata import RUN_AS_SYSTEM, RUN_AS_USER, ActionKind, RuleEvent

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from engine.database import Connection
    from engine.writes.context import WriteContext
    from engine.writes.pipeline import EntityStore
    from metadata import EntityDef, RuleDef

log = logging.getLogger("tessera.rules")

SCHEDULE_PAGE = 500


async def run_triggers(
    store: EntityStore,
    conn: Connection,
    event: RuleEvent,
    record: dict[str, Any],
    old: Mapping[str, Any] | None,
    ctx: WriteContext,
) -> dict[str, Any]:
    """Run the actions of the rules due after this write; the record as it ends up."""
    record_id = int(record["id"])
    updated = False
    view = store.references.view
    due = store.triggers.due(event, view(record, ctx), view(old, ctx), ctx.user)
    for rule, actions in due:
        updated = await perform(store, conn, rule, actions, record, ctx, event.value) or updated
    return await store.get(conn, record_id) if updated else record


async def perform(
    store: EntityStore,
    conn: Connection,
    rule: RuleDef,
    actions: list[tuple[Any, dict[str, Any]]],
    record: Mapping[str, Any],
    ctx: WriteContext,
    event: str,
) -> bool:
    """Run one rule's resolved actions for ``record``; whether it updated the record."""
    from engine.guard import GuardedStore

    record_id = int(record["id"])
    entity = store.entity
    step = CascadeStep(entity.qualified_name, str(record_id), rule.name)
    error = cascade_error(ctx.cascade, step)
    if error is not None:
        raise error
    caller = _rights(store, rule, ctx)
    roles = caller.roles if caller is not None else None
    nested = dataclasses.replace(ctx, cascade=(*ctx.cascade, step), roles=roles)
    updated = False
    for action, values in actions:
        if action.deferred or action.kind.is_outbound:
            kind, payload = _event(action, values, event, record, entity)
            outgoing = NewEvent(kind, entity.qualified_name, str(record_id), rule.name, payload)
            ctx.events.append(await store.registry.outbox.add(conn, outgoing))
        elif action.kind is ActionKind.CREATE:
            target = store.registry.store_for(action.entity or entity.qualified_name)
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
                await store.update(conn, record_id, values, nested)
            else:
                changed = GuardedStore(store, caller).update(conn, record_id, values, nested)
                await _as_rule(rule, changed)
            updated = True
    return updated


def _rights(store: EntityStore, rule: RuleDef, ctx: WriteContext) -> Caller | None:
    """Whose rights the rule's writes have (its ``run_as``); None: every right. With
    ``run_as: user`` and no user (the command line, fixtures), none limits them."""
    if rule.run_as == RUN_AS_SYSTEM:
        return None
    policy = store.registry.access
    if rule.run_as == RUN_AS_USER:
        if ctx.user is None:
            return None
        return Caller(ctx.user, ctx.user.roles, policy)
    actor = ctx.user if ctx.user is not None else NO_USER
    return Caller(actor, policy.project.role_closure({rule.run_as}), policy)


async def _as_rule(rule: RuleDef, write: Awaitable[Any]) -> None:
    """Await a write of ``rule``'s actions limited by its ``run_as``; a refusal names the
    rule, so that the writer learns which consequence of their write was not allowed."""
    try:
        await write
    except (Forbidden, RecordNotFound) as exc:
        detail = f"rule '{rule.name}' (run_as: {rule.run_as}) may not do this: {exc.detail}"
        raise Forbidden(detail, getattr(exc, "errors", None)) from None


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


async def run_scheduled(store: EntityStore, conn: Connection, name: str, ctx: WriteContext) -> int:
    """Run the scheduled rule ``name`` on every record its filter selects, each in a
    savepoint: a record whose actions fail is logged and left out, the others go on.
    The number of records acted on."""
    rule = store.scheduled.rule(name)
    acted = 0
    after = 0
    while True:
        page = store.records.sql.ids_after
        rows = await conn.fetch(page.sql, page.args({"after": after, "limit": SCHEDULE_PAGE}))
        ids = [int(row[0]) for row in rows]
        if not ids:
            return acted
        after = ids[-1]
        records = await store.get_many(conn, ids)
        await store.load_references(conn, records.values(), ctx)
        for record in records.values():
            queued = len(ctx.events)
            try:
                view = store.references.view(record, ctx)
                actions = store.scheduled.resolve(name, view, ctx.user)
                if actions is None:
                    continue
                async with conn.savepoint():
                    await perform(store, conn, rule, actions, record, ctx, "schedule")
            except (EngineError, IntegrityViolation, ValueError, TypeError) as exc:
                del ctx.events[queued:]
                log.warning(
                    "scheduled rule %s skipped %s#%s: %s",
                    name,
                    store.entity.qualified_name,
                    record["id"],
                    getattr(exc, "detail", None) or exc,
                )
                continue
            acted += 1
