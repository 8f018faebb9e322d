"""Writing rows: INSERT (with its audit row), UPDATE and DELETE of one record, and the
audit rows of the writes the pipeline makes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from engine.audit import AuditAction, changes_between
from engine.database import IntegrityViolation
from engine.store.integrity import still_referenced
from engine.store.records import KeyTaken
from engine.store.sql import NEW_ID

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from engine.database import Connection
    from engine.store.records import RecordStore


async def insert(
    store: RecordStore,
    conn: Connection,
    values: dict[str, Any],
    children: Mapping[str, Any],
    user_id: str | None,
    key: str | None,
) -> tuple[Sequence[Any], dict[str, Any]]:
    """Draw the autonumbers and INSERT the record (on PostgreSQL with its audit row, in
    the same statement); the inserted row, and the audit row. With ``key``, raise
    ``KeyTaken`` instead when a record already holds the new record's ``key``."""
    await store.number(conn, values)
    now = store.timestamp(dt.datetime.now(dt.UTC))
    params = store.encode(values)
    params.update(
        created_at=now,
        updated_at=now,
        created_by=user_id,
        updated_by=user_id,
        version=1,
    )
    changes = changes_between(None, {**values, **children}, [*values, *children])
    audit = store.registry.audit.row(
        store.entity.qualified_name, "", AuditAction.CREATE, changes, user_id
    )
    inline = store.dialect_name == "postgresql"
    insert_sql = store.sql.insert_unless_taken(key, audited=inline)
    if inline:
        params.update(audit_at=audit["at"], audit_user=audit["user_id"])
        params["audit_changes"] = audit["changes"]
    constants = insert_sql.constants
    args = [params[n] if n in params else constants.get(n) for n in insert_sql.names]
    try:
        row = await conn.fetchrow(insert_sql.sql, args)
    except IntegrityViolation as exc:
        raise await store.integrity_error(conn, exc, values) from None
    if row is None:
        assert key is not None  # only ON CONFLICT DO NOTHING inserts no row
        raise KeyTaken
    return row, audit


async def update(
    store: RecordStore,
    conn: Connection,
    record_id: int,
    values: Mapping[str, Any],
    user_id: str | None,
    expected_version: int | None,
) -> dict[str, Any]:
    """UPDATE the record's ``values`` (its version goes up by one); the row as stored.
    A record that is gone answers 404, one at another version 409."""
    params = store.encode(values)
    params.update(
        updated_at=store.timestamp(dt.datetime.now(dt.UTC)),
        updated_by=user_id,
        record_id=record_id,
        expected_version=expected_version,
    )
    sql = store.sql.update(tuple(sorted(values)), expected_version is not None)
    try:
        row = await conn.fetchrow(sql.sql, sql.args(params))
    except IntegrityViolation as exc:
        raise await store.integrity_error(conn, exc, values) from None
    if row is None:
        await store.raise_missing_or_stale(conn, record_id, expected_version)
    assert row is not None
    return store.decode(row)


async def update_audited(
    store: RecordStore,
    conn: Connection,
    record_id: int,
    values: Mapping[str, Any],
    user_id: str | None,
    expected_version: int | None,
    action: AuditAction,
    changes: Mapping[str, list[Any]],
) -> dict[str, Any]:
    """PostgreSQL: ``update`` with the write's audit row (``action``, ``changes``, known
    before the write) in the same statement."""
    params = store.encode(values)
    audit = store.registry.audit.row(store.entity.qualified_name, "", action, changes, user_id)
    params.update(
        updated_at=store.timestamp(dt.datetime.now(dt.UTC)),
        updated_by=user_id,
        record_id=record_id,
        expected_version=expected_version,
        audit_at=audit["at"],
        audit_user=audit["user_id"],
        audit_changes=audit["changes"],
    )
    sql = store.sql.update_audited(tuple(sorted(values)), expected_version is not None, action)
    try:
        row = await conn.fetchrow(sql.sql, sql.args(params))
    except IntegrityViolation as exc:
        raise await store.integrity_error(conn, exc, values) from None
    if row is None:
        await store.raise_missing_or_stale(conn, record_id, expected_version)
    assert row is not None
    return store.decode(row)


async def delete(
    store: RecordStore,
    conn: Connection,
    record_id: int,
    old: Mapping[str, Any],
    user_id: str | None,
    expected_version: int | None,
) -> None:
    """DELETE the record, and write its audit row (``old``: the record as it was)."""
    sql = store.sql.delete if expected_version is None else store.sql.delete_versioned
    args = (record_id,) if expected_version is None else (record_id, expected_version)
    try:
        changed = await conn.execute(sql.sql, args)
    except IntegrityViolation:
        raise still_referenced(store.entity) from None
    if not changed:
        await store.raise_missing_or_stale(conn, record_id, expected_version)
    changes = changes_between(old, None, old.keys())
    await audit(store, conn, record_id, AuditAction.DELETE, changes, user_id)


async def audit(
    store: RecordStore,
    conn: Connection,
    record_id: int | str,
    action: AuditAction,
    changes: Mapping[str, list[Any]],
    user_id: str | None = None,
) -> None:
    audit = store.registry.audit
    row = audit.row(store.entity.qualified_name, str(record_id), action, changes, user_id)
    await audit.add(conn, row)


async def insert_together(
    conn: Connection,
    parts: Sequence[tuple[RecordStore, Mapping[str, Any], str | None, tuple[str, ...]]],
    first_id: int | None,
    now: Any,
) -> Sequence[Any]:
    """PostgreSQL: INSERT several records (``(store, values, user_id, bound)``) each with its
    audit row, as one statement: atomic without a transaction, one round trip. The first
    record's id is ``first_id`` (drawn before) or, when None, the one its table assigns;
    the fields ``bound`` of a later record take the first record's id (their values are
    placeholders). The first record's row."""
    first = parts[0][0]
    sql = first.sql.combined(
        [store.sql for store, _, _, _ in parts],
        tuple(bound for _, _, _, bound in parts),
        with_id=first_id is not None,
    )
    params: list[dict[str, Any]] = []
    for store, values, user_id, bound in parts:
        own = store.encode(values)
        own.update(created_at=now, updated_at=now, created_by=user_id, updated_by=user_id)
        own["version"] = 1
        audited = {**values, **dict.fromkeys(bound, NEW_ID)} if bound else values
        changes = changes_between(None, audited, list(values))
        audit = store.registry.audit.row(
            store.entity.qualified_name, "", AuditAction.CREATE, changes, user_id
        )
        own.update(audit_at=audit["at"], audit_user=audit["user_id"])
        own["audit_changes"] = audit["changes"]
        params.append(own)
    params[0]["id"] = first_id
    row = await conn.fetchrow(sql.sql.sql, sql.args(params))
    assert row is not None
    return row
