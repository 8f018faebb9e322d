"""What a write that breaks a database constraint is told: a unique value taken (409), a
reference to a missing record or a required value left out (422)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from engine.errors import Conflict, FieldError, ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from engine.database import IntegrityViolation
    from metadata import EntityDef

_KEY_DETAIL = re.compile(r"Key \(([^)]*)\)=")
MISSING_REFERENCE = "refers to a record that does not exist"
"""What a reference to a missing record, or to one the writer may not read, is told."""


async def integrity_error(
    entity: EntityDef, exc: IntegrityViolation, missing: Callable[[], Awaitable[list[str]]]
) -> Exception:
    """The error a write of ``entity`` that the database refused answers; ``missing``
    names the reference fields whose record does not exist (asked when the database's
    detail does not say which)."""
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
            fields = await missing()
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
