"""``create``: a record of another entity (or of this one), in the write's transaction; its
own rules run in turn (a cascade). ``lines`` fills its line items from the record's (one
new line per source line, mapped field by field). ``match`` finds an existing record with
those field values instead of creating one (find or create); ``set`` stores the id of the
record created (or found) in a reference field of the record written, where the rule's
later actions read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.database import IntegrityViolation
from engine.effects import _rights, applies_deferred, handles
from engine.effects._values import bound, compile_values, lines_of, resolve_values
from engine.errors import Conflict, FieldError, ValidationFailed
from engine.fieldtypes import InvalidValue
from metadata import CreateAction

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.effects import ActionRun, EffectStore
    from engine.expressions import Scope
    from engine.writes.context import WriteContext


@dataclass(frozen=True, slots=True)
class _FindOrCreate:
    """A create with ``match`` or ``set``: the values, and the fields that find a record."""

    values: dict[str, Any]
    match: dict[str, Any] | None


@handles(CreateAction)
class CreateHandler:
    def __init__(self, action: CreateAction) -> None:
        self.target = action.entity
        self.values = compile_values(action.values)
        self.lines = action.lines
        self.line_values = compile_values(action.lines.values) if action.lines else ()
        self.match = compile_values(action.match) if action.match is not None else None
        self.sets = action.set

    def resolve(self, scope: Scope) -> Any:
        values = resolve_values(self.values, scope)
        if self.lines is not None:
            mapped = []
            for line in lines_of(scope, self.lines.source):
                with bound(scope, "line", line):
                    mapped.append(resolve_values(self.line_values, scope))
            values[self.lines.target] = mapped
        if self.match is None and self.sets is None:
            return values
        match = resolve_values(self.match, scope) if self.match is not None else None
        return _FindOrCreate(values, match)

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        name = self.target or run.store.entity.qualified_name
        target = run.store.registry.store_for(name)
        if not isinstance(resolved, _FindOrCreate):
            await _rights.create(run, target, resolved)
            return False
        record_id = await self._find(run, target, resolved.match)
        if record_id is None:
            record_id = await self._create(run, target, resolved)
        if self.sets is None:
            return False
        await run.store.update(
            run.conn, run.record_id, {}, run.nested, system_values={self.sets: record_id}
        )
        run.filled[self.sets] = str(record_id)
        return True

    async def _find(
        self, run: ActionRun, target: EffectStore, match: dict[str, Any] | None
    ) -> int | None:
        """The first record (by id) the rule may read whose fields equal ``match``; none
        when a value of ``match`` is empty (an empty key identifies nothing)."""
        if match is None or any(value is None or value == "" for value in match.values()):
            return None
        try:
            ids = await target.records.ids_where(run.conn, match)
        except InvalidValue as exc:
            message = f"rule '{run.rule.name}': match: {exc.message}"
            raise ValidationFailed([FieldError("", "rule", message, rule=run.rule.name)]) from None
        for record_id in ids:
            if await _rights.readable(run, target, record_id):
                return record_id
        return None

    async def _create(self, run: ActionRun, target: EffectStore, resolved: _FindOrCreate) -> int:
        """Create the record; when a concurrent write took a unique value of ``match`` in the
        meantime, the record it made is matched instead."""
        if resolved.match is None:
            record = await _rights.create(run, target, resolved.values)
        else:
            try:
                async with run.conn.savepoint():
                    record = await _rights.create(run, target, resolved.values)
            except (Conflict, IntegrityViolation):
                found = await self._find(run, target, resolved.match)
                if found is None:
                    raise
                return found
        assert record is not None  # a create that reads back is never collected
        return int(record["id"])


@applies_deferred(CreateAction.kind)
async def apply(
    conn: Connection, store: EffectStore, record_id: str, values: Any, ctx: WriteContext
) -> None:
    """An ``async: true`` create, after the commit: ``store`` is the target's."""
    await store.create(conn, values, ctx)
