"""``adjust``: an increment of a balance row (by key) or of a record's numeric fields (by
id, or the one record whose fields equal ``where``, and that has the id when one is given)
collected during a document's submit;
``engine.postings`` applies it with the others, in a fixed lock order, once the submit's
rules have run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import handles
from engine.effects._values import compile_values, resolve_values
from engine.errors import FieldError, ValidationFailed
from engine.expressions import ValueTemplate
from engine.fieldtypes import InvalidValue
from engine.postings.pending import PendingAdjust, Voucher, line_at
from metadata import AdjustAction

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.effects import ActionRun
    from engine.expressions import Scope


@handles(AdjustAction)
class AdjustHandler:
    def __init__(self, action: AdjustAction) -> None:
        self.action = action
        self.add = compile_values(action.add)
        self.key = compile_values(action.key) if action.key is not None else None
        self.id = ValueTemplate(action.id) if action.id is not None else None
        self.where = compile_values(action.where) if action.where is not None else None

    def resolve(self, scope: Scope) -> Any:
        action = self.action
        return (
            resolve_values(self.key, scope) if self.key is not None else None,
            self.id.resolve(scope) if self.id is not None else None,
            resolve_values(self.where, scope) if self.where is not None else None,
            resolve_values(self.add, scope),
            line_at(scope, action.for_each, action.field),
        )

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        key, ident, where, add, at = resolved
        voucher = Voucher(run.store.entity.qualified_name, run.record_id)
        target = self.action.entity or ""
        if where is not None:
            if ident not in (None, ""):
                where = {**where, "id": ident}
            ident = await self._selected(run, target, where, at)
        run.ctx.postings.append(
            PendingAdjust(voucher, run.rule.name, target, key, ident, add, at, run.nested)
        )
        return False

    async def _selected(
        self, run: ActionRun, target: str, where: Mapping[str, Any], at: str
    ) -> int:
        """The id of the one record of ``target`` whose fields equal ``where``; none or
        several refuse the submit (422 ``not_found`` / ``ambiguous`` at ``at``)."""
        rule = run.rule.name
        store = run.store.registry.store_for(target)
        try:
            ids = await store.records.ids_where(run.conn, where)
        except InvalidValue as exc:
            message = f"rule '{rule}': where: {exc.message}"
            raise ValidationFailed([FieldError(at, "rule", message, rule=rule)]) from None
        if len(ids) == 1:
            return ids[0]
        shown = ", ".join(f"{name} = {value}" for name, value in where.items())
        if ids:
            code, message = "ambiguous", f"{len(ids)} {target} records have {shown}"
        else:
            code, message = "not_found", f"no {target} record has {shown}"
        raise ValidationFailed([FieldError(at, code, f"rule '{rule}': {message}", rule=rule)])
