"""Scheduled rules: ``schedule:`` with ``where:`` runs a rule's actions on the selected
records once per slot, in the server without a broker and in ``tessera worker`` processes
with one; two schedulers never run the same slot twice; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import TYPE_CHECKING, Any

import pytest

from engine import EngineModel, open_database
from engine.scheduling import Scheduler
from runtime.app import load_definitions
from tests.conftest import Instance, write_instance
from tests.integration.delivery.test_celery_worker import Worker
from tests.support.redis_server import RedisServer

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.support.receivers import WebhookReceiver

FILES = {
    "module.yaml": "name: billing\nversion: 1.0.0\n",
    "entities/invoice.yaml": """\
title: number
fields:
  number:    {type: string, required: true, unique: true}
  due_date:  {type: date}
  paid:      {type: boolean, default: false}
  reminders: {type: integer, default: 0}
""",
    "rules/invoice.yaml": """\
- name: remind_overdue
  schedule: "* * * * *"
  where: "not paid and due_date is not none and due_date < today()"
  actions:
    - update: {values: {reminders: "{{ reminders + 1 }}"}}
    - webhook: {url: "WEBHOOK_URL", payload: {invoice: "{{ number }}"}}
""",
}
URL = "/api/v1/billing/invoice"


def make_instance(db_url: str, tmp_path: Path, hook: WebhookReceiver, **settings: Any) -> Instance:
    pack = tmp_path / "packs" / "billing"
    for relative, text in FILES.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text.replace("WEBHOOK_URL", hook.url))
    instance = write_instance(
        tmp_path / "books",
        db_url,
        ["billing"],
        [tmp_path / "packs"],
        reload_interval=0,
        **settings,
    )
    instance.migrate()
    return instance


def invoices(client: TestClient) -> dict[str, dict[str, Any]]:
    return {r["number"]: r for r in client.get(URL).json()["data"]}


def fill(client: TestClient) -> None:
    yesterday = (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    for number, values in [
        ("A-1", {"due_date": yesterday}),
        ("A-2", {"due_date": yesterday}),
        ("A-3", {"due_date": yesterday, "paid": True}),
        ("A-4", {"due_date": "2999-01-01"}),
    ]:
        response = client.post(URL, json={"number": number, **values})
        assert response.status_code == 201, response.text


def slot_runs(instance: Instance) -> int:
    async def count() -> int:
        database = await open_database(instance.settings.database_url, pool_size=1)
        try:
            async with database.connection() as conn:
                row = await conn.fetchrow("SELECT count(*) FROM tessera_schedule_run", ())
                return int(row[0]) if row else 0
        finally:
            await database.close()

    return asyncio.run(count())


def test_the_server_runs_a_scheduled_rule_once_per_slot(
    db_url: str, tmp_path: Path, hook: WebhookReceiver
) -> None:
    instance = make_instance(db_url, tmp_path, hook, schedule_check_seconds=0.2)
    with instance.client() as client:
        fill(client)
        calls = hook.wait_for(2)
        assert sorted(c.json["data"]["invoice"] for c in calls) == ["A-1", "A-2"]
        assert all(c.json["event"] == "schedule" for c in calls)
        time.sleep(1)  # five more looks at the schedule
        reminders = {n: r["reminders"] for n, r in invoices(client).items()}
    runs = slot_runs(instance)
    assert runs >= 1
    # one reminder per slot run (a minute boundary may fall in the test), never more
    assert reminders == {"A-1": runs, "A-2": runs, "A-3": 0, "A-4": 0}
    assert len(hook.calls) == 2 * runs


def test_two_schedulers_racing_run_a_slot_once(
    db_url: str, tmp_path: Path, hook: WebhookReceiver
) -> None:
    instance = make_instance(db_url, tmp_path, hook, schedule_check_seconds=3600)
    with instance.client() as client:
        fill(client)

    async def race() -> list[int]:
        project = load_definitions(instance.settings)
        url = instance.settings.database_url
        first = await open_database(url, pool_size=2)
        second = await open_database(url, pool_size=2)
        now = dt.datetime.now(dt.UTC)
        try:
            results = await asyncio.gather(
                Scheduler(EngineModel.for_url(project, url)).run_due(first, now),
                Scheduler(EngineModel.for_url(project, url)).run_due(second, now),
            )
        finally:
            await first.close()
            await second.close()
        return [len(runs) for runs in results]

    assert sorted(asyncio.run(race())) == [0, 1]
    with instance.client() as client:
        assert invoices(client)["A-1"]["reminders"] == 1


@pytest.mark.redis
def test_two_workers_run_each_slot_once(db_url: str, tmp_path: Path, hook: WebhookReceiver) -> None:
    folder = tmp_path / "redis"
    folder.mkdir()
    redis = RedisServer(folder)
    redis.start()
    instance = make_instance(
        db_url,
        tmp_path,
        hook,
        broker_url=redis.url,
        schedule_check_seconds=0.5,
        outbox={"sweep_seconds": 0.5, "lease_seconds": 2},
    )
    with instance.client() as client:
        fill(client)
    workers = [Worker(instance), Worker(instance)]
    try:
        for worker in workers:
            worker.start()
        calls = hook.wait_for(2, timeout=90)
        time.sleep(3)  # both workers keep looking at the schedule
    finally:
        outputs = [worker.stop() for worker in workers]
        redis.stop()
    for output in outputs:
        assert "Traceback" not in output, output
    runs = slot_runs(instance)
    with instance.client() as client:
        reminders = {n: r["reminders"] for n, r in invoices(client).items()}
    assert reminders == {"A-1": runs, "A-2": runs, "A-3": 0, "A-4": 0}
    assert len(hook.calls) == 2 * runs
    assert sorted(c.json["data"]["invoice"] for c in calls[:2]) == ["A-1", "A-2"]
