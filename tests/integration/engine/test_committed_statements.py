"""``Connection.fetchrow_committed`` (how ``gapless: false`` autonumbers draw), on SQLite and
PostgreSQL: its statement stays done when the write's transaction, or a savepoint around
it, rolls back, and it holds no lock that the write's transaction keeps."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import open_database

if TYPE_CHECKING:
    from tests.conftest import Instance

DRAW = (
    "INSERT INTO tessera_sequence (series, value) VALUES ('test:committed', 1) "
    "ON CONFLICT (series) DO UPDATE SET value = tessera_sequence.value + 1 RETURNING value"
)
READ = "SELECT value FROM tessera_sequence WHERE series = 'test:committed'"


class Refused(Exception):
    pass


async def _draws(url: str) -> list[object]:
    database = await open_database(url, pool_size=2)
    seen: list[object] = []
    try:
        async with database.transaction() as conn:
            seen.append((await conn.fetchrow_committed(DRAW, ()) or [None])[0])
            try:
                async with conn.savepoint():
                    seen.append((await conn.fetchrow_committed(DRAW, ()) or [None])[0])
                    raise Refused
            except Refused:
                pass
            seen.append((await conn.fetchrow(READ, ()) or [None])[0])  # still 2
        try:
            async with database.transaction() as conn:
                seen.append((await conn.fetchrow_committed(DRAW, ()) or [None])[0])
                try:
                    async with conn.savepoint():
                        seen.append((await conn.fetchrow_committed(DRAW, ()) or [None])[0])
                        raise Refused
                except Refused:
                    pass
                raise Refused
        except Refused:
            pass
        async with database.connection() as conn:
            seen.append((await conn.fetchrow(READ, ()) or [None])[0])  # 4: both kept
            seen.append((await conn.fetchrow_committed(DRAW, ()) or [None])[0])
        async with database.transaction() as conn:  # in-transaction fetchrow: rolled back
            try:
                async with conn.savepoint():
                    await conn.fetchrow(DRAW, ())
                    raise Refused
            except Refused:
                pass
        async with database.connection() as conn:
            seen.append((await conn.fetchrow(READ, ()) or [None])[0])
    finally:
        await database.close()
    return seen


def test_a_committed_statement_outlives_the_rollbacks_around_it(kitchen: Instance) -> None:
    seen = asyncio.run(_draws(kitchen.settings.database_url))
    assert seen == [1, 2, 2, 3, 4, 4, 5, 5]
