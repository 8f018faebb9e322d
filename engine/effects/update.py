"""``update``: the record written, in the write's transaction (then read again), the
record of ``entity`` that ``id`` names, or those whose fields equal ``where``; its rules run
in turn. A deleted record cannot be updated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.effects import _rights, applies_deferred, handles
from engine.effects._values import compile_values, resolve_values
from engine.errors import FieldError, RecordNotFound, ValidationFailed
from engine.expressions import ValueTemplate
from engine.fieldtypes import InvalidValue
from engine.references import reference_id
from metadata import RuleEvent, UpdateAction

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.effects import ActionRun, EffectStore
    from engine.expressions import Scope
    from engine.writes.context import WriteContext


@handles(UpdateAction)
class UpdateHandler:
    def __init__(self, action: UpdateAction) -> None:
        self.values = compile_values(action.values)
        self.target = action.entity
        self.id = ValueTemplate(action.id) if action.id is not None else None
        self.where = compile_values(action.where) if action.where is not None else None

    def resolve(self, scope: Scope) -> Any:
        values = resolve_values(self.values, scope)
        if self.where is not None:
            return _Selected(resolve_values(self.where, scope), values)
        if self.id is None:
            return values
        return _Targeted(self.id.resolve(scope), values)

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        if isinstance(resolved, _Selected):
            store = run.store.registry.store_for(self.target or run.store.entity.qualified_name)
            try:
                ids = await store.records.ids_where(run.conn, resolved.where)
            except InvalidValue as exc:
                message = f"rule '{run.rule.name}': where: {exc.message}"
                raise ValidationFailed(
                    [FieldError("", "rule", message, rule=run.rule.name)]
                ) from None
            for record_id in ids:
                await _rights.update(run, store, record_id, resolved.values)
            return store is run.store and run.record_id in ids
        if isinstance(resolved, _Targeted):
            store = run.store.registry.store_for(self.target or run.store.entity.qualified_name)
            record_id = _record_id(run, resolved.id, store.entity.qualified_name)
            try:
                await _rights.update(run, store, record_id, resolved.values)
            except RecordNotFound:
                message = (
                    f"rule '{run.rule.name}': {store.entity.qualified_name} {record_id} "
                    "does not exist"
                )
                raise ValidationFailed(
                    [FieldError("", "rule", message, rule=run.rule.name)]
                ) from None
            return store is run.store and record_id == run.record_id
        if run.event == RuleEvent.DELETE.value:
            message = "a deleted record cannot be updated"
            raise ValidationFailed([FieldError("", "rule", message, rule=run.rule.name)])
        await _rights.update(run, run.store, run.record_id, resolved)
        return True


@dataclass(frozen=True, slots=True)
class _Selected:
    """An update of the records whose fields equal ``where``."""

    where: dict[str, Any]
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Targeted:
    """An update of the record ``id`` names (not necessarily the record written)."""

    id: Any
    values: dict[str, Any]


def _record_id(run: ActionRun, value: Any, entity: str) -> int:
    """The id an update's ``id`` template gave, or a refusal naming the rule."""
    ident = reference_id(value)
    if ident is None or len(ident) > 18:
        message = f"rule '{run.rule.name}': {value!r} is not an id of {entity}"
        raise ValidationFailed([FieldError("", "rule", message, rule=run.rule.name)])
    return int(ident)


@applies_deferred(UpdateAction.kind)
async def apply(
    conn: Connection, store: EffectStore, record_id: str, values: Any, ctx: WriteContext
) -> None:
    """An ``async: true`` update, after the commit."""
    await store.update(conn, int(record_id), values, ctx)
