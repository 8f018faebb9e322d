"""``adjust``: an increment of a balance row (by key) or of a record's numeric fields (by
id) collected during a document's submit; ``engine.postings`` applies it with the others,
in a fixed lock order, once the submit's rules have run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import handles
from engine.effects._values import compile_values, resolve_values
from engine.expressions import ValueTemplate
from engine.postings.pending import PendingAdjust, Voucher, line_at
from metadata import AdjustAction

if TYPE_CHECKING:
    from engine.effects import ActionRun
    from engine.expressions import Scope


@handles(AdjustAction)
class AdjustHandler:
    def __init__(self, action: AdjustAction) -> None:
        self.action = action
        self.add = compile_values(action.add)
        self.key = compile_values(action.key) if action.key is not None else None
        self.id = ValueTemplate(action.id) if action.id is not None else None

    def resolve(self, scope: Scope) -> Any:
        action = self.action
        return (
            resolve_values(self.key, scope) if self.key is not None else None,
            self.id.resolve(scope) if self.id is not None else None,
            resolve_values(self.add, scope),
            line_at(scope, action.for_each, action.field),
        )

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        key, ident, add, at = resolved
        voucher = Voucher(run.store.entity.qualified_name, run.record_id)
        target = self.action.entity or ""
        run.ctx.postings.append(
            PendingAdjust(voucher, run.rule.name, target, key, ident, add, at, run.nested)
        )
        return False
