"""``tessera migrate``: bring the database to the definitions, then load fixtures."""

from __future__ import annotations

import asyncio
import getpass
from typing import TYPE_CHECKING

import click

from cli import _context

if TYPE_CHECKING:
    from engine.migrate import Plan
    from metadata import ProjectDef
    from runtime.settings import Settings


def who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def migrate(
    settings: Settings, project: ProjectDef, *, dry_run: bool, allow_data_loss: bool
) -> Plan:
    """Run (or rehearse) the migration to ``project``; exits with the reason if it fails."""
    from engine.migrate import MigrationFailed, MigrationRefused, run_migration
    from engine.tables import build_tables
    from metadata.fingerprint import definitions_hash

    try:
        return run_migration(
            settings.database_url,
            build_tables(project),
            dry_run=dry_run,
            allow_data_loss=allow_data_loss,
            applied_by=who(),
            definitions_hash=definitions_hash(project, settings.customizations),
            module_versions={m.name: m.version for m in project.modules.values()},
        )
    except (MigrationRefused, MigrationFailed, ValueError) as exc:
        _context.fail(str(exc))


def show_plan(plan: Plan, *, dry_run: bool) -> bool:
    """Print the plan; exit when it is refused. True when it was only rehearsed."""
    echo_plan(plan, with_sql=dry_run)
    if plan.refused:
        _context.fail("migration refused; nothing was changed")
    if dry_run:
        click.echo("dry run: nothing was changed")
    return dry_run


def upsert_fixtures(settings: Settings, project: ProjectDef) -> int:
    """Load every enabled pack's ``data/`` records by their key; the count upserted."""
    from cli.data import load_fixtures

    return asyncio.run(load_fixtures(settings, project, "data"))


def echo_plan(plan: Plan, *, with_sql: bool) -> None:
    if not plan.steps:
        click.echo("database is up to date")
    for step in plan.steps:
        marker = "REFUSED " if step in plan.refused else ""
        click.echo(f"{marker}{step.description}")
        if step.refused:
            click.echo(f"    {step.refused}")
        elif step.data_loss and plan.allow_data_loss:
            click.echo(f"    allowed by --allow-data-loss: {step.data_loss}")
        elif step.data_loss:
            click.echo(f"    {step.data_loss}: refused without --allow-data-loss")
        if with_sql:
            for sql in step.sql:
                click.echo(f"    {sql}")


@click.command("migrate")
@click.option("--config", "-c", envvar="TESSERA_CONFIG", default=None)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Rehearse the plan in a transaction that is rolled back; print it with its SQL.",
)
@click.option(
    "--allow-data-loss",
    is_flag=True,
    help="Allow steps that drop tables or columns holding data, or narrow a type.",
)
@click.option(
    "--admin",
    "admin_name",
    default="admin",
    show_default=True,
    help="The first administrator's user name, made when the instance has no user yet.",
)
@click.option(
    "--admin-password",
    envvar="TESSERA_ADMIN_PASSWORD",
    default=None,
    help="Its password, for scripts. Without it: asked for on a terminal, "
    "else generated and printed once.",
)
@click.option("--no-admin", is_flag=True, help="Do not make a first administrator.")
def migrate_command(
    config: str | None,
    dry_run: bool,
    allow_data_loss: bool,
    admin_name: str,
    admin_password: str | None,
    no_admin: bool,
) -> None:
    """Bring the database to the definitions, load fixtures, and make the first
    administrator if there is no user yet; print the plan."""
    from cli.identity import check_new_admin, create_first_admin

    if not no_admin:
        check_new_admin(admin_name, admin_password)  # a bad flag fails before any change
    settings = _context.load_settings(config)
    project = _context.load_definitions(settings)
    _context.check_fixture_files(project)
    _context.check_print_formats(project)
    plan = migrate(settings, project, dry_run=dry_run, allow_data_loss=allow_data_loss)
    if show_plan(plan, dry_run=dry_run):
        return
    loaded = upsert_fixtures(settings, project)
    if loaded:
        click.echo(f"fixtures: {loaded} records upserted")
    if not no_admin:
        create_first_admin(settings, admin_name, admin_password)
