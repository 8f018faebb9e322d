"""The *derive* step of the write pipeline: before the statement, what a write fills in
itself — defaults on a new record, computed fields, ``required_if`` and, on create, the
rules that need nothing the database assigns — for a record and for each line it sends,
over one scope of the record as it will be stored. Every failure is collected, so a write
reports them all at once (a line's at ``<field>[<position>].<field>``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.computed import ComputedFields, DefaultExpressions
from engine.errors import ValidationFailed
from engine.expressions import Scope
from engine.lookups import Lookups
from engine.rules import RequiredIf
from metadata import LOOKUP_PARENT

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from engine.database import Connection
    from engine.errors import FieldError
    from engine.rules import RuleSet
    from engine.writes.context import WriteContext
    from engine.writes.references import References
    from metadata import EntityDef


class Derivation:
    """One entity's derive step, compiled once with its store (and its lines')."""

    def __init__(
        self,
        entity: EntityDef,
        blank_record: Mapping[str, Any],
        references: References,
        rules: RuleSet,
        traversed: Mapping[str, Any],
        children: Mapping[str, Derivation],
    ) -> None:
        self.blank_record = blank_record
        self.references = references
        self.rules = rules
        self.traversed = traversed
        self.children = dict(children)
        self.computed = ComputedFields(entity)
        self.defaults = DefaultExpressions(entity)
        self.required_if = RequiredIf(entity.fields.values())
        records = references.records
        self.lookups = Lookups(
            entity,
            references.access.project,
            records.table.metadata,
            dialect=records.dialect,
            dialect_name=records.dialect_name,
        )
        self.defaulted_references = frozenset(
            name
            for name, field in entity.fields.items()
            if name in references.traversed and field.default_is_expression
        )
        """Traversed reference fields that a template default may fill (a return's order,
        from the delivery it returns): read, on create, before the record's expressions."""
        self.looks_up: bool = bool(self.lookups) or any(
            child.looks_up for child in self.children.values()
        )
        """Whether a write may read values of its own or its lines' ``lookup:`` fields
        (``look_up``, before ``derive``)."""
        self.line_steps = any(child.fills for child in self.children.values())
        """Whether the lines a write sends derive values of their own."""
        self.computes = bool(self.computed) or self.line_steps
        """Whether a write derives values: the record's computed fields, or its lines'
        defaults, computed fields or ``required_if``."""
        self.derives = (
            self.computes
            or bool(self.required_if)
            or bool(self.rules.before_insert)
            or bool(self.defaults)
        )
        """Whether a create has a derive step at all."""

    @property
    def fills(self) -> bool:
        """Whether a record of this entity, sent as a line, derives values."""
        return bool(self.computed or self.required_if or self.defaults)

    def loads(self, values: Mapping[str, Any]) -> bool:
        """Whether deriving a write of ``values`` reads referenced records: this entity's
        expressions traverse references, or those of lines it sends do."""
        return (
            bool(self.traversed)
            or bool(self.lookups)
            or any(
                child.references.loads or child.lookups
                for name, child in self.children.items()
                if name in values
            )
        )

    async def look_up(
        self,
        conn: Connection,
        values: dict[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
    ) -> None:
        """The ``lookup:`` fields of the record (``old``: as stored, None on create) and of
        the lines it sends, read in the write's transaction and set in ``values`` before
        ``derive`` (engine/lookups.py says when each runs). A line's lookups see the record
        as ``parent``. Every failure at once, a line's at ``<field>[<position>].<field>``."""
        loads_defaulted = old is None and bool(self.defaulted_references)
        if not self.looks_up and not loads_defaulted:
            return
        record = {**(old or self.blank_record), **values}
        if self.references.missing(record, ctx):
            return  # ``derive`` reports the reference to no record
        view = self.references.view(record, ctx)
        view = dict(view) if view is record else view  # a copy the lookups fill
        scope = Scope(view, self.references.view(old, ctx), ctx.user)
        errors: list[FieldError] = []
        if old is None and self.defaults:  # what the defaults will make of the record
            shown = self._shown(ctx)
            filled = _collecting([], self.defaults.fill, values, scope, shown)
            view.update(filled)
            # the records the references they fill point at, and those that defaults
            # reading them fill in turn (a chain of defaulted references)
            for _ in range(len(self.defaulted_references) if loads_defaulted else 0):
                await self.references.load(conn, [view], ctx)
                again = Scope(self.references.view({**record, **filled}, ctx), None, ctx.user)
                filled = _collecting([], self.defaults.fill, values, again, shown)
                view.update(filled)
            if not self.looks_up:
                return
        if self.lookups and (old is None or self.lookups.rerun(old)):
            old_scope = None if old is None else Scope(self.references.view(old, ctx))
            view.update(await self.lookups.fill(conn, values, scope, old_scope, errors))
        editable = old is None or self.lookups.rerun(old)
        for name, child in self.children.items():
            if child.lookups and editable and values.get(name):
                await child.look_up_lines(conn, name, values[name], old, view, ctx, errors)
        if errors:
            raise ValidationFailed(errors)

    async def look_up_lines(
        self,
        conn: Connection,
        field_name: str,
        lines: list[dict[str, Any]],
        parent: Mapping[str, Any] | None,
        parent_view: Mapping[str, Any],
        ctx: WriteContext,
        errors: list[FieldError],
    ) -> None:
        """The lookups of each line sent (a line is sent whole: each one without the field
        is looked up), over the line with ``parent`` (``parent_view``)."""
        stored = {str(line["id"]): line for line in (parent or {}).get(field_name) or ()}
        view = self.references.view
        for position, line in enumerate(lines):
            old = stored.get(str(line.get("id")))
            full = {**(old or self.blank_record), **line}
            if self.references.missing(full, ctx):
                continue  # reported by ``derive_lines``
            scope = Scope(view(full, ctx), view(old, ctx), ctx.user)
            scope.set(LOOKUP_PARENT, parent_view)
            if old is None and self.defaults:
                _collecting([], self.defaults.fill, line, scope)
            failures: list[FieldError] = []
            await self.lookups.fill(conn, line, scope, None, failures)
            errors.extend(failure.within(field_name, position) for failure in failures)

    def derive(
        self,
        values: dict[str, Any],
        old: Mapping[str, Any] | None,
        ctx: WriteContext,
        *,
        creating: bool,
    ) -> Scope:
        """Over one scope of the record as it will be stored: the lines' computed fields and
        ``required_if`` first (a line sent with an id over its stored values and the ones
        sent, its references traversable), then the record's defaults, computed fields
        (which see the lines as they will be stored, their computed values included),
        ``required_if``, and on create the rules that need nothing the database assigns."""
        record = {**(old or self.blank_record), **values}
        errors: list[FieldError] = []
        for name, child in self.children.items():
            if values.get(name) and child.fills:
                record[name] = child.derive_lines(name, values[name], old, ctx, errors)
            elif values.get(name) and old and old.get(name):  # a line sent by id: as stored
                stored = {str(line["id"]): line for line in old[name]}
                record[name] = [
                    {**stored[str(line["id"])], **line} if str(line.get("id")) in stored else line
                    for line in values[name]
                ]
        missing = self.references.missing(record, ctx)
        if missing:  # nothing to read through a reference to no record
            raise ValidationFailed([*errors, *missing])
        view = self.references.view(record, ctx)
        scope = Scope(view, self.references.view(old, ctx), ctx.user)
        self.fill(values, record, scope, errors, new=creating, ctx=ctx)
        if creating:
            errors.extend(self.rules.before_insert.failures(scope))
        if errors:
            raise ValidationFailed(errors)
        return scope

    def fill(
        self,
        sent: dict[str, Any],
        record: dict[str, Any],
        scope: Scope,
        errors: list[FieldError],
        *,
        new: bool,
        ctx: WriteContext | None = None,
    ) -> None:
        """The steps a record and each of its lines share: defaults (on a new one), computed
        fields, then ``required_if``; what they fill goes into both ``sent`` (the values to
        store) and ``record`` (the whole record the scope shows), failures into ``errors``.
        With ``ctx``, a traversed reference a default filled reads the record it points at
        (``look_up`` loaded it), as one sent would."""
        if new and self.defaults:
            shown = self._shown(ctx) if ctx is not None else None
            filled = _collecting(errors, self.defaults.fill, sent, scope, shown)
            sent.update(filled)
            record.update(filled)
        if self.computed:
            computed = _collecting(errors, self.computed.compute, scope)
            sent.update(computed)
            record.update(computed)
        if self.required_if:
            _collecting(errors, self.required_if.check, record, scope)

    def _shown(self, ctx: WriteContext) -> Callable[[str, Any], Any] | None:
        """How a default's value is shown to the expressions after it: a traversed
        reference as the record it points at (loaded by ``look_up``)."""
        if not self.defaulted_references:
            return None
        defaulted = self.defaulted_references

        def shown(name: str, value: Any) -> Any:
            if name not in defaulted:
                return value
            return self.references.view({name: value}, ctx)[name]

        return shown

    def derive_lines(
        self,
        field_name: str,
        lines: list[dict[str, Any]],
        parent: Mapping[str, Any] | None,
        ctx: WriteContext,
        errors: list[FieldError],
    ) -> list[dict[str, Any]]:
        """This line entity's defaults (on new lines), computed fields (set in each sent
        line) and ``required_if`` on the lines a parent's write sends (``parent``: the
        parent as stored, None on create); failures added to ``errors`` at
        ``<field_name>[<position>].<field>``. The lines as they will be stored, for the
        parent's expressions."""
        stored = {str(line["id"]): line for line in (parent or {}).get(field_name) or ()}
        view = self.references.view
        merged = []
        for position, line in enumerate(lines):
            old = stored.get(str(line.get("id")))
            full = {**(old or self.blank_record), **line}
            merged.append(full)
            failures = self.references.missing(full, ctx)
            if failures:
                errors.extend(failure.within(field_name, position) for failure in failures)
                continue
            scope = Scope(view(full, ctx), view(old, ctx), ctx.user)
            self.fill(line, full, scope, failures, new=old is None)
            errors.extend(failure.within(field_name, position) for failure in failures)
        return merged


def _collecting(
    errors: list[FieldError], step: Callable[..., dict[str, Any] | None], *args: Any
) -> dict[str, Any]:
    """What ``step`` gives (nothing for a check); its failures added to ``errors`` instead
    of raised, so that a write reports every failure at once."""
    try:
        return step(*args) or {}
    except ValidationFailed as failed:
        errors.extend(failed.errors)
        return {}
