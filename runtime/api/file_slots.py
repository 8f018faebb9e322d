"""Where a ``file`` field's value lives: a record's own field, or a field of one of its
line items (``…/{id}/{lines}/{line_id}/_files/{field}``).

Lines have no address, grants or history of their own (SPEC §4: a ``children`` field is
read and written inside its parent), so a line's file follows its parent on every count:
reading it needs what reading the parent needs, uploading or clearing it is an update of
the parent (its update grant, its ``readonly_fields`` naming the lines, a submitted
document's freeze unless the line's field is ``allow_on_submit``), bumps the parent's
version and is in the parent's history as a change of its lines. The ``tessera_file`` row
names the line (its entity and id), so that ``tessera files prune`` finds the files of
lines a later write removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.access import Forbidden
from engine.fieldtypes import InvalidValue, parse_id
from engine.writes import documents
from metadata import FieldType
from runtime.api.problems import ApiProblem

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine import EntityStore, WriteContext
    from engine.guard import GuardedStore
    from metadata import EntityDef, FieldDef

API_PREFIX = "/api/v1"


def record_path(store: EntityStore, record_id: int) -> str:
    return f"{API_PREFIX}/{store.entity.pack}/{store.entity.name}/{record_id}"


def _shown(text: str) -> str:
    """A name or id from a path, cut short and with what cannot be encoded escaped (a lone
    surrogate, a NUL), for a message."""
    return text[:40].encode("utf-8", "backslashreplace").decode("utf-8")


@dataclass(frozen=True, slots=True)
class FileSlot:
    """A file field of a record (``lines`` None) or of its line ``line_id`` in the children
    field ``lines``; ``store`` and ``guard`` are always the record's (the parent's)."""

    store: EntityStore
    guard: GuardedStore
    record_id: int
    field: FieldDef
    lines: str | None = None
    line_id: int | None = None
    line_entity: str | None = None

    @property
    def owner(self) -> tuple[str, int]:
        """The entity and id a ``tessera_file`` row of this slot names."""
        if self.line_id is None or self.line_entity is None:
            return self.store.entity.qualified_name, self.record_id
        return self.line_entity, self.line_id

    @property
    def url(self) -> str:
        base = record_path(self.store, self.record_id)
        if self.lines is not None:
            base = f"{base}/{self.lines}/{self.line_id}"
        return f"{base}/_files/{self.field.name}"

    def position(self, record: dict[str, Any]) -> int:
        """Where the line is among the record's lines; 404 when it is not one of them (a
        line of another record, of another entity, or removed meanwhile)."""
        for position, line in enumerate(record.get(self.lines or "") or ()):
            if isinstance(line, dict) and str(line.get("id")) == str(self.line_id):
                return position
        raise ApiProblem(
            404, f"this record has no line {self.line_id} in '{self.lines}'", "not-found"
        )

    def held(self, record: dict[str, Any]) -> Any:
        """The value the slot holds in the stored ``record`` (404: no such line)."""
        if self.lines is None:
            return record.get(self.field.name)
        return record[self.lines][self.position(record)].get(self.field.name)

    def system_values(self, record: dict[str, Any], value: Any) -> dict[str, Any]:
        """What an update of ``record`` sets to make ``value`` the slot's: the field; or
        every line kept as it is (sent by id alone), the slot's line with its new value."""
        if self.lines is None:
            return {self.field.name: value}
        target = self.position(record)
        lines: list[dict[str, Any]] = []
        for position, line in enumerate(record[self.lines]):
            kept: dict[str, Any] = {"id": int(line["id"])}
            if position == target:
                kept[self.field.name] = value
            lines.append(kept)
        return {self.lines: lines}

    def check_writable(self) -> None:
        """403 when the caller may not write the field (or, for a line's, the lines)."""
        name = self.lines or self.field.name
        if name in self.guard.access.readonly or self.field.read_only:
            raise Forbidden(f"'{self.field.name}' is read-only: no file can be uploaded to it")

    def check_document(self, old: dict[str, Any], ctx: WriteContext) -> None:
        """A document's status allows the change: a draft, or a submitted one when the
        field is ``allow_on_submit`` (409 otherwise, as for any update)."""
        entity = self.store.entity
        if self.lines is None:
            documents.check_update(entity, old, {self.field.name: None}, ctx)
        elif self.field.allow_on_submit:
            documents.check_update(entity, old, {}, ctx)  # a cancelled one never changes
        else:
            documents.check_update(entity, old, {self.lines: None}, ctx)


def _not_found(message: str) -> ApiProblem:
    return ApiProblem(404, message, "not-found")


def file_slot(
    store: EntityStore,
    guard: GuardedStore,
    record_id: int,
    name: str,
    entities: Mapping[str, EntityDef],
    *,
    lines: str | None = None,
    line_id: str | None = None,
) -> FileSlot:
    """The slot a path names (404 for a field that is not a file field the caller may see,
    a children field they may not see, or a line id that cannot be one)."""
    entity = store.entity
    if lines is None:
        found = entity.fields.get(name)
        if found is None or found.type is not FieldType.FILE or name in guard.access.hidden:
            raise _not_found(f"{entity.qualified_name} has no file field '{_shown(name)}'")
        return FileSlot(store, guard, record_id, found)
    children = entity.fields.get(lines)
    if (
        children is None
        or children.type is not FieldType.CHILDREN
        or children.entity is None
        or lines in guard.access.hidden
    ):
        raise _not_found(f"{entity.qualified_name} has no line items '{_shown(lines)}'")
    line_entity = entities[children.entity]
    found = line_entity.fields.get(name)
    if found is None or found.type is not FieldType.FILE:
        raise _not_found(f"the lines of '{lines}' have no file field '{_shown(name)}'")
    try:
        number = parse_id(line_id)
    except InvalidValue:
        raise _not_found(f"this record has no line {_shown(line_id or '')} in '{lines}'") from None
    return FileSlot(store, guard, record_id, found, lines, number, children.entity)
