"""Users and tokens for tests, written straight into an instance's database."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import open_database
from engine.identity import Identity

if TYPE_CHECKING:
    from collections.abc import Iterable


def issue_token(
    database_url: str,
    username: str = "tests",
    roles: Iterable[str] = ("admin",),
    *,
    password: str | None = None,
    lifetime_seconds: float | None = None,
) -> str:
    """A token for ``username``, created with ``roles`` (and ``password``) if missing."""

    async def run() -> str:
        database = await open_database(database_url, pool_size=1)
        try:
            identity = Identity(database.sa_dialect)
            async with database.transaction() as conn:
                user = await identity.user_named(conn, username)
                if user is None:
                    user = await identity.create_user(conn, username, password, roles)
                issued = await identity.issue_token(
                    conn, user, "tests", lifetime_seconds=lifetime_seconds
                )
            return issued.token
        finally:
            await database.close()

    return asyncio.run(run())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
