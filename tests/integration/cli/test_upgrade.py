"""A database migrated by an older version of Tessera (or never migrated) is refused by
the commands that read or write records, with the command that fixes it; ``tessera
migrate`` brings its system tables up to date. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import open_database
from tests.conftest import write_instance
from tests.support.cli import tessera

if TYPE_CHECKING:
    from pathlib import Path


def run_sql(url: str, *statements: str) -> None:
    async def run() -> None:
        database = await open_database(url, pool_size=1)
        try:
            async with database.transaction() as conn:
                for statement in statements:
                    await conn.execute(statement, [])
        finally:
            await database.close()

    asyncio.run(run())


def test_commands_need_current_system_tables(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "instance", db_url, ["contacts"])
    folder = instance.path
    for args in [("demo",), ("serve", "--port", "1"), ("user", "create", "ada")]:
        refused = tessera(*args, cwd=folder)
        assert refused.returncode == 1, args
        assert "has not been migrated yet: run `tessera migrate` first" in refused.stderr

    assert tessera("migrate", cwd=folder).returncode == 0
    # as a database left by an earlier release: revision 0006, so none of the system tables
    # later revisions create (0007 the audit trail, 0008 the postings journal, 0010 files,
    # 0011 the users' locale and time zone)
    run_sql(
        db_url,
        "DROP TABLE tessera_audit",
        "DROP TABLE tessera_posting",
        "DROP TABLE tessera_file",
        "ALTER TABLE tessera_user DROP COLUMN timezone",
        "ALTER TABLE tessera_user DROP COLUMN locale",
        "UPDATE tessera_alembic_version SET version_num = '0006'",
    )
    refused = tessera("demo", cwd=folder)
    assert refused.returncode == 1
    assert "system tables are at revision 0006" in refused.stderr
    assert "run `tessera migrate` to upgrade them" in refused.stderr
    assert "Traceback" not in refused.stderr

    upgraded = tessera("migrate", cwd=folder)
    assert upgraded.returncode == 0, upgraded.stderr
    loaded = tessera("demo", cwd=folder)
    assert loaded.returncode == 0, loaded.stderr
    assert "records upserted" in loaded.stdout
