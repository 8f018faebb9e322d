"""Loading a pack's fixture records into a test instance, as the command line does."""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

import yaml

from engine import EngineModel, open_database
from runtime.app import load_definitions
from runtime.dataio import load_fixture_records
from tests.support.migrated import definitions_key, restore_or_run

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


def migrate_with_fixtures(instance: Instance, folder: str = "data") -> int:
    """``instance.migrate()`` then ``load_fixtures(instance, folder)``; on an empty database,
    restored together when this process did both before for the same definitions, fixture
    files and settings (tests/support/migrated.py)."""
    settings = instance.settings

    def key() -> str:
        project = load_definitions(settings)
        digest = hashlib.sha256(definitions_key(settings.database_url, project, settings).encode())
        config = yaml.safe_load((instance.path / "tessera.yaml").read_text(encoding="utf-8"))
        config.pop("database_url", None)
        digest.update(f"\0{folder}\0{sorted(config.items())!r}\0".encode())
        for module in sorted(project.modules.values(), key=lambda m: m.name):
            for path in sorted(p for p in (module.path / folder).rglob("*") if p.is_file()):
                digest.update(f"{module.name}/{path.relative_to(module.path)}\0".encode())
                digest.update(path.read_bytes())
        return digest.hexdigest()

    def run() -> int:
        instance.migrate()
        return load_fixtures(instance, folder)

    return restore_or_run(settings.database_url, key, run)
