"""``tessera recompute``: rebuild rollups from their source records and report drift."""

from __future__ import annotations

import asyncio
import sys

import click

from cli import _context
from cli._context import CONFIG_OPTION


@click.command("recompute")
@CONFIG_OPTION
@click.argument("names", nargs=-1)
@click.option("--fix", is_flag=True, help="Rewrite every value that differs.")
def recompute_command(config: str | None, names: tuple[str, ...], fix: bool) -> None:
    """Compare rollup fields with their source records (all, or NAMES: pack.entity.field
    or pack.entity); exit 1 on drift, unless --fix rewrote it."""
    from engine import EngineModel, open_database
    from engine.rollups import drift
    from engine.rollups.recompute import selected_fields

    settings = _context.load_settings(config)
    _context.require_migrated(settings)
    project = _context.load_definitions(settings)
    model = EngineModel.for_url(project, settings.database_url)
    kept = [f"{g.target.entity.qualified_name}.{f}" for g in model.rollups.groups for f in g.fields]
    try:
        fields = selected_fields(model.rollups, names)
    except KeyError as exc:
        _context.fail(f"no rollup keeps {exc.args[0]} (rollups: {', '.join(kept) or 'none'})")

    async def run() -> list[object]:
        database = await open_database(settings.database_url, pool_size=1)
        try:
            return list(await drift(database, model.rollups, names, fix=fix))
        finally:
            await database.close()

    found = asyncio.run(run())
    for item in found:
        click.echo(str(item))
    checked = f"{len(fields)} rollup field{'s' if len(fields) != 1 else ''}"
    if not found:
        click.echo(f"no drift in {checked}")
    elif fix:
        click.echo(f"fixed {len(found)} value{'s' if len(found) != 1 else ''} in {checked}")
    else:
        click.echo(
            f"{len(found)} value{'s' if len(found) != 1 else ''} drifted in {checked}; "
            "`tessera recompute --fix` rewrites them",
            err=True,
        )
        sys.exit(1)
