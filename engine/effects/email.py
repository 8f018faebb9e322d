"""``email``: rendered over the record when the write happens, sent after the commit (an
outbox event of kind ``email``, delivered by the ``email`` sender)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import handles
from engine.effects._values import compile_values, resolve_values
from engine.expressions import environment
from metadata import EmailAction

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.effects import ActionRun
    from engine.expressions import Scope


@handles(EmailAction)
class EmailHandler:
    def __init__(self, action: EmailAction) -> None:
        self.values = compile_values(action.parts)
        self.attach = action.attach_print
        self.template = (
            environment().from_string(action.template_source)
            if action.template_source is not None
            else None
        )

    def resolve(self, scope: Scope) -> Any:
        resolved = resolve_values(self.values, scope)
        message = _message(resolved, self.template.render(scope.names) if self.template else None)
        if self.attach is not None:
            # printed when sent, by the deliverer (runtime.delivery), from the event's record
            message["attach"] = [{"print": self.attach}]
        return message

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        await run.queue(EmailAction.kind, resolved)
        return False


def _addresses(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [text for item in items if (text := str(item).strip())]


def _message(values: Mapping[str, Any], rendered: str | None) -> dict[str, Any]:
    """The message as it will be sent: a template file whose first line is ``Subject: ...``
    gives the subject unless the action sets one."""
    subject = values.get("subject")
    body = str(values.get("body") or "")
    if rendered is not None:
        first, _, rest = rendered.partition("\n")
        if first.lower().startswith("subject:"):
            subject = subject or first.split(":", 1)[1].strip()
            rendered = rest.lstrip("\n")
        body = rendered
    to = _addresses(values.get("to"))
    if not to:
        raise ValueError("the e-mail has no recipient ('to' is empty)")
    return {
        "to": to,
        "cc": _addresses(values.get("cc")),
        "subject": str(subject or "").strip(),
        "body": body,
    }
