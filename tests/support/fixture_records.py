"""Loading a pack's fixture records into a test instance, as the command line does."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import EngineModel, open_database
from runtime.app import load_definitions
from runtime.dataio import load_fixture_records

if TYPE_CHECKING:
    from tests.conftest import Instance


def load_fixtures(instance: Instance, folder: str = "data") -> int:
    """What `tessera migrate` (data/) or `tessera demo` (demo/) loads after migrating."""
    settings = instance.settings
    project = load_definitions(settings)
    model = EngineModel.for_url(project, settings.database_url)

    async def run() -> int:
        database = await open_database(settings.database_url, pool_size=1)
        try:
            count, errors = await load_fixture_records(database, model, project, folder)
        finally:
            await database.close()
        assert not errors, errors
        return count

    return asyncio.run(run())
