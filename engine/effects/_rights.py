"""The rights of a rule's writes (``run_as``): an action that writes goes through the guard
when the rule runs as the user or as a role, and a refusal names the rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from engine.access import Forbidden
from engine.errors import FieldError, RecordNotFound, ValidationFailed
from engine.fieldtypes import InvalidValue, kind_of
from engine.guard import GuardedStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Mapping

    from engine.effects import ActionRun, EffectStore
    from engine.writes.pipeline import EntityStore
    from metadata import RuleDef


async def create(run: ActionRun, target: EffectStore, values: Any) -> dict[str, Any] | None:
    """Create a record of ``target`` with the rule's rights: the record created (None when
    it is collected, to be written with the triggering record's statement)."""
    if run.caller is None:
        if run.collected is not None:
            run.collected.append((target, values, run.nested))
            return None
        return await target.create(run.conn, values, run.nested)
    guarded = GuardedStore(cast("EntityStore", target), run.caller)
    record: dict[str, Any] = await _as_rule(
        run.rule, guarded.create(run.conn, values, run.nested, None)
    )
    return record


async def readable(run: ActionRun, target: EffectStore, record_id: int) -> bool:
    """Whether the rule's rights may read ``target``'s record ``record_id`` (a record it
    found, which it must not learn about otherwise)."""
    if run.caller is None:
        return True
    guarded = GuardedStore(cast("EntityStore", target), run.caller)
    try:
        await guarded.readable(run.conn, record_id)
    except (Forbidden, RecordNotFound):
        return False
    return True


async def update(run: ActionRun, target: EffectStore, record_id: int, values: Any) -> None:
    """Update ``target``'s record ``record_id`` with the rule's rights. Read-only fields
    (which no client writes) are set as the engine's own values, with every right only."""
    fields = target.entity.fields
    read_only = {k: v for k, v in values.items() if k in fields and not fields[k].is_writable}
    if read_only:
        if run.caller is not None:
            detail = (
                f"rule '{run.rule.name}' (run_as: {run.rule.run_as}) may not do this: "
                f"read-only fields are set by rules that run as system "
                f"({', '.join(sorted(read_only))})"
            )
            raise Forbidden(detail)
        writable = {k: v for k, v in values.items() if k not in read_only}
        system = _coerced(run, target, read_only)
        await target.update(run.conn, record_id, writable, run.nested, system_values=system)
        return
    if run.caller is None:
        await target.update(run.conn, record_id, values, run.nested)
        return
    guarded = GuardedStore(cast("EntityStore", target), run.caller)
    await _as_rule(run.rule, guarded.update(run.conn, record_id, values, run.nested))


async def _as_rule(rule: RuleDef, write: Awaitable[Any]) -> Any:
    """Await a write of ``rule``'s actions limited by its ``run_as``; a refusal names the
    rule, so that the writer learns which consequence of their write was not allowed."""
    try:
        return await write
    except (Forbidden, RecordNotFound) as exc:
        detail = f"rule '{rule.name}' (run_as: {rule.run_as}) may not do this: {exc.detail}"
        raise Forbidden(detail, getattr(exc, "errors", None)) from None


def _coerced(run: ActionRun, target: EffectStore, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` of read-only fields, each converted like an input of its field; a value
    that does not fit rejects the write at that field, naming the rule."""
    coerced: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, value in values.items():
        field = target.entity.fields[name]
        if value is None or value == "":
            coerced[name] = None
            continue
        try:
            coerced[name] = kind_of(field).coercer(field)(value)
        except InvalidValue as exc:
            errors.append(FieldError(name, exc.code, exc.message, rule=run.rule.name))
    if errors:
        raise ValidationFailed(errors)
    return coerced
