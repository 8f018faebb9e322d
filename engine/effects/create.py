"""``create``: a record of another entity (or of this one), in the write's transaction; its
own rules run in turn (a cascade)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import _rights, applies_deferred, handles
from engine.effects._values import compile_values, resolve_values
from metadata import CreateAction

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.effects import ActionRun, EffectStore
    from engine.expressions import Scope
    from engine.writes.context import WriteContext


@handles(CreateAction)
class CreateHandler:
    def __init__(self, action: CreateAction) -> None:
        self.target = action.entity
        self.values = compile_values(action.values)

    def resolve(self, scope: Scope) -> Any:
        return resolve_values(self.values, scope)

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        name = self.target or run.store.entity.qualified_name
        await _rights.create(run, run.store.registry.store_for(name), resolved)
        return False


@applies_deferred(CreateAction.kind)
async def apply(
    conn: Connection, store: EffectStore, record_id: str, values: Any, ctx: WriteContext
) -> None:
    """An ``async: true`` create, after the commit: ``store`` is the target's."""
    await store.create(conn, values, ctx)
