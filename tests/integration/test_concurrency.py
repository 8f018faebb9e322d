"""Concurrent writers on the real databases: optimistic locking and gap-free numbering."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import EngineModel, StaleVersion, WriteContext, open_database
from runtime.app import load_definitions

if TYPE_CHECKING:
    from tests.conftest import Instance


async def _run_concurrently(kitchen: Instance) -> tuple[list[object], list[str]]:
    project = load_definitions(kitchen.settings)
    model = EngineModel.for_url(project, kitchen.settings.database_url)
    store = model.store("kitchen", "item")
    database = await open_database(kitchen.settings.database_url, pool_size=8)
    try:
        async with database.transaction() as conn:
            record = await store.create(conn, {"name": "contested"}, WriteContext())
        record_id = int(record["id"])

        async def patch(quantity: int) -> object:
            try:
                async with database.transaction() as conn:
                    await store.update(
                        conn, record_id, {"quantity": quantity}, WriteContext(), expected_version=1
                    )
                    await asyncio.sleep(0.05)  # hold the transaction open while others try
            except StaleVersion as exc:
                return exc
            return quantity

        outcomes = await asyncio.gather(*(patch(q) for q in range(1, 6)))

        async def create(i: int) -> str:
            async with database.transaction() as conn:
                created = await store.create(conn, {"name": f"n{i}"}, WriteContext())
                return str(created["number"])

        numbers = await asyncio.gather(*(create(i) for i in range(20)))
    finally:
        await database.close()
    return list(outcomes), list(numbers)


def test_concurrent_writers(kitchen: Instance) -> None:
    outcomes, numbers = asyncio.run(_run_concurrently(kitchen))
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(winners) == 1
    assert sum(isinstance(o, StaleVersion) for o in outcomes) == 4
    counters = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert counters == list(range(2, 22))  # the contested record took number 1
