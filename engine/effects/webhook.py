"""``webhook``: its URL and payload resolved when the write happens, POSTed after the
commit (an outbox event of kind ``webhook``, delivered by the ``webhook`` sender): the
action's ``payload``, or the record as written, as the event's ``data``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import handles
from engine.effects._values import compile_values, resolve_values
from metadata import WebhookAction

if TYPE_CHECKING:
    from engine.effects import ActionRun
    from engine.expressions import Scope


@handles(WebhookAction)
class WebhookHandler:
    def __init__(self, action: WebhookAction) -> None:
        self.values = compile_values(action.parts)

    def resolve(self, scope: Scope) -> Any:
        resolved = resolve_values(self.values, scope)
        return {"url": str(resolved["url"]), "data": resolved.get("payload")}

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        data = resolved["data"] if resolved.get("data") is not None else dict(run.record)
        payload = {"url": resolved["url"], "event": run.event, "data": data}
        await run.queue(WebhookAction.kind, payload)
        return False
