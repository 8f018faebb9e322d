"""Delivering outbox events: claim, send, record. Shared by the Celery worker's tasks and
the server's in-process dispatcher, so both give the same guarantees.

Every step is its own short statement outside any transaction: the claim (one
conditional UPDATE, so one deliverer at a time), the send (no database connection held
while waiting on a receiver), then delivered or failed-with-backoff.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.deferred import apply_deferred
from engine.errors import EngineError, describe
from engine.outbox import DEFERRED_ACTION, Outbox, OutboxEvent, RetryPolicy
from runtime.delivery.errors import DeliveryError

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.database import Database
    from engine.model import EngineModel
    from runtime.delivery.senders import Senders
    from runtime.settings import Settings

log = logging.getLogger("tessera.delivery")


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not claimable: delivered already, held by another deliverer, or not due yet."""


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    retry_in: float | None = None
    events: tuple[int, ...] = ()
    """Events queued by applying a deferred action (its own rules), to hand on."""


class _LeaseLost(Exception):
    pass


class Deliverer:
    def __init__(
        self,
        database: Database,
        outbox: Outbox,
        senders: Senders,
        settings: Settings,
        models: Callable[[], EngineModel] | None = None,
    ) -> None:
        self.database = database
        self.outbox = outbox
        self.senders = senders
        self.models = models
        """The current definitions, for applying deferred (``async: true``) actions."""
        if models is not None:
            from runtime.printing import AttachmentPrinter

            senders.attachments = AttachmentPrinter(database, models)
        config = settings.outbox
        self.lease = config.lease_seconds
        self.policy = RetryPolicy(
            max_attempts=config.max_attempts,
            base_seconds=config.backoff_seconds,
            cap_seconds=config.backoff_cap_seconds,
        )

    async def deliver(self, event_id: int) -> Result:
        async with self.database.connection() as conn:
            event = await self.outbox.claim(conn, event_id, lease=self.lease)
        if event is None:
            return Result(Outcome.SKIPPED)
        if event.kind == DEFERRED_ACTION:
            return await self._apply(event)
        try:
            await self.senders.send(event)
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("event %s could not be sent", event.event_key)
            error = f"{type(exc).__name__}: {exc}"
        else:
            async with self.database.connection() as conn:
                await self.outbox.delivered(conn, event_id)
            return Result(Outcome.DELIVERED)
        return await self._failed(event, error)

    async def _apply(self, event: OutboxEvent) -> Result:
        """A deferred create or update, applied in one transaction with marking the event
        delivered: exactly once."""
        if self.models is None:
            return await self._failed(event, "this deliverer has no definitions to apply actions")
        try:
            async with self.database.transaction() as conn:
                events = await apply_deferred(self.models(), conn, event.record_id, event.payload)
                if not await self.outbox.delivered(conn, event.id):
                    raise _LeaseLost
        except _LeaseLost:
            return Result(Outcome.SKIPPED)
        except EngineError as exc:
            return await self._failed(event, describe(exc))
        except Exception as exc:
            log.exception("event %s could not be applied", event.event_key)
            return await self._failed(event, f"{type(exc).__name__}: {exc}")
        return Result(Outcome.DELIVERED, events=tuple(events))

    async def _failed(self, event: OutboxEvent, error: str) -> Result:
        async with self.database.connection() as conn:
            delay = await self.outbox.attempt_failed(conn, event, error, self.policy)
        if delay is None:
            log.warning("event %s failed for good: %s", event.event_key, error)
            return Result(Outcome.FAILED)
        log.info("event %s attempt failed, next in %.0fs: %s", event.event_key, delay, error)
        return Result(Outcome.RETRY, delay)

    async def hand_out(self, *, limit: int, grace: float, hold: float) -> list[int]:
        async with self.database.connection() as conn:
            return await self.outbox.hand_out(conn, limit=limit, grace=grace, hold=hold)

    async def due(self, *, limit: int) -> list[int]:
        """Events claimable now."""
        async with self.database.connection() as conn:
            return await self.outbox.due(conn, limit=limit)
