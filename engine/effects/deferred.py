"""``async: true`` on an action that writes: its values resolved when the write happens, the
write itself made after the commit, exactly once (an outbox event of kind ``action`` that
the deliverer applies in one transaction with marking it delivered: ``engine.deferred``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import ASYNC, handles, plain_handler
from engine.outbox import DEFERRED_ACTION

if TYPE_CHECKING:
    from engine.effects import ActionRun
    from engine.expressions import Scope
    from metadata import RecordAction


@handles(ASYNC)
class DeferredHandler:
    def __init__(self, action: RecordAction) -> None:
        self.kind = action.kind
        self.target = action.entity
        self.plain = plain_handler(action)

    def resolve(self, scope: Scope) -> Any:
        return self.plain.resolve(scope)

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        target = self.target or run.store.entity.qualified_name
        payload = {"action": self.kind, "entity": target, "values": resolved}
        await run.queue(DEFERRED_ACTION, payload)
        return False
