"""What a write that breaks a database constraint is told: a unique value taken (409), a
reference to a missing record or a required value left out (422)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from engine.errors import Conflict, FieldError, ValidationFailed
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from engine.database import Connection, IntegrityViolation
    from engine.store.records import RecordStore
    from metadata import EntityDef

_KEY_DETAIL = re.compile(r"Key \(([^)]*)\)=")
MISSING_REFERENCE = "refers to a record that does not exist"
"""What a reference to a missing record, or to one the writer may not read, is told."""


async def integrity_error(
    conn: Connection, store: RecordStore, exc: IntegrityViolation, values: Mapping[str, Any]
) -> Exception:
    """The error a write of ``values`` to ``store`` that the database refused answers."""
    entity = store.entity
    columns = exc.columns
    match = _KEY_DETAIL.search(exc.detail)
    if match:
        columns = tuple(c.strip().strip('"') for c in match.group(1).split(","))
    if exc.kind == "unique":
        fields = [c for c in columns if c in entity.fields] or list(columns)
        return unique_conflict(entity, fields)
    if exc.kind == "foreign_key":
        fields = [c for c in columns if c in entity.fields]
        if not fields:
            fields = await _missing_references(conn, store, values)
        return ValidationFailed(
            [FieldError(f, "reference", MISSING_REFERENCE) for f in fields]
            or [FieldError("", "reference", "refers to a missing record")]
        )
    return ValidationFailed([FieldError(c, "required", "is required") for c in columns])


def unique_conflict(entity: EntityDef, fields: Sequence[str]) -> Conflict:
    """The 409 of a value a unique field already holds. It says only that the value is
    taken (which a unique constraint cannot hide), never which record holds it, and reads
    the same whether or not the writer may read that record."""
    listing = ", ".join(fields)
    plural = entity.label_plural.lower()
    return Conflict(
        f"this {listing} is already in use: it must be unique among all {plural}",
        [FieldError(f, "unique", "is already in use") for f in fields],
    )


def still_referenced(entity: EntityDef) -> Conflict:
    """A delete that a restricting reference blocks. The database's detail names a table:
    an internal name, and a record's neighbours the caller may not be allowed to know of."""
    return Conflict(
        f"this {entity.label.lower()} is still referenced by other records; "
        "change or delete those first"
    )


async def _missing_references(
    conn: Connection, store: RecordStore, values: Mapping[str, Any]
) -> list[str]:
    missing = []
    for field in store.stored_fields:
        value = values.get(field.name)
        if field.type is FieldType.REFERENCE and isinstance(value, int):
            target = store.registry.records_for(field.to or "")
            if not await target.get_many(conn, [value]):
                missing.append(field.name)
    return missing
