"""The references of a write: those written as ``{"<unique field>": value}`` looked up, those
a writer with limited rights may not point at refused (answered like a missing record, so a
write cannot tell whether such a record exists), and the records expressions traverse to
(``account.name``) loaded once per write."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from engine.access import Caller, matches
from engine.errors import FieldError, ValidationFailed
from engine.fieldtypes import InvalidValue, ReferenceByKey, kind_of
from engine.references import RecordRef, reference_id
from engine.store import MISSING_REFERENCE
from engine.writes.context import NO_USER
from engine.writes.people import UserFields
from metadata import ADMIN_ROLE, FieldType, Permission

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from engine.access import AccessPolicy
    from engine.database import Connection
    from engine.store import RecordStore
    from engine.writes.context import WriteContext


class References:
    """One entity's references as its writes see them, compiled once."""

    def __init__(
        self,
        records: RecordStore,
        traversed: Mapping[str, str],
        access: AccessPolicy,
        children: Mapping[str, References],
    ) -> None:
        self.records = records
        self.entity = records.entity
        self.traversed = dict(traversed)
        """Reference fields whose targets' fields expressions read, by target entity."""
        self.access = access
        self.children = dict(children)
        self.loads: bool = bool(self.traversed) or any(c.loads for c in self.children.values())
        self.users = UserFields(
            [f.name for f in records.stored_fields if f.type is FieldType.USER], records.dialect
        )
        """The entity's user fields (``type: user``), checked on every write."""
        self.looks_up = any(f.lookup is not None for f in self.entity.fields.values())
        """Whether ``lookup:`` fields read this entity's values (its references as ids)."""
        """Whether a write loads referenced records: this entity's expressions or its
        lines' traverse references."""

    def view(self, record: Mapping[str, Any] | None, ctx: WriteContext) -> Any:
        """``record`` as expressions see it: traversed references become ``RecordRef``s
        over the loaded targets. The record itself when nothing is traversed."""
        if not self.traversed or record is None:
            return record
        view = dict(record)
        for field_name, target in self.traversed.items():
            ident = reference_id(record.get(field_name))
            if ident is not None:
                view[field_name] = RecordRef(ident, ctx.references.get((target, ident)))
        return view

    def missing(self, record: Mapping[str, Any], ctx: WriteContext) -> list[FieldError]:
        """The traversed references of ``record`` whose targets were loaded and found
        missing: reported at the reference (as the database would), not as an expression
        that cannot read them."""
        errors = []
        for field_name, target in self.traversed.items():
            ident = reference_id(record.get(field_name))
            key = (target, ident or "")
            if ident is not None and key in ctx.references and ctx.references[key] is None:
                errors.append(FieldError(field_name, "reference", MISSING_REFERENCE))
        return errors

    async def load(
        self, conn: Connection, records: Iterable[Mapping[str, Any]], ctx: WriteContext
    ) -> None:
        """Load, into the write's cache, the records that this entity's expressions reach
        through references from ``records`` (and their lines): one query per target
        entity, whatever the number of records."""
        if not self.loads:
            return
        records = list(records)
        wanted: dict[str, set[str]] = {}
        for field_name, target in self.traversed.items():
            for record in records:
                ident = reference_id(record.get(field_name))
                if ident is not None and (target, ident) not in ctx.references:
                    wanted.setdefault(target, set()).add(ident)
        for target, ids in wanted.items():
            found = await self.records.registry.records_for(target).get_many(
                conn, [int(i) for i in ids]
            )
            for ident in ids:
                ctx.references[(target, ident)] = found.get(ident)
        for name, child in self.children.items():
            lines = [
                line for r in records for line in (r.get(name) or []) if isinstance(line, dict)
            ]
            if child.loads and lines:
                await child.load(conn, lines, ctx)

    async def resolve(
        self,
        conn: Connection,
        values: dict[str, Any],
        ctx: WriteContext | None = None,
        *,
        stored: Mapping[str, Any] | int | None = None,
    ) -> None:
        """Replace each reference written as ``{"<unique field>": value}`` by the id it
        names; with a writer whose rights are limited (``ctx.roles``), also refuse every
        reference to a record the writer may not read exactly like one to a missing record,
        so that a write cannot tell whether such a record exists. ``stored`` (the record
        being updated, or its id) exempts a reference left as it is."""
        limits = self._limits(ctx)
        errors = []
        if self.users:
            kept = stored if stored is None or not isinstance(stored, int) else None
            errors += await self.users.resolve(conn, values, kept)
        for name, value in values.items():
            if limits is not None and not isinstance(value, ReferenceByKey):
                if await self._refused(conn, limits, name, value, ctx, stored):
                    errors.append(FieldError(name, "reference", MISSING_REFERENCE))
                continue
            if isinstance(value, ReferenceByKey):
                target = self.records.registry.records_for(self.entity.fields[name].to or "")
                try:
                    if limits is not None:
                        _check_lookup_key(limits, target, value.key_field)
                    found = await target.id_by_unique(conn, value.key_field, value.value)
                except InvalidValue as exc:
                    errors.append(FieldError(name, exc.code, exc.message))
                    continue
                if (
                    found is not None
                    and limits is not None
                    and not await _may_point_at(conn, limits, target, found, ctx)
                ):
                    found = None  # answered like a missing record: no existence oracle
                if found is None:
                    errors.append(
                        FieldError(
                            name,
                            "reference",
                            f"no {target.entity.qualified_name} record with "
                            f"{value.key_field} = {value.value!r}",
                        )
                    )
                else:
                    values[name] = found
        if errors:
            raise ValidationFailed(errors)

    async def resolve_lines(
        self,
        conn: Connection,
        values: Mapping[str, Any],
        ctx: WriteContext,
        *,
        stored: Mapping[str, Any] | None = None,
    ) -> None:
        """``resolve`` the references of the lines sent in ``values`` whose entity's
        expressions traverse them or that have lookups, so that the lines' computed fields,
        ``required_if`` and lookups see the records they point at. ``stored``: the parent as
        it was, whose lines exempt the references they keep. Every error at once, at
        ``<field>[<position>].<field>``."""
        errors: list[FieldError] = []
        for name, child in self.children.items():
            if not child.traversed and not child.looks_up:
                continue
            kept = {str(line["id"]): line for line in (stored or {}).get(name) or ()}
            for position, line in enumerate(values.get(name) or ()):
                try:
                    await child.resolve(conn, line, ctx, stored=kept.get(str(line.get("id"))))
                except ValidationFailed as failed:
                    errors.extend(error.within(name, position) for error in failed.errors)
        if errors:
            raise ValidationFailed(errors)

    def _limits(self, ctx: WriteContext | None) -> Caller | None:
        """Whose read rights limit the records a write may point at: the writer's, or the
        role a rule runs as (``ctx.roles``); None for the engine's own writes (the command
        line, fixtures, rules running as the system), which may point anywhere."""
        if ctx is None or ctx.roles is None or ADMIN_ROLE in ctx.roles:
            return None
        return Caller(ctx.user or NO_USER, ctx.roles, self.access)

    async def _refused(
        self,
        conn: Connection,
        limits: Caller,
        name: str,
        value: Any,
        ctx: WriteContext | None,
        stored: Mapping[str, Any] | int | None,
    ) -> bool:
        """Whether the id ``value`` of the reference field ``name`` points at a record the
        writer may not read (or at no record: the same answer), and is not the value the
        record already holds nor one the pack chose (a default, a computed field)."""
        field = self.entity.fields.get(name)
        if field is None or field.type is not FieldType.REFERENCE or field.computed:
            return False
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        if value == self._defaults.get(name):
            return False
        target = self.records.registry.records_for(field.to or "")
        if await _may_point_at(conn, limits, target, value, ctx):
            return False
        if isinstance(stored, int):
            stored = (await self.records.get_many(conn, [stored])).get(str(stored))
        return stored is None or reference_id(stored.get(name)) != str(value)

    @functools.cached_property
    def _defaults(self) -> dict[str, Any]:
        """The constant default id of each reference field that has one."""
        defaults = {}
        for field in self.records.stored_fields:
            if field.type is FieldType.REFERENCE and field.default is not None:
                try:
                    defaults[field.name] = kind_of(field).coercer(field)(field.default)
                except InvalidValue:
                    continue
        return defaults


