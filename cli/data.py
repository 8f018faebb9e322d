"""``tessera import``, ``export`` and ``demo``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli import _context
from cli._context import CONFIG_OPTION

if TYPE_CHECKING:
    from engine import EngineModel, EntityStore
    from metadata import ProjectDef
    from runtime.settings import Settings


def _store(model: EngineModel, name: str) -> EntityStore:
    from engine import UnknownEntity

    pack, _, entity = name.partition(".")
    try:
        return model.store(pack, entity)
    except UnknownEntity as exc:
        _context.fail(exc.detail)


async def load_fixtures(settings: Settings, project: ProjectDef, folder: str) -> int:
    from engine import EngineModel, open_database
    from metadata import DefinitionError
    from runtime.dataio import load_fixture_records

    model = EngineModel.for_url(project, settings.database_url)
    database = await open_database(settings.database_url, pool_size=2)
    try:
        count, errors = await load_fixture_records(database, model, project, folder)
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)
    finally:
        await database.close()
    for error in errors:
        click.echo(error, err=True)
    if errors:
        _context.fail(f"{len(errors)} fixture records were rejected")
    return count


@click.command("import")
@CONFIG_OPTION
@click.argument("entity")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", default=None, help="Unique field to upsert on (update if it exists).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="File format (default: from the file extension).",
)
def import_command(
    config: str | None, entity: str, file: Path, key: str | None, fmt: str | None
) -> None:
    """Import PACK.ENTITY records from a CSV or JSON-lines FILE."""
    from engine import EngineModel, open_database
    from runtime.dataio import import_rows, read_rows

    settings = _context.load_settings(config)
    project = _context.load_definitions(settings)
    model = EngineModel.for_url(project, settings.database_url)
    store = _store(model, entity)
    if key is not None and key not in store.entity.unique_fields():
        _context.fail(
            f"--key {key}: not a unique field of {entity} "
            f"(unique: {', '.join(store.entity.unique_fields()) or 'none'})"
        )
    _context.require_migrated(settings)
    rows = list(read_rows(file, fmt))

    async def run() -> tuple[int, int, list[str]]:
        database = await open_database(settings.database_url, pool_size=2)
        try:
            with click.progressbar(
                length=len(rows), label=f"importing {file.name}", file=sys.stderr
            ) as bar:
                report = await import_rows(
                    database, store, rows, key=key, source=str(file), progress=bar.update
                )
        finally:
            await database.close()
        return report.created, report.updated, report.errors

    created, updated, errors = asyncio.run(run())
    for error in errors:
        click.echo(error, err=True)
    click.echo(f"{entity}: {created} created, {updated} updated, {len(errors)} rejected")
    if errors:
        sys.exit(1)


@click.command("export")
@CONFIG_OPTION
@click.argument("entity")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
def export_command(config: str | None, entity: str, fmt: str) -> None:
    """Write every PACK.ENTITY record to standard output."""
    import orjson

    from engine import EngineModel, open_database
    from runtime.api.problems import json_default
    from runtime.dataio import csv_text, export_columns, export_records

    settings = _context.load_settings(config)
    project = _context.load_definitions(settings)
    model = EngineModel.for_url(project, settings.database_url)
    store = _store(model, entity)
    _context.require_migrated(settings)
    columns = export_columns(store)

    async def run() -> None:
        database = await open_database(settings.database_url, pool_size=2)
        out = sys.stdout
        try:
            if fmt == "csv":
                out.write(csv_text([{c: c for c in columns}], columns))
            async for record in export_records(database, store):
                if fmt == "csv":
                    out.write(csv_text([record], columns))
                else:
                    out.write(orjson.dumps(record, default=json_default).decode() + "\n")
        finally:
            await database.close()

    asyncio.run(run())


DEMO_USER = "admin"
DEMO_PASSWORD = "tessera-demo"  # noqa: S105 - printed for the demo instance only


@click.command("demo")
@CONFIG_OPTION
def demo_command(config: str | None) -> None:
    """Load the demo records of the enabled packs, and a demo admin user (idempotent)."""
    settings = _context.load_settings(config)
    project = _context.load_definitions(settings)
    _context.require_migrated(settings)
    count = asyncio.run(load_fixtures(settings, project, "demo"))
    click.echo(f"demo: {count} records upserted")
    if asyncio.run(_demo_admin(settings)):
        click.echo(f"demo: user '{DEMO_USER}' (password '{DEMO_PASSWORD}', role admin) created")
    else:
        click.echo(f"demo: user '{DEMO_USER}' exists; sign in with its password")


async def _demo_admin(settings: Settings) -> bool:
    """Create the demo administrator unless a user of that name exists."""
    from engine import open_database
    from engine.identity import Identity

    database = await open_database(settings.database_url, pool_size=1)
    try:
        identity = Identity(database.sa_dialect)
        async with database.transaction() as conn:
            if await identity.user_named(conn, DEMO_USER) is not None:
                return False
            await identity.create_user(conn, DEMO_USER, DEMO_PASSWORD, ["admin"])
            return True
    finally:
        await database.close()
