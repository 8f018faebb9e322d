"""``tessera migrate``: bring the database to the definitions, then load fixtures."""

from __future__ import annotations

import asyncio
import getpass

import click

from cli import _context
from engine.migrate import (
    apply_migration,
    plan_migration,
    record_migration,
    sync_engine,
    upgrade_system_tables,
)
from engine.tables import build_tables
from metadata.fingerprint import definitions_hash


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@click.command("migrate")
@click.option("--config", "-c", envvar="TESSERA_CONFIG", default=None)
@click.option("--dry-run", is_flag=True, help="Print the plan and its SQL; change nothing.")
@click.option(
    "--allow-data-loss",
    is_flag=True,
    help="Allow destructive steps (none are planned by this version).",
)
def migrate_command(config: str | None, dry_run: bool, allow_data_loss: bool) -> None:
    """Bring the database to the definitions; print the plan."""
    settings = _context.load_settings(config)
    project = _context.load_definitions(settings)
    try:
        tables = build_tables(project)
    except ValueError as exc:
        _context.fail(str(exc))
    engine = sync_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            if not dry_run:
                upgrade_system_tables(connection)
            plan = plan_migration(connection, tables)
            if not plan.steps:
                click.echo("database is up to date")
            for step in plan.steps:
                marker = "REFUSED " if step.refused else ""
                click.echo(f"{marker}{step.description}")
                if dry_run:
                    for sql in step.sql:
                        click.echo("    " + sql.replace("\n", "\n    "))
                if step.refused:
                    click.echo(f"    {step.refused}")
            if plan.refused:
                _context.fail("migration refused; nothing was changed")
            if dry_run:
                click.echo("dry run: nothing was changed")
                return
            apply_migration(connection, tables, plan)
            if plan.steps:
                record_migration(
                    connection, plan, definitions_hash=definitions_hash(project), applied_by=_who()
                )
    finally:
        engine.dispose()
    from cli.data import load_fixtures

    loaded = asyncio.run(load_fixtures(settings, project, "data"))
    if loaded:
        click.echo(f"fixtures: {loaded} records upserted")
