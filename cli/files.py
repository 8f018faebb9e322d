"""``tessera files prune``: delete the file rows and bytes no record reaches any more
(docs/files.md)."""

from __future__ import annotations

import asyncio

import click

from cli import _context
from cli._context import CONFIG_OPTION


@click.group("files")
def files_group() -> None:
    """Uploaded files: file fields and attachments."""


@files_group.command("prune")
@CONFIG_OPTION
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
def prune_command(config: str | None, dry_run: bool) -> None:
    """Delete the files of records deleted by the database itself (lines of a deleted
    parent, on_delete: cascade), of entities no longer enabled, and stored bytes no file
    row names."""
    from engine import EngineModel, open_database
    from engine.files.prune import prune

    settings = _context.load_settings(config)
    _context.require_migrated(settings)
    project = _context.load_definitions(settings)
    model = EngineModel.for_url(project, settings.database_url)
    storage = settings.files.store()

    async def run() -> tuple[list[int], list[str]]:
        database = await open_database(settings.database_url, pool_size=1)
        try:
            report = await prune(database, model, storage, dry_run=dry_run)
        finally:
            await database.close()
        return report.rows, report.blobs

    rows, blobs = asyncio.run(run())
    verb = "would delete" if dry_run else "deleted"
    for file_id in rows:
        click.echo(f"{verb} file {file_id} (its record or field no longer holds it)")
    for blob in blobs:
        click.echo(f"{verb} stored bytes {blob} (no file row names them)")
    click.echo(f"{verb} {len(rows)} file row(s) and {len(blobs)} unnamed stored file(s)")
