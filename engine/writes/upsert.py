"""Upserts: update the record a unique key finds, or create it, as one atomic step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import Conflict, FieldError, ValidationFailed
from engine.fieldtypes import InvalidValue, kind_of

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.database import Connection
    from engine.store import RecordStore

UPSERT_ATTEMPTS = 3
"""How often an upsert looks its key up again after its create gave way to a record that
was then deleted before it could be locked (``upsert_with``)."""


async def upsert_with(
    records: RecordStore,
    conn: Connection,
    field_name: str,
    key_value: Any,
    data: Any,
    create: Callable[[Any, str], Awaitable[dict[str, Any] | None]],
    update: Callable[[int], Awaitable[dict[str, Any]]],
) -> tuple[dict[str, Any], bool]:
    """An upsert as one atomic step of the caller's transaction, whatever other
    transactions do with the same key at the same time:

    1. look the key up, locking the record found until the transaction ends (``FOR
       UPDATE``) and given to ``update``: the update's checks, rules and audit;
    2. none: ``create`` the record from ``data`` and the key, giving way to a record
       with the same key (``create`` is passed ``field_name``, for
       ``create_unless_taken``, and answers None when it gave way): ``INSERT … ON
       CONFLICT (key) DO NOTHING`` waits for a concurrent transaction that has just
       inserted that key and inserts nothing if it commits;
    3. it gave way: back to 1, which now finds that record and updates it.

    So concurrent upserts of a new key answer one create and then updates, never a
    conflict. Each branch does exactly what a create or an update does (the create's
    rights, rules and triggers on one side, the update's on the other), which one
    ``INSERT … ON CONFLICT DO UPDATE`` could not. On SQLite write transactions run one
    at a time, so step 1 always sees the committed record. ``create`` and ``update``
    are the store's own or a ``GuardedStore``'s, which check the caller's rights. The
    body may give the key field a new value when it updates (a rename), not when it
    creates: the record created is the one the path names (a 422 otherwise), so that
    sending the same upsert again updates it. A record deleted between 2 and 1 makes
    the upsert start again, ``UPSERT_ATTEMPTS`` times at most."""
    entity = records.entity
    key = upsert_key(records, field_name, key_value)
    body = dict(data) if isinstance(data, dict) else data
    if isinstance(body, dict):
        body.setdefault(field_name, key_value)
    for _ in range(UPSERT_ATTEMPTS):
        existing = await upsert_target(records, conn, field_name, key_value)
        if existing is not None:
            return await update(existing), False
        if isinstance(body, dict) and upsert_key(records, field_name, body[field_name]) != key:
            message = (
                f"must be the key in the path ({key_value!r}) when the record is created: "
                "no record has that key"
            )
            raise ValidationFailed([FieldError(field_name, "key", message)])
        created = await create(body, field_name)
        if created is not None:
            return created, True
    raise Conflict(
        f"the {entity.label.lower()} with this {field_name} was created and deleted "
        "by other writes while this one ran; send it again"
    )


def upsert_key(records: RecordStore, field_name: str, value: Any) -> Any:
    """``value`` as a value of the unique field ``field_name``; a 422 when it is not one."""
    entity = records.entity
    field = entity.fields.get(field_name)
    try:
        if field is None or field_name not in entity.unique_fields():
            raise InvalidValue("reference", f"'{field_name}' is not a unique field")
        if value is None:
            raise InvalidValue("required", "is required")
        return kind_of(field).coercer(field)(value)
    except InvalidValue as exc:
        raise ValidationFailed([FieldError(field_name, exc.code, exc.message)]) from None


async def upsert_target(
    records: RecordStore, conn: Connection, field_name: str, key_value: Any
) -> int | None:
    """The id of the record an upsert on ``field_name`` = ``key_value`` updates, locked
    until the transaction ends (so that the update reads and writes it as it is), or
    None (it creates); a key that is not a valid value of the field is a 422."""
    try:
        return await records.id_by_unique(conn, field_name, key_value, lock=True)
    except InvalidValue as exc:
        raise ValidationFailed([FieldError(field_name, exc.code, exc.message)]) from None
