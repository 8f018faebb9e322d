"""The definitions a serving process answers with, replaced whole when they change.

Everything compiled from definitions (engine model, record handlers, metadata documents)
is built into one immutable ``Compiled`` object. Reloading builds a new one next to the old
and swaps a single reference, so a request in flight finishes on the definitions it began
with and the next one sees the new ones: no lock on the request path.

Worker processes learn about changes from the migration log: every applied migration adds
a row, whichever process (or ``tessera migrate``) applied it. Each process polls the log's
newest id in the background and reloads from disk when it moves. Definitions and
customizations are files every worker reads, so a change made through one worker becomes
visible in all of them within one poll interval, without a restart and without a broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine import EngineModel
from engine.tables import migration_log_table
from metadata import DefinitionError, load_project
from runtime.api.meta import MetaDocuments
from runtime.api.records import RecordApi
from runtime.formatting import Readers

if TYPE_CHECKING:
    from collections.abc import Callable

    from metadata import ProjectDef
    from runtime.plumbing import DatabaseHolder
    from runtime.settings import Settings

log = logging.getLogger("tessera.reload")

LATEST_MIGRATION_SQL = f"SELECT max(id) FROM {migration_log_table.name}"  # noqa: S608 - constant


def load_definitions(settings: Settings) -> ProjectDef:
    return load_project(
        settings.modules,
        settings.search_paths,
        config_name=str(settings.config_path or "tessera.yaml"),
        customizations=settings.customizations,
        instance_names=settings.instance_names(),
    )


@dataclass(frozen=True, slots=True)
class Compiled:
    project: ProjectDef
    model: EngineModel
    record_api: RecordApi
    meta: MetaDocuments


class LiveDefinitions:
    def __init__(
        self,
        settings: Settings,
        project: ProjectDef,
        database: DatabaseHolder,
        *,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.on_change = on_change
        self.current = self._compile(project)
        self.generation: int | None = None
        """Newest migration id these definitions reflect; None until first read."""
        self._check_now = asyncio.Event()

    def _compile(self, project: ProjectDef) -> Compiled:
        model = EngineModel.for_url(project, self.settings.database_url)
        return Compiled(
            project=project,
            model=model,
            record_api=RecordApi(
                model,
                self.database,
                max_body=self.settings.max_body_bytes,
                files=self.settings.files,
                readers=Readers(
                    self.settings.locale, self.settings.timezone, self.settings.company.currency
                ),
            ),
            meta=MetaDocuments(model),
        )

    async def install(self, project: ProjectDef, generation: int | None) -> None:
        self.current = self._compile(project)
        if generation is not None:
            self.generation = generation
        self.on_change()
        if self.database.database is not None:
            await self.database.database.forget_statements()

    async def reload(self, generation: int | None = None) -> bool:
        """Read the definitions from disk again; keep the current ones if they are broken."""
        try:
            project = await asyncio.to_thread(load_definitions, self.settings)
        except DefinitionError as exc:
            log.error("definitions changed but do not load; keeping the previous ones:\n%s", exc)
            if generation is not None:
                self.generation = generation
            return False
        try:
            await self.install(project, generation)
        except DefinitionError as exc:  # found when compiling (a print format that does not parse)
            log.error("definitions changed but do not compile; keeping the previous ones:\n%s", exc)
            if generation is not None:
                self.generation = generation
            return False
        log.info("definitions reloaded (migration %s)", generation)
        return True

    async def latest_generation(self) -> int:
        database = self.database.get()
        try:
            async with database.connection() as connection:
                row = await connection.fetchrow(LATEST_MIGRATION_SQL, ())
        except Exception:  # noqa: BLE001 - no log table yet (never migrated): generation 0
            return 0
        return int(row[0] or 0) if row else 0

    def check_soon(self) -> None:
        """A statement met a schema it did not expect: look at the log now, not at the next
        poll, so the requests answered 503 in the meantime are as few as possible."""
        self._check_now.set()

    async def watch(self, interval: float) -> None:
        """Poll the migration log; reload when another process applied a migration."""
        self.generation = await self.latest_generation()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._check_now.wait(), interval)
            self._check_now.clear()
            with contextlib.suppress(Exception):
                latest = await self.latest_generation()
                if latest != self.generation:
                    await self.reload(latest)


def watching(live: LiveDefinitions, interval: float) -> Any:
    """Start the watcher task; returns the task so the lifespan can cancel it."""
    return asyncio.create_task(live.watch(interval), name="tessera-definitions-watch")
