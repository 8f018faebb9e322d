"""The Celery side of delivery and scheduling: the app the server publishes with, and the
tasks ``tessera worker`` runs (``tessera.run_schedules`` runs scheduled rules' due slots).

``tessera.deliver(event_id)`` delivers one outbox event (claim, send, record). Tasks are
acknowledged late, so a task whose worker dies is redelivered by the broker; and whatever
the broker loses, ``tessera.sweep`` (run by every worker's embedded beat scheduler) finds
in the outbox: events due for longer than a lease, and events whose deliverer's lease ran
out. The outbox, not the broker, is the record of what still has to go out.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from celery import Celery

from engine import EngineModel, open_database
from engine.model import dialect_for_url
from engine.outbox import Outbox
from engine.scheduling import Scheduler
from runtime.delivery.deliverer import Deliverer, Outcome
from runtime.delivery.senders import Senders
from runtime.live import LATEST_MIGRATION_SQL, load_definitions

if TYPE_CHECKING:
    from collections.abc import Coroutine

    from runtime.settings import Settings

SWEEP_LIMIT = 2000


def celery_app(settings: Settings) -> Celery:
    """The Celery app for ``settings.broker_url``, as publishers and workers configure it."""
    app = Celery("tessera", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=4,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 10},
        timezone="UTC",
        enable_utc=True,
        worker_hijack_root_logger=False,
    )
    return app


class _ProcessState:
    """Per worker process: an event loop, a database pool, a deliverer and the scheduled
    rules, made on first use in that process (after the pool forked it), never shared
    across processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliverer: Deliverer | None = None
        self._scheduler: Scheduler | None = None
        self._model: EngineModel | None = None
        self._migration: Any = None
        """The migration log's newest id when the definitions were loaded."""

    @property
    def deliverer(self) -> Deliverer:
        assert self._deliverer is not None
        return self._deliverer

    def model(self) -> EngineModel:
        """The definitions, loaded on first use and again after a migration (see
        ``run_schedules``)."""
        if self._model is None:
            project = load_definitions(self.settings)
            self._model = EngineModel.for_url(project, self.settings.database_url)
        return self._model

    def run(self, make: Any) -> Any:
        """Run ``make(state)`` (a coroutine) on this process's loop."""
        if self._pid != os.getpid():
            self._loop = asyncio.new_event_loop()
            self._deliverer = self._loop.run_until_complete(self._open())
            self._scheduler = None
            self._model = None
            self._pid = os.getpid()
        assert self._loop is not None
        coroutine: Coroutine[Any, Any, Any] = make(self)
        return self._loop.run_until_complete(coroutine)

    async def _open(self) -> Deliverer:
        settings = self.settings
        database = await open_database(settings.database_url, pool_size=2)
        _, dialect = dialect_for_url(settings.database_url)
        senders = Senders.for_settings(settings)
        return Deliverer(database, Outbox(dialect), senders, settings, self.model)

    async def run_schedules(self) -> list[int]:
        """Run the due slots of scheduled rules; the outbox events they queued. The
        definitions are loaded again when the migration log has moved (a migrate, a
        customization), so a new scheduled rule needs no worker restart."""
        database = self.deliverer.database
        async with database.connection() as conn:
            row = await conn.fetchrow(LATEST_MIGRATION_SQL, ())
        latest = row[0] if row else None
        if self._scheduler is None or latest != self._migration:
            self._model = None
            self._scheduler = Scheduler(self.model())
            self._migration = latest
        runs = await self._scheduler.run_due(database)
        return [event for run in runs for event in run.events]


def worker_app(settings: Settings) -> Celery:
    """The app with Tessera's tasks and the sweep on the beat schedule."""
    app = celery_app(settings)
    state = _ProcessState(settings)
    sweep_every = settings.outbox.sweep_seconds
    app.conf.update(
        beat_schedule={
            "tessera-outbox-sweep": {"task": "tessera.sweep", "schedule": sweep_every},
            "tessera-schedules": {
                "task": "tessera.run_schedules",
                "schedule": settings.schedule_check_seconds,
            },
        },
        # in memory: what must run once is guarded by the database, not by beat's file
        beat_scheduler="celery.beat:Scheduler",
    )

    @app.task(name="tessera.deliver", ignore_result=True)  # type: ignore[untyped-decorator]
    def deliver(event_id: int) -> str:
        result = state.run(lambda s: s.deliverer.deliver(int(event_id)))
        for queued in result.events:
            deliver.delay(queued)
        if result.outcome is Outcome.RETRY:
            deliver.apply_async((event_id,), countdown=result.retry_in)
        return str(result.outcome.value)

    @app.task(name="tessera.sweep", ignore_result=True)  # type: ignore[untyped-decorator]
    def sweep() -> int:
        lease = settings.outbox.lease_seconds
        ids: list[int] = state.run(
            lambda s: s.deliverer.hand_out(limit=SWEEP_LIMIT, grace=lease, hold=lease)
        )
        if ids:
            with app.producer_or_acquire() as producer:
                for event_id in ids:
                    deliver.apply_async((event_id,), producer=producer)
        return len(ids)

    @app.task(name="tessera.run_schedules", ignore_result=True)  # type: ignore[untyped-decorator]
    def run_schedules() -> int:
        events: list[int] = state.run(lambda s: s.run_schedules())
        for event_id in events:
            deliver.delay(event_id)
        return len(events)

    return app
