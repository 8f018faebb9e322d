"""What the server log says about requests that go wrong, behind a real uvicorn server on
loopback: a client that hangs up in the middle of its body is no error (one line at info,
no traceback), and an unexpected error is logged once, with its traceback (not a second
time by uvicorn). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn

from engine import open_database
from runtime.app import build_app
from tests.conftest import Instance, write_instance
from tests.support.identity import bearer, issue_token
from tests.support.server import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

PASSWORD = "correct horse battery"


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "instance", db_url, ["kitchen"])
    instance.migrate()
    issue_token(db_url, "ada", ("admin",), password=PASSWORD)
    return instance


@contextlib.contextmanager
def uvicorn_serving(instance: Instance) -> Iterator[tuple[str, int]]:
    """The instance's app behind uvicorn on a free loopback port, in a thread of this
    process (so that ``caplog`` sees uvicorn's own log too); stopped, with its shutdown
    done, on leaving."""
    port = free_port()
    config = uvicorn.Config(
        build_app(instance.settings), host="127.0.0.1", port=port, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def hang_up_mid_body(address: tuple[str, int], path: str, headers: str = "") -> None:
    """Send a request announcing 1000 bytes of body, send 10 of them, and close."""
    with socket.create_connection(address, timeout=5) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: tessera\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\n{headers}\r\n"
        )
        sock.sendall(head.encode() + b'{"name": "')
        time.sleep(0.1)


def wait_for(caplog: pytest.LogCaptureFixture, text: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while sum(text in r.getMessage() for r in caplog.records) < count:
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)


def test_a_client_hanging_up_mid_body_is_no_error(
    instance: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = bearer(instance.token())["Authorization"]
    requests = [
        ("/api/v1/kitchen/tag", f"Authorization: {token}\r\n"),  # the generated API
        ("/api/v1/auth/token", ""),  # a FastAPI route
        ("/login", ""),  # a screen of the web UI
    ]
    with uvicorn_serving(instance) as address:
        for path, headers in requests:
            hang_up_mid_body(address, path, headers)
        wait_for(caplog, "client disconnected during POST", len(requests))
    messages = [r.getMessage() for r in caplog.records]
    for path, _ in requests:
        assert f"client disconnected during POST {path}" in messages
    assert not [r for r in caplog.records if r.exc_info], messages
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], messages


def test_an_unexpected_error_is_logged_once(
    instance: Instance, caplog: pytest.LogCaptureFixture
) -> None:
    """A user whose roles in the database are not JSON (a damaged row) cannot sign in:
    a 500 problem, and one error with its traceback in the log per request, on the API
    and in the web UI."""

    async def damage() -> None:
        database = await open_database(instance.settings.database_url, pool_size=1)
        try:
            async with database.transaction() as conn:
                sql = "UPDATE tessera_user SET roles = 'not json' WHERE username = 'ada'"
                await conn.execute(sql, [])
        finally:
            await database.close()

    asyncio.run(damage())
    caplog.set_level(logging.INFO)
    with uvicorn_serving(instance) as (host, port):
        base = f"http://{host}:{port}"
        with httpx.Client(base_url=base) as client:
            api = client.post("/api/v1/auth/token", json={"username": "ada", "password": PASSWORD})
            assert api.status_code == 500
            assert api.json()["type"] == "/problems/internal"
            assert "Traceback" not in api.text
            page = client.get("/login")
            nonce = page.text.split('name="nonce" value="')[1].split('"')[0]
            form = {"nonce": nonce, "username": "ada", "password": PASSWORD}
            web = client.post("/login", data=form)
            assert web.status_code == 500
            assert "Traceback" not in web.text
            assert client.get("/healthz").status_code == 200  # the connection is still there
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "unexpected error on POST /api/v1/auth/token",
        "unexpected error on POST /login",
    ]
    assert all(r.exc_info for r in errors)
