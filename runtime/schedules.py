"""Scheduled rules in the serving process, for instances without a broker (with one, the
workers' beat runs them): every ``schedule_check_seconds`` the due slots are run, and the
events they queue are handed to the dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from engine.scheduling import Scheduler

if TYPE_CHECKING:
    from engine import EngineModel
    from runtime.live import LiveDefinitions
    from runtime.plumbing import DatabaseHolder

log = logging.getLogger("tessera.schedule")


class ScheduleRunner:
    def __init__(self, live: LiveDefinitions, holder: DatabaseHolder, interval: float) -> None:
        self.live = live
        self.holder = holder
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._scheduler: Scheduler | None = None

    def _for(self, model: EngineModel) -> Scheduler:
        """One scheduler per definitions: rebuilt when they are reloaded."""
        if self._scheduler is None or self._scheduler.model is not model:
            self._scheduler = Scheduler(model)
        return self._scheduler

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="tessera-schedules")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> int:
        scheduler = self._for(self.live.current.model)
        runs = await scheduler.run_due(self.holder.get())
        for run in runs:
            self.holder.hand_off(run.events)
        return len(runs)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("running scheduled rules failed")
