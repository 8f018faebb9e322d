"""Running scheduled rules (``schedule: "0 9 * * 1-5"`` with ``where:``) once per slot.

Every scheduler (each worker's beat, or the server without a broker) looks, every few
seconds, for the latest minute each scheduled rule names. Running a slot starts by
inserting (rule, slot) into ``tessera_schedule_run``, whose primary key admits one row:
the scheduler whose insert wins runs the rule's actions in the same transaction, the others
fail on the key (waiting for the winner's commit first) and skip the slot. A run that fails
rolls its row back with everything else, so the next look tries the slot again. A slot
older than ``LOOKBACK`` (every scheduler down for longer) is skipped, not caught up.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import insert

from engine.database import IntegrityViolation
from engine.sql import CompiledSql, compile_sql
from engine.tables import schedule_run_table
from engine.writes import WriteContext

if TYPE_CHECKING:
    from engine.database import Database
    from engine.model import EngineModel

log = logging.getLogger("tessera.schedule")

LOOKBACK = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class SlotRun:
    rule: str
    """``pack.entity:rule``."""
    slot: dt.datetime
    records: int
    events: list[int]


class _AlreadyRun(Exception):
    pass


class Scheduler:
    """Runs the due slots of every scheduled rule of a model."""

    def __init__(self, model: EngineModel) -> None:
        self.model = model
        self._claim: CompiledSql = compile_sql(
            insert(schedule_run_table), model.dialect, ["rule", "slot", "ran_at"]
        )

    async def run_due(self, database: Database, now: dt.datetime | None = None) -> list[SlotRun]:
        """Run every slot due now that no scheduler has run yet; the runs made here."""
        now = now or dt.datetime.now(dt.UTC)
        runs = []
        for store in self.model.public_stores():
            for name, schedule in store.schedules.items():
                slot = schedule.latest(now, within=LOOKBACK)
                if slot is None:
                    continue
                key = f"{store.entity.qualified_name}:{name}"
                ctx = WriteContext()
                try:
                    async with database.transaction() as conn:
                        try:
                            await conn.execute(
                                self._claim.sql,
                                self._claim.args(
                                    {"rule": key, "slot": slot.isoformat(), "ran_at": time.time()}
                                ),
                            )
                        except IntegrityViolation:
                            raise _AlreadyRun from None
                        count = await store.run_scheduled(conn, name, ctx)
                except _AlreadyRun:
                    continue
                log.info("scheduled rule %s ran for %s on %d record(s)", key, slot, count)
                runs.append(SlotRun(key, slot, count, ctx.events))
        return runs
