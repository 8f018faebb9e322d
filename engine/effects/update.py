"""``update``: the record written, in the write's transaction (then read again); its rules
run in turn. A deleted record cannot be updated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import _rights, applies_deferred, handles
from engine.effects._values import compile_values, resolve_values
from engine.errors import FieldError, ValidationFailed
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

    def resolve(self, scope: Scope) -> Any:
        return resolve_values(self.values, scope)

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        if run.event == RuleEvent.DELETE.value:
            message = "a deleted record cannot be updated"
            raise ValidationFailed([FieldError("", "rule", message, rule=run.rule.name)])
        await _rights.update(run, run.store, run.record_id, resolved)
        return True


@applies_deferred(UpdateAction.kind)
async def apply(
    conn: Connection, store: EffectStore, record_id: str, values: Any, ctx: WriteContext
) -> None:
    """An ``async: true`` update, after the commit."""
    await store.update(conn, int(record_id), values, ctx)
