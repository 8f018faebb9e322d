"""``post``: a ledger row (and the move of a balance) collected during a document's submit;
``engine.postings`` writes it with the others once the submit's rules have run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import handles
from engine.effects._values import compile_values, resolve_values
from engine.postings.pending import PendingPost, Voucher, line_at
from engine.postings.settling import Compute
from metadata import PostAction

if TYPE_CHECKING:
    from engine.effects import ActionRun
    from engine.expressions import Scope


@handles(PostAction)
class PostHandler:
    def __init__(self, action: PostAction) -> None:
        self.action = action
        self.values = compile_values(action.values)
        move = action.balance
        self.compute = Compute(move.compute) if move is not None and move.compute else None

    def resolve(self, scope: Scope) -> Any:
        action = self.action
        return resolve_values(self.values, scope), line_at(scope, action.for_each, action.field)

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        values, at = resolved
        voucher = Voucher(run.store.entity.qualified_name, run.record_id)
        ledger = self.action.entity or ""
        pending = PendingPost(
            voucher,
            run.rule.name,
            ledger,
            values,
            self.action.balance,
            at,
            run.nested,
            self.compute,
        )
        run.ctx.postings.append(pending)
        return False
