"""The transactional outbox (SPEC §3.3): events that rules send out of the database.

An ``email`` or ``webhook`` action does not talk to the outside world inside the write:
it adds a row here, in the write's transaction, so the event exists if and only if the
write committed. Deliverers (a Celery worker, or the server's in-process dispatcher) then
*claim* a due event for a lease, send it, and mark it delivered. A claim is one
conditional UPDATE, so two deliverers never hold the same event at once; a deliverer that
dies mid-send leaves a lease that expires, and the event is sent again (at least once).
Each event carries a key that stays the same across attempts, sent along so that the
receiver can drop a repeat.

Times are Unix seconds (floats), the same on every database.
"""

from __future__ import annotations

import enum
import functools
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, bindparam, func, insert, null, or_, select, update

from engine.sql import CompiledSql, compile_sql
from engine.tables import outbox_table

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Dialect

    from engine.database import Connection

DEFAULT_LEASE_SECONDS = 60.0
DEFERRED_ACTION = "action"
"""Kind of the events of ``async: true`` create and update actions, which deliverers apply
to the database (in one transaction with marking them delivered) instead of sending."""


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    """Waiting for its first or next attempt (``next_attempt_at``)."""
    DELIVERING = "delivering"
    """Claimed by a deliverer until ``claimed_until``."""
    DELIVERED = "delivered"
    FAILED = "failed"
    """Out of attempts; delivered again only when someone retries it."""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: int
    event_key: str
    kind: str
    entity: str
    record_id: str
    rule: str
    payload: dict[str, Any]
    status: EventStatus
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float
    delivered_at: float | None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a rule wants sent, before it is stored."""

    kind: str
    entity: str
    record_id: str
    rule: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: attempt n waits ``base * 2**(n-1)`` seconds, at most ``cap``;
    after ``max_attempts`` failures the event is ``failed``."""

    max_attempts: int = 8
    base_seconds: float = 2.0
    cap_seconds: float = 900.0

    def delay(self, attempts: int) -> float:
        return float(min(self.cap_seconds, self.base_seconds * 2 ** max(0, attempts - 1)))


_COLUMNS = (
    "id",
    "event_key",
    "kind",
    "entity",
    "record_id",
    "rule",
    "payload",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "delivered_at",
)


