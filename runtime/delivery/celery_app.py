"""The Celery side of delivery: the app the server publishes with, and the tasks
``tessera worker`` runs.

``tessera.deliver(event_id)`` delivers one outbox event (claim, send, record). Tasks are
acknowledged late, so a task whose worker dies is redelivered by the broker; and whatever
the broker loses, ``tessera.sweep`` (run by every worker's embedded beat scheduler) finds
in the outbox: events due for longer than a lease, and events whose deliverer's lease ran
out. The outbox, not the broker, is the record of what still has to go out.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery

from engine import open_database
from engine.model import dialect_for_url
from engine.outbox import Outbox
from runtime.delivery.deliverer import Deliverer, Outcome
from runtime.delivery.senders import Senders

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
    """Per worker process: an event loop, a database pool and a deliverer, made on first
    use in that process (after the pool forked it), never shared across processes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deliverer: Deliverer | None = None

    def run(self, make: Any) -> Any:
        """Run ``make(deliverer)`` (a coroutine) on this process's loop."""
        if self._pid != os.getpid():
            self._loop = asyncio.new_event_loop()
            self._deliverer = self._loop.run_until_complete(self._open())
            self._pid = os.getpid()
        assert self._loop is not None
        assert self._deliverer is not None
        coroutine: Coroutine[Any, Any, Any] = make(self._deliverer)
        return self._loop.run_until_complete(coroutine)

    async def _open(self) -> Deliverer:
        settings = self.settings
        database = await open_database(settings.database_url, pool_size=2)
        _, dialect = dialect_for_url(settings.database_url)
        senders = Senders(
            settings.smtp, settings.signing_key, timeout=settings.outbox.timeout_seconds
        )
        return Deliverer(database, Outbox(dialect), senders, settings)


def worker_app(settings: Settings) -> Celery:
    """The app with Tessera's tasks and the sweep on the beat schedule."""
    app = celery_app(settings)
    state = _ProcessState(settings)
    sweep_every = settings.outbox.sweep_seconds
    schedule_file = str(Path(tempfile.mkdtemp(prefix="tessera-beat-")) / "schedule")
    app.conf.update(
        beat_schedule={
            "tessera-outbox-sweep": {"task": "tessera.sweep", "schedule": sweep_every},
        },
        beat_schedule_filename=schedule_file,
    )

    @app.task(name="tessera.deliver", ignore_result=True)  # type: ignore[untyped-decorator]
    def deliver(event_id: int) -> str:
        result = state.run(lambda d: d.deliver(int(event_id)))
        if result.outcome is Outcome.RETRY:
            deliver.apply_async((event_id,), countdown=result.retry_in)
        return str(result.outcome.value)

    @app.task(name="tessera.sweep", ignore_result=True)  # type: ignore[untyped-decorator]
    def sweep() -> int:
        grace = settings.outbox.lease_seconds
        ids: list[int] = state.run(lambda d: d.due(limit=SWEEP_LIMIT, grace=grace))
        for event_id in ids:
            deliver.delay(event_id)
        return len(ids)

    return app
