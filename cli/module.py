"""``tessera module list|install|upgrade``: module packs over an instance's life.

Installing enables a pack (and the packs it depends on) in ``tessera.yaml``, shows the
migration plan, migrates and upserts the pack's fixtures. Upgrading does the same for a
newer version of an enabled pack found on the module paths. Versions are semantic; a
database remembers which version of each pack it was migrated with (``tessera_module``),
and a pack older than that is refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import click

from cli import _context
from cli._context import CONFIG_OPTION
from cli.migrate import migrate, show_plan, upsert_fixtures

if TYPE_CHECKING:
    from pathlib import Path

    from engine.migrate import Plan
    from metadata import ProjectDef
    from runtime.settings import Settings

YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Apply without asking.")


@click.group("module")
def module_group() -> None:
    """List, install and upgrade module packs."""


def _installed(settings: Settings) -> dict[str, str]:
    from engine.migrate import installed_modules, sync_engine

    engine = sync_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return installed_modules(connection)
    except Exception:  # noqa: BLE001 - an unreachable or empty database has nothing installed
        return {}
    finally:
        engine.dispose()


def _available_versions(settings: Settings) -> dict[str, str]:
    import yaml

    from metadata import discover_packs

    versions = {}
    for name, path in discover_packs(settings.search_paths).items():
        try:
            data = yaml.safe_load((path / "module.yaml").read_text("utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict):
            versions[name] = str(data.get("version", "?"))
    return versions


@module_group.command("list")
@CONFIG_OPTION
def list_command(config: str | None) -> None:
    """Packs on the module paths: installed version, available version, state."""
    from metadata import DefinitionError

    settings = _context.load_settings(config)
    available = _available_versions(settings)
    installed = _installed(settings)
    try:
        enabled = set(_load(settings, settings.modules).modules)
    except DefinitionError:
        enabled = set(settings.modules)
    rows = [("NAME", "INSTALLED", "AVAILABLE", "STATE")]
    for name in sorted(set(available) | set(installed)):
        rows.append(
            (
                name,
                installed.get(name, "-"),
                available.get(name, "-"),
                _state(name in enabled, installed.get(name), available.get(name)),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[3]]))


def _state(enabled: bool, installed: str | None, available: str | None) -> str:
    from metadata.semver import Version

    if available is None:
        return "missing: installed but not found on the module paths"
    if installed is None:
        return "enabled, not migrated yet" if enabled else "available"
    try:
        newer = Version.parse(available) > Version.parse(installed)
        older = Version.parse(available) < Version.parse(installed)
    except ValueError:
        return "installed"
    if newer:
        return "upgrade available"
    if older:
        return "older than installed: downgrade refused"
    return "installed" if enabled else "installed, disabled in tessera.yaml"


@module_group.command("install")
@CONFIG_OPTION
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Show the plan only.")
@YES_OPTION
def install_command(config: str | None, name: str, dry_run: bool, yes: bool) -> None:
    """Enable pack NAME (and its dependencies), migrate and load its fixtures."""
    from metadata._errors import did_you_mean

    settings = _context.load_settings(config)
    available = _available_versions(settings)
    if name not in available:
        _context.fail(f"no module pack '{name}' on the module paths{did_you_mean(name, available)}")
    if name in settings.modules:
        click.echo(f"{name} is already enabled; use 'tessera module upgrade {name}'")
        return
    modules = (*settings.modules, name)
    project = _load_or_fail(settings, modules)
    newcomers = [
        m for m in project.modules if m not in _load_or_fail(settings, settings.modules).modules
    ]
    for module in newcomers:
        click.echo(f"install {module} {project.modules[module].version}")
    _migrate(replace(settings, modules=modules), project, dry_run=dry_run, yes=yes)
    if dry_run:
        return
    assert settings.config_path is not None
    _enable_in_config(settings.config_path, name)
    click.echo(f"enabled {name} in {settings.config_path}")


@module_group.command("upgrade")
@CONFIG_OPTION
@click.argument("names", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show the plan only.")
@click.option("--allow-data-loss", is_flag=True, help="Allow destructive steps.")
@YES_OPTION
def upgrade_command(
    config: str | None, names: tuple[str, ...], dry_run: bool, allow_data_loss: bool, yes: bool
) -> None:
    """Migrate enabled packs (all, or NAMES) to the versions on the module paths."""
    from metadata._errors import did_you_mean
    from metadata.semver import Version

    settings = _context.load_settings(config)
    project = _load_or_fail(settings, settings.modules)
    installed = _installed(settings)
    for name in names:
        if name not in project.modules:
            _context.fail(f"pack '{name}' is not enabled{did_you_mean(name, project.modules)}")
    changes = 0
    for module in project.modules.values():
        if names and module.name not in names:
            continue
        before = installed.get(module.name)
        if before is None:
            click.echo(f"install {module.name} {module.version}")
            changes += 1
        elif Version.parse(module.version) > Version.parse(before):
            major = Version.parse(module.version).major > Version.parse(before).major
            note = " (major version: read the pack's release notes)" if major else ""
            click.echo(f"upgrade {module.name} {before} -> {module.version}{note}")
            changes += 1
        elif Version.parse(module.version) < Version.parse(before):
            _context.fail(
                f"pack '{module.name}' {module.version} is older than the installed {before}; "
                "downgrading a pack is not supported"
            )
    if not changes:
        click.echo("every pack is at its installed version; checking the schema")
    _migrate(settings, project, dry_run=dry_run, yes=yes, allow_data_loss=allow_data_loss)


def _load(settings: Settings, modules: tuple[str, ...]) -> ProjectDef:
    from metadata import load_project

    return load_project(
        modules,
        settings.search_paths,
        config_name=str(settings.config_path or "tessera.yaml"),
        customizations=settings.customizations,
        instance_names=settings.instance_names(),
    )


def _load_or_fail(settings: Settings, modules: tuple[str, ...]) -> ProjectDef:
    return _context.load_definitions(replace(settings, modules=modules))


def _migrate(
    settings: Settings,
    project: ProjectDef,
    *,
    dry_run: bool,
    yes: bool,
    allow_data_loss: bool = False,
) -> None:
    _context.check_fixture_files(project)

    def run(rehearse: bool) -> Plan:
        return migrate(settings, project, dry_run=rehearse, allow_data_loss=allow_data_loss)

    if show_plan(run(rehearse=True), dry_run=dry_run):
        return
    if not yes and not click.confirm("apply this plan?", default=True):
        _context.fail("cancelled; nothing was changed")
    run(rehearse=False)
    click.echo(f"migrated; fixtures: {upsert_fixtures(settings, project)} records upserted")


def _enable_in_config(config_path: Path, name: str) -> None:
    """Add the pack to ``modules:`` keeping the file's comments and layout."""
    from ruamel.yaml import YAML

    editor = YAML(typ="rt")
    editor.preserve_quotes = True
    data = editor.load(config_path.read_text("utf-8"))
    modules = data.get("modules")
    if modules is None:
        data["modules"] = [name]
    else:
        modules.append(name)
    with config_path.open("w", encoding="utf-8") as handle:
        editor.dump(data, handle)
