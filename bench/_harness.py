"""What the benchmarks that load a real ``tessera serve`` share: a scratch PostgreSQL
database, the instance's environment, migrating it, the server process (with its CPU time
from /proc), and a minimal HTTP/1.1 keep-alive client on asyncio streams that plays rounds of
prepared requests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


# -- load -----------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection; responses must carry a Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        match = _LENGTH.search(head)
        if match is None:
            raise RuntimeError(f"response without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await self.reader.readexactly(int(match.group(1)))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@dataclass
class Round:
    name: str
    requests_per_s: float
    latencies: list[float]
    statuses: Counter[int]
    first_error: str | None
    server_cpu: float = float("nan")
    """CPU time of the server process over the round's wall time (1.0 = one core)."""
    bodies: dict[int, bytes] = field(default_factory=dict, repr=False)
    """With ``keep_bodies``: the body of each answered request, by its index."""


async def run_round(
    clients: list[Client],
    name: str,
    requests: list[bytes],
    expected: int = 201,
    *,
    keep_bodies: bool = False,
) -> Round:
    """Send ``requests`` over ``clients``, each connection taking the next one as soon as it
    is free; a status other than ``expected`` is counted, and the first one kept."""
    indexes = iter(range(len(requests)))  # shared: each worker takes the next request
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    bodies: dict[int, bytes] = {}

    async def worker(client: Client) -> None:
        for i in indexes:
            started = time.perf_counter()
            try:
                status, body = await client.send(requests[i])
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                statuses[0] += 1
                errors.append(f"{type(exc).__name__}: {exc}")
                return  # the connection is unusable; the others carry on
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1
            if keep_bodies:
                bodies[i] = body
            if status != expected and not errors:
                errors.append(f"{status}: {body[:500].decode(errors='replace')}")

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    seconds = time.perf_counter() - started
    return Round(
        name, len(latencies) / seconds, latencies, statuses, next(iter(errors), None), bodies=bodies
    )


def round_order(names: tuple[str, ...], rounds: int) -> Iterator[tuple[str, ...]]:
    """ABBA: (a, b), (b, a), (a, b), ..."""
    for i in range(rounds):
        yield names if i % 2 == 0 else names[::-1]


def run_async(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of latencies in seconds, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000 if values else 0.0


# -- instance and server --------------------------------------------------------------------


def env() -> dict[str, str]:
    """The environment of the ``tessera`` commands: no ``TESSERA_*`` of the caller's."""
    result = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    result["PYTHONPATH"] = str(REPO)
    return result


def migrate(folder: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        cwd=folder,
        env=env(),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServedProcess:
    """An HTTP server process on a free loopback port, its output in ``log``; started, and
    waited for until ``ready_path`` answers (a response with a status below 500 when
    ``any_status``, else 200)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log: Path,
        *,
        port: int,
        cwd: Path | None = None,
        environment: dict[str, str] | None = None,
        ready_path: str = "/healthz",
        any_status: bool = False,
    ) -> None:
        self.port = port
        self.log = log
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment if environment is not None else env(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.output()[-3000:]}")
            try:
                answer = httpx.get(f"{self.base}{ready_path}", timeout=1)
                if any_status or answer.status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{name} did not answer {ready_path} within 60 s")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux; NaN elsewhere)."""
        try:
            stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        except OSError:
            return float("nan")
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        """Stop the server; its output."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()
        return self.log.read_text(encoding="utf-8", errors="replace")


class Server(ServedProcess):
    """``tessera serve`` in the instance folder, one process, no access log (the default)."""

    def __init__(self, folder: Path) -> None:
        port = free_port()
        super().__init__(
            "tessera serve",
            [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
            folder / "serve.log",
            port=port,
            cwd=folder,
        )


@contextlib.contextmanager
def postgres_database() -> Iterator[tuple[str, str]]:
    """A new database ``tessera_bench_<random>`` on ``BENCH_PG``, dropped at the end even on
    error: its psycopg DSN and the server's version."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        row = admin.execute("SHOW server_version").fetchone()
    assert row is not None
    version = str(row[0]).split()[0]
    database = f"tessera_bench_{secrets.token_hex(4)}"
    dsn = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"'.encode())
    try:
        yield dsn, version
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'.encode())
