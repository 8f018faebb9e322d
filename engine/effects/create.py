"""``create``: a record of another entity (or of this one), in the write's transaction; its
own rules run in turn (a cascade). ``lines`` fills its line items from the record's (one
new line per source line, mapped field by field)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import _rights, applies_deferred, handles
from engine.effects._values import bound, compile_values, lines_of, resolve_values
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
        self.lines = action.lines
        self.line_values = compile_values(action.lines.values) if action.lines else ()

    def resolve(self, scope: Scope) -> Any:
        values = resolve_values(self.values, scope)
        if self.lines is not None:
            mapped = []
            for line in lines_of(scope, self.lines.source):
                with bound(scope, "line", line):
                    mapped.append(resolve_values(self.line_values, scope))
            values[self.lines.target] = mapped
        return values

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