async def _may_point_at(
    conn: Connection, limits: Caller, target: RecordStore, record_id: int, ctx: WriteContext | None
) -> bool:
    """Whether ``limits`` may read ``target``'s record ``record_id``. A caller who may read
    every record of the target needs no lookup (a missing one then fails on the foreign
    key, with the same answer); otherwise the record is loaded, once per write (into
    ``ctx.references``, where expressions find it too), and judged by the read grant. A
    line (of a ``children`` field) has no grants of its own: it is read with its parent,
    so pointing at it takes the read grant of its parent record."""
    if target.entity.parent is not None:
        return await _may_point_at_line(conn, limits, target, record_id, ctx)
    access = limits.access(target.entity.qualified_name)
    if not access.allows(Permission.READ):
        return False
    covered = access.permissions[Permission.READ]
    if covered is None:
        return True
    key = (target.entity.qualified_name, str(record_id))
    if ctx is not None and key in ctx.references:
        record = ctx.references[key]
    else:
        record = (await target.get_many(conn, [record_id])).get(str(record_id))
        if ctx is not None:
            ctx.references[key] = record
    return record is not None and matches(covered, record, limits.actor)


async def _may_point_at_line(
    conn: Connection, limits: Caller, target: RecordStore, record_id: int, ctx: WriteContext | None
) -> bool:
    """Whether ``limits`` may read the parent record of the line ``record_id``."""
    parent = target.entity.parent or ""
    if not limits.access(parent).allows(Permission.READ):
        return False
    if limits.access(parent).permissions[Permission.READ] is None:
        return True  # every parent is readable; a missing line fails on the foreign key
    sql = target.sql.parent_of
    rows = await conn.fetch(sql.sql, sql.args({"id": record_id}))
    if not rows:
        return False
    parents = target.registry.records_for(parent)
    return await _may_point_at(conn, limits, parents, int(rows[0][0]), ctx)


def _check_lookup_key(limits: Caller, target: RecordStore, key_field: str) -> None:
    """A lookup ``{"<unique field>": value}`` may not use a field hidden from the writer
    (it would tell whether a record holds that hidden value): it is answered as if the
    field were not a unique one."""
    hidden = limits.access(target.entity.qualified_name).hidden
    if key_field in hidden:
        unique = ", ".join(f for f in target.entity.unique_fields() if f not in hidden)
        raise InvalidValue(
            "reference",
            f"'{key_field}' is not a unique field of {target.entity.qualified_name} "
            f"(unique fields: {unique or 'none'})",
        )
