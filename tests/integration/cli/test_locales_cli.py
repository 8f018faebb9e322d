"""``tessera user create --locale --timezone`` and ``tessera user preferences`` against a
real database (docs/locales.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import open_database
from engine.identity import Identity
from tests.conftest import write_instance
from tests.support.cli import tessera

if TYPE_CHECKING:
    from pathlib import Path

    from engine.identity import User


def stored_user(url: str, name: str) -> User | None:
    async def read() -> User | None:
        database = await open_database(url, pool_size=1)
        try:
            async with database.connection() as conn:
                return await Identity(database.sa_dialect).user_named(conn, name)
        finally:
            await database.close()

    return asyncio.run(read())


def test_users_choose_their_locale_and_time_zone(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "i", db_url, ["kitchen"], locale="de_DE")
    instance.migrate()
    folder = instance.path

    made = tessera(
        "user", "create", "ada", "--locale", "fr-ch", "--timezone", "Europe/Zurich", cwd=folder
    )
    assert made.returncode == 0, made.stderr
    ada = stored_user(db_url, "ada")
    assert ada is not None
    assert (ada.locale, ada.timezone) == ("fr_CH", "Europe/Zurich")  # one spelling

    tessera("user", "create", "bob", cwd=folder)
    bob = stored_user(db_url, "bob")
    assert bob is not None
    assert (bob.locale, bob.timezone) == (None, None)  # the instance's

    shown = tessera("user", "preferences", "bob", "--timezone", "Asia/Tokyo", cwd=folder)
    assert shown.stdout.strip() == (
        "bob: locale de_DE (the instance default), time zone Asia/Tokyo"
    )
    changed = tessera("user", "preferences", "ada", "--locale", "", cwd=folder)
    assert (
        changed.stdout.strip()
        == "ada: locale de_DE (the instance default), time zone Europe/Zurich"
    )

    for args, message in [
        (("user", "create", "eve", "--locale", "xx_YY"), "'xx_YY' is not a locale"),
        (("user", "create", "eve", "--locale", "de_DE\x00"), "is not a locale"),
        (("user", "create", "eve", "--timezone", "Europe/Berln"), "did you mean 'Europe/Berlin'"),
        (("user", "create", "eve", "--timezone", "x" * 5000), "it is too long"),
        (("user", "preferences", "bob", "--locale", "de_XX"), "de has: de_AT"),
        (("user", "preferences", "nobody", "--locale", "de_DE"), "no active user named"),
    ]:
        refused = tessera(*args, cwd=folder)
        assert refused.returncode == 1, args
        assert message in refused.stderr, (args, refused.stderr)
    assert stored_user(db_url, "eve") is None
    bob = stored_user(db_url, "bob")
    assert bob is not None
    assert (bob.locale, bob.timezone) == (None, "Asia/Tokyo")  # a refusal changes nothing
