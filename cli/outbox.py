"""``tessera worker`` and ``tessera outbox``: delivering and inspecting the outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import sys
from typing import TYPE_CHECKING

import click

from cli import _context, supervisor
from cli._context import CONFIG_OPTION

if TYPE_CHECKING:
    from engine.outbox import OutboxEvent
    from runtime.settings import Settings

# engine.outbox.EventStatus's values, written out so that ``--help`` does not import the
# engine (tests/unit/test_cli_startup.py checks they are the same).
STATUSES = ("pending", "delivering", "delivered", "failed")


@click.command("worker")
@CONFIG_OPTION
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--loglevel", default="info", show_default=True)
@click.option(
    "--beat/--no-beat",
    default=True,
    show_default=True,
    help="Run the scheduler (the outbox sweep and scheduled rules) in this worker.",
)
@click.option(
    "--supervise/--no-supervise",
    default=True,
    show_default=True,
    help="Restart the Celery worker when it stops on an error (a lost broker connection).",
)
def worker_command(
    config: str | None, concurrency: int, loglevel: str, beat: bool, supervise: bool
) -> None:
    """Celery worker (and scheduler): delivers e-mails and webhooks, runs scheduled rules."""
    settings = _context.load_settings(config)
    _context.require_migrated(settings)
    if not settings.broker_url:
        _context.fail(
            "no broker_url in tessera.yaml (nor TESSERA_BROKER_URL); without a broker, "
            "`tessera serve` delivers the outbox itself"
        )
    if supervise:
        arguments = [f"--concurrency={concurrency}", f"--loglevel={loglevel}"]
        arguments += ["--beat" if beat else "--no-beat", "--no-supervise"]
        if config:
            arguments.append(f"--config={config}")
        sys.exit(supervisor.supervise([sys.executable, "-m", "cli.main", "worker", *arguments]))
    from runtime.delivery.celery_app import worker_app

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per webhook is noise
    worker = worker_app(settings).Worker(
        concurrency=concurrency,
        loglevel=loglevel.upper(),
        beat=beat,
        hostname=f"tessera-{os.getpid()}@%h",
        quiet=True,
        without_gossip=True,
        without_mingle=True,
        without_heartbeat=True,
    )
    worker.start()
    sys.exit(worker.exitcode or 0)


@click.group("outbox")
def outbox_group() -> None:
    """Inspect and retry the e-mails and webhooks rules have queued."""


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _line(event: OutboxEvent) -> str:
    target = event.payload.get("url") or ", ".join(event.payload.get("to", []))
    line = (
        f"{event.id:>6}  {event.status.value:<10}  {event.kind:<7}  "
        f"{event.entity}#{event.record_id}  {event.rule}  -> {target}  "
        f"attempts={event.attempts}  created={_when(event.created_at)}"
    )
    if event.last_error:
        line += f"\n        last error: {event.last_error}"
    return line


@outbox_group.command("list")
@CONFIG_OPTION
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default=None,
    help="Only events of this status (failed: out of attempts).",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def list_command(config: str | None, status: str | None, limit: int) -> None:
    """List outbox events, oldest first, with counts by status."""
    from engine import open_database
    from engine.outbox import EventStatus, Outbox

    settings = _context.load_settings(config)
    _context.require_migrated(settings)

    async def run() -> tuple[list[OutboxEvent], dict[str, int]]:
        database = await open_database(settings.database_url, pool_size=1)
        outbox = Outbox(database.sa_dialect)
        try:
            async with database.connection() as conn:
                wanted = EventStatus(status) if status else None
                events = await outbox.listing(conn, status=wanted, limit=limit)
                return events, await outbox.counts(conn)
        finally:
            await database.close()

    events, counts = asyncio.run(run())
    for event in events:
        click.echo(_line(event))
    summary = ", ".join(f"{counts.get(s.value, 0)} {s.value}" for s in EventStatus)
    click.echo(f"outbox: {summary}")


@outbox_group.command("retry")
@CONFIG_OPTION
@click.argument("event_ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Retry every failed event.")
def retry_command(config: str | None, event_ids: tuple[int, ...], all_failed: bool) -> None:
    """Give failed events a fresh set of attempts; delivered by the worker or server."""
    if not event_ids and not all_failed:
        _context.fail("name the event ids to retry, or pass --all-failed")
    settings = _context.load_settings(config)
    _context.require_migrated(settings)
    retried, refused = asyncio.run(_retry(settings, list(event_ids), all_failed))
    for event_id in refused:
        click.echo(f"event {event_id} is not a failed event; left as it is", err=True)
    click.echo(f"{len(retried)} event(s) queued again")
    if refused:
        sys.exit(1)


async def _retry(
    settings: Settings, event_ids: list[int], all_failed: bool
) -> tuple[list[int], list[int]]:
    from engine import open_database
    from engine.outbox import EventStatus, Outbox
    from runtime.delivery import make_dispatcher

    database = await open_database(settings.database_url, pool_size=1)
    outbox = Outbox(database.sa_dialect)
    retried: list[int] = []
    refused: list[int] = []
    try:
        async with database.connection() as conn:
            if all_failed:
                failed = await outbox.listing(conn, status=EventStatus.FAILED, limit=100_000)
                event_ids = [event.id for event in failed]
            for event_id in event_ids:
                (retried if await outbox.retry(conn, event_id) else refused).append(event_id)
        if settings.broker_url and retried:
            dispatcher = make_dispatcher(settings, database)
            await dispatcher.start()
            dispatcher.notify(retried)
            await dispatcher.stop()
    finally:
        await database.close()
    return retried, refused
