"""What tests assert of rollups: no kept value differs from what its source records give
(``engine.rollups.drift``, the check ``tessera recompute`` runs)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import EngineModel, open_database
from engine.rollups import Drift, drift
from runtime.app import load_definitions

if TYPE_CHECKING:
    from runtime.settings import Settings


def drift_of(settings: Settings) -> list[Drift]:
    """Every rollup value of the instance that its source records contradict."""
    model = EngineModel.for_url(load_definitions(settings), settings.database_url)

    async def run() -> list[Drift]:
        database = await open_database(settings.database_url, pool_size=1)
        try:
            return await drift(database, model.rollups)
        finally:
            await database.close()

    return asyncio.run(run())


def assert_no_drift(settings: Settings) -> None:
    found = drift_of(settings)
    assert not found, "rollups drifted: " + "; ".join(str(d) for d in found)
