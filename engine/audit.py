"""The audit trail: who created, changed or deleted which record, when, and what changed;
and the security events around it (refused sign-ins, permission denials).

One row per write, in ``tessera_audit``, written on the same connection and in the same
transaction as the write itself, so a write and its audit row commit or roll back
together. ``changes`` maps each changed field to ``[old, new]`` (hidden fields included:
whoever reads the trail sees only the fields their roles let them see).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import bindparam, insert, literal, or_, select

from engine.sql import CompiledSql, compile_sql, id_list_condition, id_list_param
from engine.tables import audit_table, user_table

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from sqlalchemy.engine import Dialect

    from engine.database import Connection

IGNORED = frozenset({"id", "created_at", "updated_at", "created_by", "updated_by", "version"})
"""System fields every write changes; the audit row has its own time and user."""


class AuditAction(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SUBMIT = "submit"
    """A document's ``_submit`` (changes: ``docstatus``)."""
    CANCEL = "cancel"
    """A document's ``_cancel``."""
    LOGIN_FAILED = "login_failed"
    """A refused sign-in (``entity`` is ``auth``, ``record_id`` the user name tried)."""
    DENIED = "denied"
    """A request the caller's roles do not allow (403)."""


WRITES = (
    AuditAction.CREATE,
    AuditAction.UPDATE,
    AuditAction.DELETE,
    AuditAction.SUBMIT,
    AuditAction.CANCEL,
)
"""What a record's history shows (security events are in the trail, not in histories)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: float
    user_id: str | None
    entity: str
    record_id: str
    action: AuditAction
    changes: dict[str, list[Any]]
    username: str | None = None
    """The name of the user ``user_id`` names; None for the system's writes and for a user
    deleted since."""


def changes_between(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, names: Iterable[str]
) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields whose value differs (empty stays out of a
    create and a delete)."""
    changes: dict[str, list[Any]] = {}
    if old is None or new is None:  # a create or a delete: every value that is not empty
        return _all_values(new if old is None else old, names, new is None)
    for name in names:
        if name in IGNORED:
            continue
        before = old.get(name) if old is not None else None
        after = new.get(name) if new is not None else None
        if before != after:
            changes[name] = [_plain(before), _plain(after)]
    return changes


def _all_values(
    record: Mapping[str, Any] | None, names: Iterable[str], deleted: bool
) -> dict[str, list[Any]]:
    """``changes_between`` of nothing and ``record``: without comparing each value with
    None (a decimal's comparison with None goes through the numbers ABCs)."""
    changes: dict[str, list[Any]] = {}
    if record is None:
        return changes
    for name in names:
        if name in IGNORED:
            continue
        value = record.get(name)
        if value is not None:
            changes[name] = [_plain(value), None] if deleted else [None, _plain(value)]
    return changes


_AS_IS = frozenset({str, int, bool, float, type(None)})
"""Types whose values an audit row keeps as they are (most of a record's values)."""


def _plain(value: Any) -> Any:
    if type(value) in _AS_IS:
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in IGNORED}
    return value


def encode_changes(changes: Mapping[str, list[Any]]) -> str:
    return orjson.dumps(changes, default=str).decode()


class AuditLog:
    """The audit table's SQL for one dialect, compiled once."""

    COLUMNS = ("at", "user_id", "entity", "record_id", "action", "changes")

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._inserts: dict[int, CompiledSql] = {}

    @functools.cached_property
    def _insert(self) -> CompiledSql:
        return compile_sql(insert(audit_table), self.dialect, list(self.COLUMNS))

    @functools.cached_property
    def _history(self) -> CompiledSql:
        return self._history_sql(newest_first=False)

    @functools.cached_property
    def _latest(self) -> CompiledSql:
        return self._history_sql(newest_first=True)

    def _history_sql(self, *, newest_first: bool) -> CompiledSql:
        c = audit_table.c
        statement = (
            select(c.id, c.at, c.user_id, c.entity, c.record_id, c.action, c.changes)
            .where(
                c.entity == bindparam("entity"),
                c.record_id == bindparam("record_id"),
                c.id > bindparam("after"),
                or_(*(c.action == literal(a.value) for a in WRITES)),
            )
            .order_by(c.id.desc() if newest_first else c.id)
            .limit(bindparam("limit"))
        )
        return compile_sql(statement, self.dialect)

    def row(
        self,
        entity: str,
        record_id: str,
        action: AuditAction,
        changes: Mapping[str, list[Any]],
        user_id: str | None,
    ) -> dict[str, Any]:
        return {
            "at": time.time(),
            "user_id": user_id,
            "entity": entity,
            "record_id": record_id,
            "action": action.value,
            "changes": encode_changes(changes),
        }

    async def add(self, conn: Connection, row: Mapping[str, Any]) -> None:
        await conn.execute(self._insert.sql, self._insert.args(row))

    BATCH = 32
    """Rows per INSERT of ``add_many``."""

    async def add_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The rows in order, in one INSERT per ``BATCH`` of them."""
        for start in range(0, len(rows), self.BATCH):
            chunk = rows[start : start + self.BATCH]
            if len(chunk) == 1:
                await self.add(conn, chunk[0])
                continue
            sql = self._insert_many(len(chunk))
            params = {f"{name}_{i}": row[name] for i, row in enumerate(chunk) for name in row}
            await conn.execute(sql.sql, sql.args(params))

    def _insert_many(self, count: int) -> CompiledSql:
        """One INSERT of ``count`` rows (parameters ``<column>_<row>``), compiled once."""
        sql = self._inserts.get(count)
        if sql is None:
            rows: list[dict[str, Any]] = [
                {n: bindparam(f"{n}_{i}") for n in self.COLUMNS} for i in range(count)
            ]
            sql = self._inserts[count] = compile_sql(insert(audit_table).values(rows), self.dialect)
        return sql

    async def history(
        self,
        conn: Connection,
        entity: str,
        record_id: str,
        *,
        after: int = 0,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[AuditEntry]:
        sql = self._latest if newest_first else self._history
        params = {"entity": entity, "record_id": record_id, "after": after, "limit": limit}
        rows = await conn.fetch(sql.sql, sql.args(params))
        names = await self._usernames(conn, {str(r[2]) for r in rows if r[2] is not None})
        return [
            AuditEntry(
                int(r[0]),
                float(r[1]),
                r[2],
                str(r[3]),
                str(r[4]),
                AuditAction(r[5]),
                orjson.loads(r[6]),
                names.get(r[2]) if r[2] is not None else None,
            )
            for r in rows
        ]

    async def _usernames(self, conn: Connection, user_ids: set[str]) -> dict[str, str]:
        """The names of the users with these ids (text, as the trail holds them), in one
        query; a deleted user has none."""
        ids = sorted({int(i) for i in user_ids if i.isascii() and i.isdigit() and len(i) < 19})
        if not ids:
            return {}
        sql = self._names
        rows = await conn.fetch(sql.sql, [id_list_param(ids, self.dialect.name)])
        return {str(row[0]): str(row[1]) for row in rows}

    @functools.cached_property
    def _names(self) -> CompiledSql:
        c = user_table.c
        condition = id_list_condition(c.id, self.dialect.name, "ids")
        return compile_sql(select(c.id, c.username).where(condition), self.dialect)
