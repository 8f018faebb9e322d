"""Loading settings and definitions for a command, with errors printed the CLI way.

The ``cli`` modules import only click at their top: the engine, the metadata loader and the
runtime are imported by the commands that use them, so ``tessera --help`` answers at once
(bench/cli_startup.py measures it)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from collections.abc import Sequence

    from metadata import DefinitionError, ProjectDef
    from runtime.settings import Settings

CONFIG_OPTION = click.option(
    "--config",
    "-c",
    envvar="TESSERA_CONFIG",
    default=None,
    help="Path of tessera.yaml (default: ./tessera.yaml).",
)


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def load_settings(config: str | None) -> Settings:
    from metadata import DefinitionError
    from runtime.settings import Settings

    try:
        return Settings.load(config)
    except DefinitionError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)


def require_migrated(settings: Settings) -> None:
    """Stop a command that reads or writes records when the database's system tables are
    missing or older than this version of Tessera expects."""
    from engine.migrate import system_tables_behind

    try:
        problem = system_tables_behind(settings.database_url)
    except Exception as exc:  # noqa: BLE001 - a database that cannot be reached, said plainly
        fail(f"cannot reach the database: {exc}")
    if problem is not None:
        fail(problem)


def load_definitions(settings: Settings, fixture_folders: Sequence[str] = ()) -> ProjectDef:
    """The instance's definitions, or every problem printed and exit 1. ``fixture_folders``
    (``data``, ``demo``) are checked with them, their problems printed in the same list."""
    from metadata import DefinitionError, load_project

    try:
        return load_project(
            settings.modules,
            settings.search_paths,
            config_name=str(settings.config_path or "tessera.yaml"),
            customizations=settings.customizations,
            fixture_folders=fixture_folders,
            instance_names=settings.instance_names(),
        )
    except DefinitionError as exc:
        report(exc)


def check_print_formats(project: ProjectDef) -> None:
    """Print formats are definitions too: a ``*.print.html`` of a pack's ``templates/`` that
    does not parse is reported at its file:line:col (exit 1), not first met by the server."""
    from metadata import DefinitionError
    from runtime.printing import PrintFormats

    try:
        PrintFormats(project)
    except DefinitionError as exc:
        report(exc)


def check_fixture_files(project: ProjectDef, folder: str = "data") -> None:
    """Fixture files are definitions too: check them before the database is touched."""
    from metadata import DefinitionError
    from metadata.fixtures import load_fixture_files

    try:
        load_fixture_files(project, folder)
    except DefinitionError as exc:
        report(exc)


def report(exc: DefinitionError) -> NoReturn:
    for problem in exc.problems:
        click.echo(str(problem), err=True)
    noun = "problem" if len(exc.problems) == 1 else "problems"
    click.echo(f"{len(exc.problems)} {noun} in the definitions", err=True)
    sys.exit(1)
