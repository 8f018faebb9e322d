"""With a broker (``broker_url``), the sign-in throttle and token revocations are shared in
Redis by every server process: two apps of one instance (two processes, as far as their
state goes) behave as one. Redis down falls back to each process on its own, logged, never
a 500. On SQLite and PostgreSQL, with a real Redis."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from runtime.shared_auth import shared_auth_for
from tests.conftest import Instance, write_instance
from tests.support.cli import tessera
from tests.support.identity import bearer, issue_token
from tests.support.redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

pytestmark = pytest.mark.redis

PASSWORD = "correct horse battery"
ME = "/api/v1/auth/me"


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
def instance(db_url: str, tmp_path: Path, redis: RedisServer) -> Instance:
    instance = write_instance(
        tmp_path / "instance",
        db_url,
        ["kitchen"],
        broker_url=redis.url,
        # a long cache: only the shared revocation can make the other app refuse at once
        auth={"login_attempts": 3, "login_window_seconds": 60, "token_cache_seconds": 600},
    )
    instance.migrate()
    issue_token(db_url, "ada", ("admin",), password=PASSWORD)
    issue_token(db_url, "bob", ("clerk",), password=PASSWORD)
    return instance


@pytest.fixture
def two(instance: Instance) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps of the instance, each with its own throttle and token cache."""
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(instance.client(signed_in=False))
        second = stack.enter_context(instance.client(signed_in=False))
        assert first.app is not second.app
        yield first, second


def sign_in(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_failed_sign_ins_on_one_process_throttle_the_other(
    two: tuple[TestClient, TestClient],
) -> None:
    first, second = two
    assert sign_in(first, "bob", "wrong").status_code == 401
    assert sign_in(second, "bob", "wrong").status_code == 401
    assert sign_in(first, "bob", "wrong").status_code == 401
    blocked = sign_in(second, "bob", PASSWORD)  # the 4th attempt, on the other process
    assert blocked.status_code == 429, blocked.text
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert sign_in(first, "ada", PASSWORD).status_code == 200  # another name is not locked

    # a success on one process clears its name's count for all
    assert sign_in(first, "ada", "wrong").status_code == 401
    assert sign_in(second, "ada", "wrong").status_code == 401
    assert sign_in(second, "ada", PASSWORD).status_code == 200
    for client in (first, second):
        assert sign_in(client, "ada", "wrong").status_code == 401
    assert sign_in(first, "ada", PASSWORD).status_code == 200


def test_odd_user_names_and_the_address_are_counted_too(two: tuple[TestClient, TestClient]) -> None:
    first, second = two
    for name in ["nul\x00name", "\ud800lone", "x" * 3000, "ünï"]:
        body = json.dumps({"username": name, "password": "wrong"})  # \ud800 escaped
        for client in (first, second, first):
            response = client.post("/api/v1/auth/token", content=body)
            assert response.status_code == 401, (name, response.text)
    # 12 failures from one address over both processes: 4x the per-name limit locks it
    assert sign_in(second, "ada", PASSWORD).status_code == 429


def test_a_token_revoked_through_one_process_is_refused_by_the_other_at_once(
    instance: Instance, two: tuple[TestClient, TestClient]
) -> None:
    first, second = two
    token = sign_in(first, "bob", PASSWORD).json()["access_token"]
    assert first.get(ME, headers=bearer(token)).status_code == 200
    assert second.get(ME, headers=bearer(token)).status_code == 200  # now in its cache
    assert first.post("/api/v1/auth/revoke", headers=bearer(token)).status_code == 204
    assert second.get(ME, headers=bearer(token)).status_code == 401
    assert first.get(ME, headers=bearer(token)).status_code == 401

    # revoked on the command line: the servers refuse it at once too
    other = issue_token(instance.settings.database_url, "bob")
    assert second.get(ME, headers=bearer(other)).status_code == 200
    listed = tessera("token", "list", cwd=instance.path)
    token_id = [
        line.split()[0] for line in listed.stdout.splitlines() if "live" in line and "bob" in line
    ][-1]
    revoked = tessera("token", "revoke", token_id, cwd=instance.path)
    assert revoked.returncode == 0, revoked.stderr
    assert "refuse it from now on" in revoked.stdout
    assert second.get(ME, headers=bearer(other)).status_code == 401


def test_redis_down_falls_back_to_each_process(
    instance: Instance,
    redis: RedisServer,
    two: tuple[TestClient, TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = two
    token = sign_in(first, "ada", PASSWORD).json()["access_token"]
    assert second.get(ME, headers=bearer(token)).status_code == 200
    redis.stop()
    with caplog.at_level(logging.WARNING, logger="tessera.security"):
        # cached tokens keep working, new sign-ins too
        assert second.get(ME, headers=bearer(token)).status_code == 200
        assert sign_in(second, "ada", PASSWORD).status_code == 200
        # each process throttles on its own: 3 failures on the first lock it, not the second
        for _ in range(3):
            assert sign_in(first, "bob", "wrong").status_code == 401
        assert sign_in(first, "bob", PASSWORD).status_code == 429
        assert sign_in(second, "bob", PASSWORD).status_code == 200
        # a revocation still holds where it was made
        assert first.post("/api/v1/auth/revoke", headers=bearer(token)).status_code == 204
        assert first.get(ME, headers=bearer(token)).status_code == 401
    unreachable = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
    assert 1 <= len(unreachable) <= 2  # once per process and outage, not per request
    revoked = tessera("token", "list", cwd=instance.path)
    assert revoked.returncode == 0, revoked.stderr


def test_without_a_broker_each_process_counts_alone(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(
        tmp_path / "alone",
        db_url,
        ["kitchen"],
        auth={"login_attempts": 3, "login_window_seconds": 60},
    )
    instance.migrate()
    issue_token(db_url, "bob", ("clerk",), password=PASSWORD)
    with instance.client(signed_in=False) as first, instance.client(signed_in=False) as second:
        for _ in range(3):
            assert sign_in(first, "bob", "wrong").status_code == 401
        assert sign_in(first, "bob", PASSWORD).status_code == 429
        assert sign_in(second, "bob", PASSWORD).status_code == 200


def test_a_broker_that_is_not_redis_leaves_them_per_process(instance: Instance) -> None:
    settings = dataclasses.replace(instance.settings, broker_url="amqp://guest@127.0.0.1//")
    assert shared_auth_for(settings) is None
    assert shared_auth_for(instance.settings) is not None