class Outbox:
    """The outbox's SQL for one dialect, compiled once on first use."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    # -- writing (inside the triggering write's transaction) -----------------------------

    async def add(self, conn: Connection, event: NewEvent) -> int:
        now = time.time()
        sql = self._insert
        row = await conn.fetchrow(
            sql.sql,
            sql.args(
                {
                    "event_key": uuid.uuid4().hex,
                    "kind": event.kind,
                    "entity": event.entity,
                    "record_id": event.record_id,
                    "rule": event.rule,
                    "payload": orjson.dumps(dict(event.payload), default=_exact).decode(),
                    "status": EventStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            ),
        )
        assert row is not None
        return int(row[0])

    # -- delivering ------------------------------------------------------------------------

    async def due(self, conn: Connection, *, limit: int) -> list[int]:
        """Ids of events a deliverer may claim now: pending and due, or held by a lease
        that ran out (its deliverer died)."""
        sql = self._due
        rows = await conn.fetch(sql.sql, sql.args({"now": time.time(), "limit": limit}))
        return [int(row[0]) for row in rows]

    async def hand_out(
        self, conn: Connection, *, limit: int, grace: float, hold: float
    ) -> list[int]:
        """For a sweep that queues delivery tasks on a broker: events claimable for longer
        than ``grace`` seconds (a task published at commit may still be on its way) and not
        handed out in the last ``hold`` seconds, marked as handed out (``claimed_until`` on
        a pending event) so that the next sweeps leave them to the tasks queued now. One
        statement: two sweeps at once never hand out the same event."""
        now = time.time()
        sql = self._hand_out
        params = {"now": now, "due_before": now - grace, "until": now + hold, "limit": limit}
        rows = await conn.fetch(sql.sql, sql.args(params))
        return [int(row[0]) for row in rows]

    async def claim(
        self, conn: Connection, event_id: int, *, lease: float = DEFAULT_LEASE_SECONDS
    ) -> OutboxEvent | None:
        """Take the event for ``lease`` seconds, or None when it is not claimable (already
        delivered, failed, not yet due, or held by another deliverer's live lease)."""
        now = time.time()
        sql = self._claim
        changed = await conn.execute(
            sql.sql, sql.args({"record_id": event_id, "now": now, "until": now + lease})
        )
        if not changed:
            return None
        return await self.get(conn, event_id)

    async def delivered(self, conn: Connection, event_id: int) -> bool:
        """Mark the event delivered; False when this deliverer no longer holds it (its
        lease ran out and another one claimed it)."""
        sql = self._delivered
        changed = await conn.execute(sql.sql, sql.args({"record_id": event_id, "now": time.time()}))
        return bool(changed)

    async def attempt_failed(
        self, conn: Connection, event: OutboxEvent, error: str, policy: RetryPolicy
    ) -> float | None:
        """Record a failed attempt; the seconds until the next one, or None when the event
        has run out of attempts and is now ``failed``."""
        attempts = event.attempts + 1
        if attempts >= policy.max_attempts:
            status, delay = EventStatus.FAILED, None
        else:
            status, delay = EventStatus.PENDING, policy.delay(attempts)
        sql = self._attempt_failed
        await conn.execute(
            sql.sql,
            sql.args(
                {
                    "record_id": event.id,
                    "status": status.value,
                    "attempts": attempts,
                    "next_attempt_at": time.time() + (delay or 0.0),
                    "last_error": error[:2000],
                }
            ),
        )
        return delay

    async def retry(self, conn: Connection, event_id: int) -> bool:
        """Make a failed event due again with a fresh set of attempts; False when it is not
        a failed event."""
        sql = self._retry
        return bool(
            await conn.execute(sql.sql, sql.args({"record_id": event_id, "now": time.time()}))
        )

    # -- reading ---------------------------------------------------------------------------

    async def get(self, conn: Connection, event_id: int) -> OutboxEvent | None:
        row = await conn.fetchrow(self._get.sql, (event_id,))
        return _event(row) if row is not None else None

    async def listing(
        self, conn: Connection, *, status: EventStatus | None, limit: int, after: int = 0
    ) -> list[OutboxEvent]:
        """Events by id, oldest first, optionally of one status."""
        sql = self._list_all if status is None else self._list_status
        params: dict[str, Any] = {"after": after, "limit": limit}
        if status is not None:
            params["status"] = status.value
        return [_event(row) for row in await conn.fetch(sql.sql, sql.args(params))]

    async def counts(self, conn: Connection) -> dict[str, int]:
        rows = await conn.fetch(self._counts.sql, ())
        return {str(row[0]): int(row[1]) for row in rows}

    # -- SQL -------------------------------------------------------------------------------

    def _compile(self, statement: Any, column_keys: list[str] | None = None) -> CompiledSql:
        return compile_sql(statement, self.dialect, column_keys)

    @functools.cached_property
    def _insert(self) -> CompiledSql:
        keys = [
            "event_key",
            "kind",
            "entity",
            "record_id",
            "rule",
            "payload",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
        ]
        return self._compile(insert(outbox_table).returning(outbox_table.c.id), keys)

    def _claimable(self) -> Any:
        t = outbox_table.c
        now: Any = bindparam("now")
        return or_(
            and_(t.status == EventStatus.PENDING.value, t.next_attempt_at <= now),
            and_(t.status == EventStatus.DELIVERING.value, t.claimed_until < now),
        )

    @functools.cached_property
    def _hand_out(self) -> CompiledSql:
        t = outbox_table.c
        now: Any = bindparam("now")
        due_before: Any = bindparam("due_before")
        pending = EventStatus.PENDING.value
        handable = or_(
            and_(
                t.status == pending,
                t.next_attempt_at <= due_before,
                or_(t.claimed_until.is_(None), t.claimed_until < now),
            ),
            and_(t.status == EventStatus.DELIVERING.value, t.claimed_until < due_before),
        )
        oldest = (
            select(t.id)
            .where(handable)
            .order_by(t.next_attempt_at, t.id)
            .limit(bindparam("limit"))
            .scalar_subquery()
        )
        statement = (
            update(outbox_table)
            .where(and_(t.id.in_(oldest), handable))
            .values(status=pending, claimed_until=bindparam("until"))
            .returning(t.id)
        )
        return self._compile(statement)

    @functools.cached_property
    def _due(self) -> CompiledSql:
        t = outbox_table.c
        statement = (
            select(t.id)
            .where(self._claimable())
            .order_by(t.next_attempt_at, t.id)
            .limit(bindparam("limit"))
        )
        return self._compile(statement)

    @functools.cached_property
    def _claim(self) -> CompiledSql:
        t = outbox_table.c
        statement = (
            update(outbox_table)
            .where(and_(t.id == bindparam("record_id"), self._claimable()))
            .values(status=EventStatus.DELIVERING.value, claimed_until=bindparam("until"))
        )
        return self._compile(statement)

    @functools.cached_property
    def _delivered(self) -> CompiledSql:
        t = outbox_table.c
        statement = (
            update(outbox_table)
            .where(and_(t.id == bindparam("record_id"), t.status == EventStatus.DELIVERING.value))
            .values(
                status=EventStatus.DELIVERED.value,
                delivered_at=bindparam("now"),
                attempts=t.attempts + 1,
                claimed_until=null(),
                last_error=null(),
            )
        )
        return self._compile(statement)

    @functools.cached_property
    def _attempt_failed(self) -> CompiledSql:
        t = outbox_table.c
        statement = (
            update(outbox_table)
            .where(t.id == bindparam("record_id"))
            .values(
                status=bindparam("status"),
                attempts=bindparam("attempts"),
                next_attempt_at=bindparam("next_attempt_at"),
                last_error=bindparam("last_error"),
                claimed_until=null(),
            )
        )
        return self._compile(statement)

    @functools.cached_property
    def _retry(self) -> CompiledSql:
        t = outbox_table.c
        statement = (
            update(outbox_table)
            .where(and_(t.id == bindparam("record_id"), t.status == EventStatus.FAILED.value))
            .values(status=EventStatus.PENDING.value, attempts=0, next_attempt_at=bindparam("now"))
        )
        return self._compile(statement)

    @functools.cached_property
    def _get(self) -> CompiledSql:
        t = outbox_table.c
        statement = select(*(t[name] for name in _COLUMNS)).where(t.id == bindparam("record_id"))
        return self._compile(statement)

    def _listing(self, by_status: bool) -> CompiledSql:
        t = outbox_table.c
        condition = t.id > bindparam("after")
        if by_status:
            condition = and_(condition, t.status == bindparam("status"))
        statement = (
            select(*(t[name] for name in _COLUMNS))
            .where(condition)
            .order_by(t.id)
            .limit(bindparam("limit"))
        )
        return self._compile(statement)

    @functools.cached_property
    def _list_all(self) -> CompiledSql:
        return self._listing(False)

    @functools.cached_property
    def _list_status(self) -> CompiledSql:
        return self._listing(True)

    @functools.cached_property
    def _counts(self) -> CompiledSql:
        t = outbox_table.c
        return self._compile(select(t.status, func.count()).group_by(t.status))


def _exact(value: Any) -> Any:
    """Decimals travel as text, as in the REST API, so that no amount drifts."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _event(row: Any) -> OutboxEvent:
    values = dict(zip(_COLUMNS, row, strict=True))
    return OutboxEvent(
        id=int(values["id"]),
        event_key=values["event_key"],
        kind=values["kind"],
        entity=values["entity"],
        record_id=values["record_id"],
        rule=values["rule"],
        payload=orjson.loads(values["payload"]),
        status=EventStatus(values["status"]),
        attempts=int(values["attempts"]),
        next_attempt_at=float(values["next_attempt_at"]),
        last_error=values["last_error"],
        created_at=float(values["created_at"]),
        delivered_at=float(values["delivered_at"]) if values["delivered_at"] is not None else None,
    )
