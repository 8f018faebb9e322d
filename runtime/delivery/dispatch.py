"""Handing committed outbox events to deliverers, from the serving process.

Without a broker, ``InProcessDispatcher`` delivers them itself: woken when a write commits
events, and every ``sweep_seconds`` for retries and for events written by other processes
(the CLI's imports, another server). With a broker, ``CeleryPublisher`` sends one Celery
task per event; if the broker is down the write still succeeds (the event is in the
outbox) and the workers' periodic sweep finds it once the broker is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol

from runtime.delivery.deliverer import Deliverer, Outcome

if TYPE_CHECKING:
    from collections.abc import Sequence

    from celery import Celery

log = logging.getLogger("tessera.delivery")

SWEEP_BATCH = 200
MAX_IN_FLIGHT = 16


class Dispatcher(Protocol):
    def notify(self, event_ids: Sequence[int]) -> None:
        """Events just committed; never blocks and never fails the write."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class InProcessDispatcher:
    def __init__(self, deliverer: Deliverer, *, sweep_seconds: float) -> None:
        self.deliverer = deliverer
        self.sweep_seconds = sweep_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._claiming: set[int] = set()
        """Events handed to a delivery task that has not finished yet."""

    def notify(self, event_ids: Sequence[int]) -> None:
        if event_ids:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tessera-outbox")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=5)
        await self.deliverer.senders.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sweep_seconds)
            self._wake.clear()
            try:
                await self.run_due()
            except Exception:
                log.exception("outbox sweep failed")

    async def run_due(self) -> int:
        """Start delivering every event due now, at most ``MAX_IN_FLIGHT`` at once; the
        number started."""
        started = 0
        while True:
            limit = SWEEP_BATCH + len(self._claiming)
            fetched = await self.deliverer.due(limit=limit)
            ids = [i for i in fetched if i not in self._claiming]
            for event_id in ids:
                await self._slots.acquire()
                self._claiming.add(event_id)
                task = asyncio.create_task(self._deliver(event_id))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
                started += 1
            if len(fetched) < limit:  # no more due than were fetched
                return started

    async def _deliver(self, event_id: int) -> None:
        try:
            result = await self.deliverer.deliver(event_id)
            if result.events:
                self._wake.set()
            if result.outcome is Outcome.RETRY and result.retry_in is not None:
                asyncio.get_running_loop().call_later(result.retry_in, self._wake.set)
        except Exception:
            log.exception("delivering event %s failed", event_id)
        finally:
            self._claiming.discard(event_id)
            self._slots.release()


class CeleryPublisher:
    """Publishes ``tessera.deliver`` tasks from a background task, off the request path."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def notify(self, event_ids: Sequence[int]) -> None:
        for event_id in event_ids:
            self._queue.put_nowait(event_id)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tessera-publisher")

    async def stop(self) -> None:
        """Publish what is still queued, then stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            await self._publish_batch(self._batch([self._queue.get_nowait()]))

    def _batch(self, batch: list[int]) -> list[int]:
        while not self._queue.empty() and len(batch) < SWEEP_BATCH:
            batch.append(self._queue.get_nowait())
        return batch

    async def _run(self) -> None:
        while True:
            await self._publish_batch(self._batch([await self._queue.get()]))

    async def _publish_batch(self, batch: list[int]) -> None:
        try:
            await asyncio.to_thread(self._publish, batch)
        except Exception as exc:  # noqa: BLE001 - the workers' sweep will find them
            log.warning(
                "broker unavailable (%s); %d event(s) wait in the outbox for the workers' sweep",
                exc,
                len(batch),
            )

    def _publish(self, event_ids: list[int]) -> None:
        with self.celery.producer_or_acquire() as producer:
            for event_id in event_ids:
                self.celery.send_task(
                    "tessera.deliver", args=(event_id,), producer=producer, retry=False
                )
