"""``tessera``: create, check, migrate and serve an instance (SPEC §5)."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import _context
from cli._context import CONFIG_OPTION
from cli.data import demo_command, export_command, import_command
from cli.files import files_group
from cli.identity import token_group, user_group
from cli.migrate import migrate_command
from cli.module import module_group
from cli.outbox import outbox_group, worker_command
from cli.rollups import recompute_command

if TYPE_CHECKING:
    from runtime.settings import Settings

TEMPLATE = """\
# Tessera instance settings (see docs/getting-started.md)
database_url: {database_url}
# broker_url: redis://127.0.0.1:6379/0
modules: [{modules}]
module_paths: [./packs]
customizations: ./custom
# admins may change definitions from the web UI's designer and the meta API
meta_api_writes: true
secret_key: {secret}
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Tessera: metadata-driven CRM and ERP."""


@main.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--modules",
    default="contacts",
    show_default=True,
    help="Comma-separated module packs to enable.",
)
@click.option("--database-url", default="sqlite:///tessera.db", show_default=True)
def init(directory: Path, modules: str, database_url: str) -> None:
    """Create an instance folder with a tessera.yaml."""
    config = directory / "tessera.yaml"
    if config.exists():
        _context.fail(f"{config} already exists; not overwriting it")
    names = [m.strip() for m in modules.split(",") if m.strip()]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "packs").mkdir(exist_ok=True)
    (directory / "custom").mkdir(exist_ok=True)
    config.write_text(
        TEMPLATE.format(
            database_url=database_url, modules=", ".join(names), secret=secrets.token_urlsafe(32)
        ),
        encoding="utf-8",
    )
    click.echo(f"created {config}")
    click.echo(f"next: cd {directory} && tessera migrate && tessera serve")


@main.command()
@CONFIG_OPTION
def validate(config: str | None) -> None:
    """Check every definition; print file:line:col errors; exit 1 on error."""
    from engine.tables import build_tables
    from metadata import access_index_advice

    settings = _context.load_settings(config)
    # Every problem of every file at once, fixture and demo files included.
    project = _context.load_definitions(settings, fixture_folders=("data", "demo"))
    _context.check_print_formats(project)
    try:
        build_tables(project)
    except ValueError as exc:
        _context.fail(str(exc))
    from metadata._scheduled_where import scheduled_where_advice

    advices = access_index_advice(project) + scheduled_where_advice(project.entities.values())
    for advice in advices:
        click.echo(f"advice: {advice}")
    click.echo(f"ok: {len(project.modules)} packs, {len(project.entities)} entities")


@main.command()
@click.option(
    "--kind",
    type=click.Choice(
        ["module", "entity", "rules", "form", "workflow", "fixture", "overlay", "dashboard", "view"]
    ),
    default=None,
    help="Print only this kind's schema.",
)
def schema(kind: str | None) -> None:
    """Print the JSON Schemas of the definition language."""
    from metadata import all_schemas, schema_document

    document = schema_document(kind) if kind else all_schemas()
    click.echo(json.dumps(document, indent=2))


@main.command()
@CONFIG_OPTION
def openapi(config: str | None) -> None:
    """Print the OpenAPI document of the generated API."""
    from runtime.app import build_app

    settings = _context.load_settings(config)
    project = _context.load_definitions(settings)
    click.echo(json.dumps(build_app(settings, project).openapi(), indent=2))


@main.command()
@CONFIG_OPTION
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(config: str | None, host: str, port: int, access_log: bool, workers: int) -> None:
    """Serve the API and the web UI."""
    import uvicorn

    from runtime.app import build_app, freeze_heap

    settings = _context.load_settings(config)
    project = _context.load_definitions(settings)
    _context.require_migrated(settings)
    proxies = proxy_options(settings)
    if workers > 1:
        # Each worker process builds the app itself from TESSERA_CONFIG (the factory).
        import os

        os.environ["TESSERA_CONFIG"] = str(settings.config_path or "tessera.yaml")
        uvicorn.run(
            "runtime.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
            log_level="info",
            **proxies,
        )
        return
    app = build_app(settings, project)
    freeze_heap()
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info", **proxies)


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's proxy options from ``trusted_proxies``: ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed from those peers only, and from none by default
    (uvicorn's own default believes them from 127.0.0.1, which let any local process, or a
    proxy on the same host that does not overwrite the header, choose its address)."""
    trusted = list(settings.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted}


main.add_command(migrate_command)
main.add_command(module_group)
main.add_command(import_command)
main.add_command(export_command)
main.add_command(demo_command)
main.add_command(worker_command)
main.add_command(outbox_group)
main.add_command(user_group)
main.add_command(token_group)
main.add_command(recompute_command)
main.add_command(files_group)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
