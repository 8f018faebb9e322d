"""Outbox delivery through a real broker: a private Redis and real ``tessera worker``
processes (Celery). Events are delivered after commit, survive a worker killed in the
middle of a delivery and a Redis stopped (losing its queue) while writes go on; on SQLite
and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, write_instance
from tests.integration.delivery.packs import write_sales_pack
from tests.support.cli import REPO
from tests.support.receivers import (
    Mailbox,
    WebhookReceiver,
    wait_until,
)
from tests.support.redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

URL = "/api/v1/sales"
pytestmark = pytest.mark.redis


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def instance(
    db_url: str, tmp_path: Path, mailbox: Mailbox, hook: WebhookReceiver, redis: RedisServer
) -> Instance:
    packs = write_sales_pack(tmp_path / "packs", hook.url)
    instance = write_instance(
        tmp_path / "acme",
        db_url,
        ["sales"],
        [packs],
        reload_interval=0,
        broker_url=redis.url,
        secret_key="worker-test-secret",
        smtp={"host": "127.0.0.1", "port": mailbox.port},
        outbox={"backoff_seconds": 0.2, "sweep_seconds": 0.5, "lease_seconds": 2},
    )
    instance.migrate()
    return instance


class Worker:
    """``tessera worker`` in its own process group, so that a kill takes its pool too."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.process: subprocess.Popen[str] | None = None
        self.broker_lost = False
        """Celery logs tracebacks of its own when the broker goes away."""

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
        env["PYTHONPATH"] = str(REPO)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "--concurrency", "1"],
            cwd=self.instance.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.communicate(timeout=10)
        self.process = None

    def stop(self) -> str:
        if self.process is None:
            return ""
        # a warm shutdown: SIGTERM to the main process only, which lets the pool finish the
        # task it is running; sent to the whole group it would kill a busy pool process
        # (WorkerLostError) whenever a sweep happens to run at that moment
        self.process.send_signal(signal.SIGTERM)
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            output, _ = self.process.communicate()
        self.process = None
        return output


@pytest.fixture
def worker(instance: Instance) -> Iterator[Worker]:
    running = Worker(instance)
    running.start()
    try:
        yield running
    finally:
        output = running.stop()
        assert running.broker_lost or "Traceback" not in output, output


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def lose(client: TestClient, name: str) -> None:
    created = client.post(f"{URL}/opportunity", json={"name": name, "amount": "10.00"})
    assert created.status_code == 201, created.text
    record_id = created.json()["data"]["id"]
    lost = client.patch(f"{URL}/opportunity/{record_id}", json={"stage": "closed_lost"})
    assert lost.status_code == 200, lost.text


def counts(client: TestClient) -> dict[str, int]:
    body: dict[str, Any] = client.get("/api/v1/_outbox").json()
    return dict(body["meta"]["counts"])


def test_the_worker_delivers_email_and_webhook_after_commit(
    client: TestClient, worker: Worker, mailbox: Mailbox, hook: WebhookReceiver
) -> None:
    created = client.post(
        f"{URL}/opportunity",
        json={"name": "Fleet", "owner_email": "owner@acme.test", "amount": "5.00"},
    )
    won = client.patch(
        f"{URL}/opportunity/{created.json()['data']['id']}", json={"stage": "closed_won"}
    )
    assert won.status_code == 200, won.text
    (message,) = mailbox.wait_for(1, timeout=60)
    assert message["Subject"] == "Won: Fleet"
    (call,) = hook.wait_for(1, timeout=60)
    assert call.json["type"] == "sales.opportunity.won_creates_order"
    wait_until(lambda: counts(client)["delivered"] == 2)


def test_no_event_is_lost_when_the_worker_is_killed_mid_delivery(
    client: TestClient, worker: Worker, hook: WebhookReceiver
) -> None:
    hook.delay = 3.0
    lose(client, "Slow")
    wait_until(lambda: len(hook.started) == 1)
    worker.kill()  # the receiver is still answering: the worker never learns the outcome
    assert counts(client)["delivering"] == 1
    hook.delay = 0.0
    worker.start()
    wait_until(lambda: counts(client)["delivered"] == 1)
    assert len(set(hook.started)) == 1  # every attempt carried the event's one key
    assert len(hook.started) >= 2  # sent again after the lease ran out


def test_writes_succeed_while_redis_is_down_and_events_arrive_after(
    client: TestClient, worker: Worker, hook: WebhookReceiver, redis: RedisServer
) -> None:
    lose(client, "Before")
    hook.wait_for(1, timeout=60)
    worker.broker_lost = True
    redis.stop()
    started = time.monotonic()
    for number in range(5):
        lose(client, f"During {number}")
    assert time.monotonic() - started < 15  # writes do not wait on the broker
    assert counts(client)["pending"] == 5
    redis.start()  # empty: whatever was queued in it is gone
    wait_until(lambda: counts(client)["delivered"] == 6, timeout=90)
    names = sorted(call.json["data"]["deal"] for call in hook.calls)
    assert names == ["Before", *(f"During {n}" for n in range(5))]
    assert len(set(hook.keys())) == 6


def test_the_worker_applies_async_actions(client: TestClient, worker: Worker) -> None:
    created = client.post(f"{URL}/opportunity", json={"name": "Whale", "amount": "250000"})
    assert created.status_code == 201, created.text
    record_id = created.json()["data"]["id"]
    assert created.json()["data"]["owner_email"] is None
    wait_until(lambda: counts(client)["delivered"] == 1)
    stored = client.get(f"{URL}/opportunity/{record_id}").json()["data"]
    assert stored["owner_email"] == "vip@acme.test"
