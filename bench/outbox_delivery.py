"""Outbox delivery: how fast ``--events`` webhook events (default 10,000) go out through
``--workers`` Celery workers (default 2), and whether every one arrives exactly once.

Rules never call a webhook inside a write: they add an event to ``tessera_outbox`` in the
write's transaction, and deliverers send it after the commit (docs/delivery.md). The issue
asks for the outbox's throughput with 2 workers, with zero events lost or duplicated, so
this counts what a real receiver gets, not what the deliverers believe they sent.

One pack, ``hooks``, with one entity, ``signup``, whose rule ``tell_the_hook`` (``on:
create``) has a ``webhook`` action to a receiver on loopback: every create writes exactly
one event, in the create's transaction. The outbox is filled with all the events *before*
any deliverer runs, so the clock measures delivery alone. Modes, one after the other on the
same database (the outbox is emptied in between):

- ``published``: filled through ``tessera serve`` with ``broker_url`` set (``POST _bulk``,
  1,000 records a request), so each commit publishes one ``tessera.deliver`` task per event
  to a private Redis, as in production; once all tasks are in Redis the server is stopped.
  Then ``--workers`` ``tessera worker --concurrency C`` processes start and drain the queue.
  Outbox settings are Tessera's defaults (lease 60 s, sweep every 5 s).
- ``sweep``: filled in this process through ``EntityStore.create`` (1,000 creates a
  transaction, as ``_bulk`` does), with no broker, so Redis starts empty and the workers'
  periodic sweep (``tessera.sweep``, run by every worker's beat every ``--sweep-seconds``,
  Tessera's default 5 s) is what hands the events out: the path after a broker outage, or
  after a Redis restarted without its queue. The sweep leaves alone events due for less
  than a lease, so the lease is shortened (``--lease-seconds``, 1 s) to stand for events
  that have waited longer than that; with the default 60 s the first minute would be idle.
- ``in-process``: the same fill, then the ``InProcessDispatcher`` that ``tessera serve``
  runs without a broker (1 process, at most 16 deliveries in flight), in a thread of this
  process with its own event loop, woken once as a commit wakes it; Tessera's defaults.

The receiver runs in its own process (raw HTTP/1.1 on asyncio streams, uvloop when
installed, keep-alive), checks each request's ``X-Tessera-Signature``, records its
``Idempotency-Key`` and answers 200. Its CPU share over each run is reported, to show it is
not what limits the rate.

The clock starts when the first worker process (or the dispatcher) is started, so Celery's
start-up is included, and stops when the outbox (polled every 0.1 s) shows every event
delivered and the receiver has seen every key. ``1st-last`` is the span between the first
and the last webhook received: the steady rate, without start-up. Lost = events - distinct
keys received; duplicated = requests - distinct keys. The deliverers' CPU time (their
process groups, read from /proc; for ``in-process`` this whole process) is counted from the
first delivery seen, so start-up is left out. For the Celery modes the workers' logs give
the outcome of every ``tessera.deliver`` task (delivered, or skipped: the event was not
claimable any more) and how many tasks each sweep queued. Exits non-zero if an event is
lost, if a Celery mode sends one twice, if the outbox does not end with every event
delivered, or on a timeout (``--timeout``, 300 s a mode).

Run: ``.venv/bin/python -m bench.outbox_delivery`` (``--events 500`` for a quick run,
``--database sqlite``, ``--modes published``). Needs ``redis-server`` and, by default,
PostgreSQL (``BENCH_PG`` or ``--database-url``, default the ``test`` database on
127.0.0.1; the benchmark creates and drops its own ``tessera_bench_<random>`` database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from bench._auth import bearer, bench_token

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from runtime.settings import Settings

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
PACK = "hooks"
ENTITY = "signup"
SECRET = "outbox-bench-secret"
BATCH = 1000  # records per _bulk request / per transaction (the API's limit)
POLL_SECONDS = 0.1
MODES = ("published", "sweep", "in-process")
CELERY_MODES = ("published", "sweep")
DEFAULTS = (60.0, 5.0)  # lease_seconds and sweep_seconds of runtime.settings.OutboxSettings
_DELIVERED = re.compile(r"tessera\.deliver\[[^\]]*\] succeeded in [0-9.e-]+s: '(\w+)'")
_SWEPT = re.compile(r"tessera\.sweep\[[^\]]*\] succeeded in [0-9.e-]+s: (\d+)")

MODULE_YAML = f'name: {PACK}\nversion: "1.0.0"\n'
ENTITY_YAML = """\
label: Signup
title: name
fields:
  name:  {type: string, required: true, max_length: 120}
  email: {type: email}
  plan:  {type: enum, values: [free, team, business], default: free}
  seats: {type: integer, min: 1}
"""
RULES_YAML = """\
- name: tell_the_hook
  on: create
  actions:
    - webhook: {url: "RECEIVER_URL"}
"""


# -- the webhook receiver (its own process) -------------------------------------------------


async def _receive(port: int, secret: bytes) -> None:
    keys: set[str] = set()
    tally: dict[str, Any] = {}

    def reset() -> None:
        keys.clear()
        tally.update(requests=0, bad_signatures=0, first=None, last=None)

    def record(headers: dict[bytes, bytes], body: bytes) -> None:
        now = time.time()
        tally["requests"] += 1
        tally["first"] = tally["first"] or now
        tally["last"] = now
        keys.add(headers.get(b"idempotency-key", b"").decode())
        timestamp = headers.get(b"x-tessera-timestamp", b"")
        digest = hmac.new(secret, timestamp + b"." + body, hashlib.sha256).hexdigest()
        expected = b"sha256=" + digest.encode()
        if not hmac.compare_digest(expected, headers.get(b"x-tessera-signature", b"")):
            tally["bad_signatures"] += 1

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, _, header_block = head.partition(b"\r\n")
                path = request_line.split(b" ", 2)[1]
                headers = {}
                for line in header_block.split(b"\r\n"):
                    name, colon, value = line.partition(b":")
                    if colon:
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
                answer = b"ok"
                if path == b"/hook":
                    record(headers, body)
                elif path == b"/_stats":
                    answer = json.dumps({**tally, "distinct": len(keys)}).encode()
                elif path == b"/_reset":
                    reset()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    reset()
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


def receiver_main(port: int, secret: str) -> None:
    """Entry point of the receiver's process."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_receive(port, secret.encode()))
    else:
        uvloop.run(_receive(port, secret.encode()))


@dataclass(frozen=True)
class Received:
    requests: int
    distinct: int
    bad_signatures: int
    first: float | None
    last: float | None


class Receiver:
    """The receiver's process; its URL stays the same for the whole run (it is in the
    pack's rule), and ``reset`` forgets the keys between modes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._base = f"http://127.0.0.1:{self.port}"
        context = multiprocessing.get_context("spawn")  # no inherited threads or pools
        self.process = context.Process(
            target=receiver_main, args=(self.port, SECRET), name="bench-receiver", daemon=True
        )
        self.process.start()
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                self.stats()
                return
            if time.monotonic() > deadline or not self.process.is_alive():
                self.stop()
                raise RuntimeError("the webhook receiver did not start")
            time.sleep(0.05)

    def stats(self) -> Received:
        body = httpx.post(f"{self._base}/_stats", timeout=10).json()
        return Received(
            body["requests"], body["distinct"], body["bad_signatures"], body["first"], body["last"]
        )

    def reset(self) -> None:
        httpx.post(f"{self._base}/_reset", timeout=10)

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid or 0)

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (Linux; None elsewhere or when
    the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_cpu_seconds(pid: int) -> float:
    fields = _proc_stat(pid)
    if fields is None:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(groups: set[int]) -> float:
    """User + system CPU time of the live processes in these process groups (a Celery
    worker's supervisor, main process and pool children)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(entry.name)
            if fields is not None and int(fields[2]) in groups:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class RedisServer:
    """A private ``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, folder: Path) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        no_persistence = ["--save", "", "--appendonly", "no", "--dir", str(folder)]
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", *no_persistence],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, RuntimeError):
                if self.command(b"PING") == b"+PONG":
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def command(self, *words: bytes) -> bytes:
        """One command, its one-line reply (enough for PING and LLEN)."""
        request = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(request)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise RuntimeError("redis closed the connection")
                reply += chunk
        return reply.strip()

    def queued(self) -> int:
        """Tasks waiting in Celery's default queue (priority 0, the only one used)."""
        return int(self.command(b"LLEN", b"celery")[1:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Worker:
    """``tessera worker`` in its own process group (its supervisor, Celery's main process
    and pool children), as an operator starts it."""

    def __init__(self, folder: Path, concurrency: int, number: int) -> None:
        self.log = folder / f"worker-{number}.log"
        self._log_file = self.log.open("w")
        # The worker makes a folder for its beat schedule and leaves it behind: keep it
        # in ours, which goes at the end.
        scratch = folder / "tmp"
        scratch.mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "worker", "--concurrency", str(concurrency)],
            cwd=folder,
            env={**_env(), "TMPDIR": str(scratch)},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> str:
        """SIGTERM to the supervisor (it passes it on: Celery finishes its tasks and puts
        the prefetched ones back), then SIGKILL for whatever is left; the output."""
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log_file.close()
        return self.log.read_text(encoding="utf-8", errors="replace")


class Server:
    """``tessera serve`` in the instance folder (one process)."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / "serve.log"
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--port", str(self.port)],
            cwd=folder,
            env=_env(),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tessera serve exited:\n{self.stop()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"tessera serve did not answer /healthz:\n{self.stop()[-3000:]}")

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return self.log.read_text(encoding="utf-8", errors="replace")


# -- the instance and its database ----------------------------------------------------------


@dataclass
class Instance:
    folder: Path
    database_url: str
    """As Tessera takes it (``postgresql+psycopg://…`` or ``sqlite:///…``)."""
    receiver_url: str
    token: str = ""
    """An API token of the admin user ``bench``, made by ``migrate``."""

    def write_pack(self) -> None:
        pack = self.folder / "packs" / PACK
        (pack / "entities").mkdir(parents=True)
        (pack / "rules").mkdir()
        (pack / "module.yaml").write_text(MODULE_YAML, encoding="utf-8")
        (pack / "entities" / f"{ENTITY}.yaml").write_text(ENTITY_YAML, encoding="utf-8")
        rules = RULES_YAML.replace("RECEIVER_URL", self.receiver_url)
        (pack / "rules" / f"{ENTITY}.yaml").write_text(rules, encoding="utf-8")

    def configure(self, *, broker_url: str | None, lease: float, sweep: float) -> Settings:
        from runtime.settings import Settings

        config: dict[str, Any] = {
            "database_url": self.database_url,
            "modules": [PACK],
            "module_paths": ["./packs"],
            "secret_key": SECRET,
            "outbox": {"lease_seconds": lease, "sweep_seconds": sweep},
        }
        if broker_url:
            config["broker_url"] = broker_url
        path = self.folder / "tessera.yaml"
        path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
        return Settings.load(path)

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "cli.main", "migrate"],
            cwd=self.folder,
            env=_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.token = bench_token(self.folder, _env())


def signups(first: int, count: int) -> list[dict[str, Any]]:
    plans = ("free", "team", "business")
    return [
        {
            "name": f"Signup {n}",
            "email": f"signup.{n}@example.com",
            "plan": plans[n % 3],
            "seats": 1 + n % 50,
        }
        for n in range(first, first + count)
    ]


def fill_in_process(settings: Settings, first: int, count: int) -> float:
    """Create ``count`` records through the store, 1,000 per transaction like ``_bulk``:
    the rule adds each record's event to the outbox in that transaction. No broker is told."""
    from engine import EngineModel, WriteContext, open_database
    from runtime.app import load_definitions

    async def fill() -> None:
        project = load_definitions(settings)
        store = EngineModel.for_url(project, settings.database_url).store(PACK, ENTITY)
        database = await open_database(settings.database_url, pool_size=2)
        try:
            for start in range(first, first + count, BATCH):
                ctx = WriteContext()
                async with database.transaction() as conn:
                    for item in signups(start, min(BATCH, first + count - start)):
                        await store.create(conn, item, ctx)
                if len(ctx.events) != min(BATCH, first + count - start):
                    raise RuntimeError(f"{len(ctx.events)} events for a batch of creates")
        finally:
            await database.close()

    started = time.perf_counter()
    asyncio.run(fill())
    return time.perf_counter() - started


def fill_through_server(instance: Instance, redis: RedisServer, first: int, count: int) -> float:
    """``POST _bulk`` to ``tessera serve`` with a broker: each commit publishes its events'
    tasks. Returns once every task is in Redis and the server has stopped."""
    started = time.perf_counter()
    server = Server(instance.folder)
    try:
        with httpx.Client(
            base_url=server.base, headers=bearer(instance.token), timeout=300
        ) as client:
            for start in range(first, first + count, BATCH):
                batch = signups(start, min(BATCH, first + count - start))
                response = client.post(f"/api/v1/{PACK}/{ENTITY}/_bulk", json=batch)
                if response.status_code != 201:
                    raise RuntimeError(f"_bulk: {response.status_code} {response.text[:500]}")
        deadline = time.monotonic() + 120
        while redis.queued() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {redis.queued()} of {count} tasks reached Redis")
            time.sleep(0.05)
    finally:
        output = server.stop()
    if "Traceback" in output:
        raise RuntimeError(f"tessera serve printed a traceback:\n{output[-3000:]}")
    return time.perf_counter() - started


class OutboxStatus:
    """Counts by status, straight from ``tessera_outbox`` over one kept connection."""

    def __init__(self, database_url: str) -> None:
        if database_url.startswith("sqlite:///"):
            self._sqlite: sqlite3.Connection | None = sqlite3.connect(
                database_url.removeprefix("sqlite:///"), isolation_level=None
            )
            self._pg: psycopg.Connection[Any] | None = None
        else:
            self._sqlite = None
            dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
            self._pg = psycopg.connect(dsn, autocommit=True)

    def _run(self, sql: str) -> list[Any]:
        if self._sqlite is not None:
            return self._sqlite.execute(sql).fetchall()
        assert self._pg is not None
        cursor = self._pg.execute(sql.encode())
        return cursor.fetchall() if cursor.description else []

    def counts(self) -> Counter[str]:
        rows = self._run("SELECT status, count(*) FROM tessera_outbox GROUP BY status")
        return Counter({str(status): int(n) for status, n in rows})

    def empty(self) -> None:
        """Between modes (each has its own Redis and deliverers, so nothing of an earlier
        mode is left to act on the new events)."""
        self._run("DELETE FROM tessera_outbox")

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()


# -- one mode -------------------------------------------------------------------------------


@dataclass
class Run:
    mode: str
    deliverers: str
    events: int
    fill_seconds: float
    seconds: float = float("nan")
    finished: bool = False
    received: Received | None = None
    outbox: Counter[str] = field(default_factory=Counter)
    started_at: float = float("nan")
    """``time.time()`` when the deliverers were started."""
    in_time: Received | None = None
    """The receiver when the clock stopped; ``received`` is the same after the deliverers
    stopped (a late duplicate, or what they finished after a timeout)."""
    receiver_cpu: float = float("nan")
    """Share of one core the receiver used over the run."""
    deliverer_cpu: float = float("nan")
    """CPU seconds of the deliverers per event, from the first delivery seen on (start-up
    left out)."""
    tasks: Counter[str] = field(default_factory=Counter)
    """Outcomes of ``tessera.deliver`` tasks, from the workers' logs."""
    sweeps: list[int] = field(default_factory=list)
    """Deliver tasks queued by each ``tessera.sweep``, from the workers' logs."""
    left_in_queue: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.events - (self.received.distinct if self.received else 0)

    @property
    def duplicated(self) -> int:
        return self.received.requests - self.received.distinct if self.received else 0

    @property
    def steady_seconds(self) -> float:
        if self.in_time and self.in_time.first and self.in_time.last:
            return self.in_time.last - self.in_time.first
        return float("nan")

    @property
    def steady_rate(self) -> float:
        return (self.in_time.distinct - 1) / self.steady_seconds if self.in_time else float("nan")

    @property
    def to_first_seconds(self) -> float:
        if self.in_time and self.in_time.first:
            return self.in_time.first - self.started_at
        return float("nan")

    def judge(self) -> None:
        if not self.finished:
            self.problems.append(
                f"not all delivered after {self.seconds:.0f} s; outbox: {dict(self.outbox)}"
            )
        if self.lost:
            waiting = self.events - self.outbox["delivered"]
            self.problems.append(
                f"{self.lost:,} event(s) never reached the receiver: {waiting:,} not delivered "
                f"by the end, {self.lost - waiting:,} marked delivered all the same"
            )
        if self.duplicated:
            where = self.problems if self.mode in CELERY_MODES else self.notes
            where.append(f"{self.duplicated} event(s) were received more than once")
        if self.outbox != Counter({"delivered": self.events}):
            self.problems.append(f"outbox at the end: {dict(self.outbox)}")
        if self.received and self.received.bad_signatures:
            self.problems.append(f"{self.received.bad_signatures} request(s) badly signed")


@dataclass
class Deliverers:
    """What the wait needs to know of the deliverers being measured."""

    cpu_seconds: Callable[[], float]
    alive: Callable[[], bool]


def wait_until_delivered(
    run: Run,
    status: OutboxStatus,
    receiver: Receiver,
    deliverers: Deliverers,
    started: float,
    timeout: float,
) -> None:
    """Poll until the outbox holds no event still to send and the receiver has every key;
    sets ``seconds`` (since ``started``, a ``time.perf_counter()``), ``finished`` and the
    deliverers' CPU per event after the first delivery."""
    deadline = started + timeout
    settled_at: float | None = None
    first_seen: tuple[float, int] | None = None  # (deliverers' CPU, events delivered)
    counts: Counter[str] = Counter()
    while time.perf_counter() < deadline:
        counts = status.counts()
        if first_seen is None and counts["delivered"]:
            first_seen = deliverers.cpu_seconds(), counts["delivered"]
        if counts["delivered"] + counts["failed"] >= run.events:
            seconds = time.perf_counter() - started
            if receiver.stats().distinct >= run.events:
                run.seconds, run.finished = seconds, True
                break
            # The outbox marks an event delivered only after the receiver's 200: a key
            # missing now is lost, unless its request is still being counted.
            settled_at = settled_at or seconds
            if seconds - settled_at > 5:
                run.seconds, run.finished = settled_at, True
                break
        if not deliverers.alive():
            run.problems.append("the deliverers stopped before the end")
            break
        time.sleep(POLL_SECONDS)
    if not run.finished:
        run.seconds = time.perf_counter() - started
    run.in_time = receiver.stats()
    if first_seen is not None and counts["delivered"] > first_seen[1]:
        cpu = deliverers.cpu_seconds() - first_seen[0]
        run.deliverer_cpu = cpu / (counts["delivered"] - first_seen[1])


def run_celery(
    mode: str,
    instance: Instance,
    receiver: Receiver,
    status: OutboxStatus,
    first: int,
    args: argparse.Namespace,
) -> Run:
    lease, sweep = (args.lease_seconds, args.sweep_seconds) if mode == "sweep" else DEFAULTS
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as redis_folder:
        redis = RedisServer(Path(redis_folder))
        workers: list[Worker] = []
        try:
            settings = instance.configure(broker_url=redis.url, lease=lease, sweep=sweep)
            if mode == "published":
                fill_seconds = fill_through_server(instance, redis, first, args.events)
            else:
                fill_seconds = fill_in_process(settings, first, args.events)
            run = Run(mode, f"{args.workers} x {args.concurrency}", args.events, fill_seconds)
            run.notes.append(
                f"filled in {fill_seconds:.1f} s; {redis.queued():,} tasks in Redis at the "
                f"start; lease {lease:g} s, sweep every {sweep:g} s"
            )
            receiver.reset()
            receiver_cpu = receiver.cpu_seconds()
            run.started_at, started = time.time(), time.perf_counter()
            for number in range(args.workers):
                workers.append(Worker(instance.folder, args.concurrency, number))
            watch = Deliverers(
                cpu_seconds=lambda: group_cpu_seconds({w.process.pid for w in workers}),
                alive=lambda: all(w.process.poll() is None for w in workers),
            )
            wait_until_delivered(run, status, receiver, watch, started, args.timeout)
            run.receiver_cpu = (receiver.cpu_seconds() - receiver_cpu) / run.seconds
            time.sleep(args.settle)  # a late duplicate would arrive now
            run.left_in_queue = redis.queued()
        finally:
            outputs = [worker.stop() for worker in workers]
            redis.stop()
    for output in outputs:
        run.tasks.update(_DELIVERED.findall(output))
        run.sweeps += [int(n) for n in _SWEPT.findall(output)]
        if "Traceback" in output:
            run.notes.append("a worker printed a traceback:\n" + output[-3000:])
    run.received = receiver.stats()
    run.outbox = status.counts()
    return run


def run_in_process(
    instance: Instance,
    receiver: Receiver,
    status: OutboxStatus,
    first: int,
    args: argparse.Namespace,
) -> Run:
    from runtime.delivery import make_deliverer
    from runtime.delivery.dispatch import MAX_IN_FLIGHT, InProcessDispatcher

    lease, sweep = DEFAULTS
    settings = instance.configure(broker_url=None, lease=lease, sweep=sweep)
    fill_seconds = fill_in_process(settings, first, args.events)
    run = Run("in-process", f"1 x {MAX_IN_FLIGHT}", args.events, fill_seconds)
    run.notes.append(
        f"filled in {fill_seconds:.1f} s; lease {lease:g} s, sweep every {sweep:g} s; "
        "delivered by a thread of the benchmark process"
    )
    stop = threading.Event()
    failure: list[BaseException] = []

    async def deliver() -> None:
        from engine import open_database

        database = await open_database(settings.database_url, pool_size=settings.pool_size)
        dispatcher = InProcessDispatcher(
            make_deliverer(settings, database), sweep_seconds=settings.outbox.sweep_seconds
        )
        try:
            await dispatcher.start()
            dispatcher.notify([0])  # as a commit does: look for due events now
            while not stop.is_set():
                await asyncio.sleep(0.05)
        finally:
            await dispatcher.stop()
            await database.close()

    def thread_main() -> None:
        try:
            run_async(deliver())
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failure.append(exc)

    receiver.reset()
    receiver_cpu = receiver.cpu_seconds()
    run.started_at, started = time.time(), time.perf_counter()
    thread = threading.Thread(target=thread_main, name="bench-dispatcher")
    thread.start()
    # The whole process: the dispatcher's thread and this one, which only polls.
    watch = Deliverers(cpu_seconds=time.process_time, alive=thread.is_alive)
    try:
        wait_until_delivered(run, status, receiver, watch, started, args.timeout)
        run.receiver_cpu = (receiver.cpu_seconds() - receiver_cpu) / run.seconds
        time.sleep(args.settle)
    finally:
        stop.set()
        thread.join(60)
    if failure:
        run.problems.append(f"the dispatcher failed: {failure[0]!r}")
    run.received = receiver.stats()
    run.outbox = status.counts()
    return run


def run_async(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# -- databases ------------------------------------------------------------------------------


@contextlib.contextmanager
def postgresql_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A fresh database on ``admin_url``'s server, dropped at the end; its URL for Tessera
    and the server's version."""
    name = f"tessera_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        row = admin.execute("SHOW server_version").fetchone()
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    assert row is not None
    try:
        dsn = admin_url.rsplit("/", 1)[0] + f"/{name}"
        yield dsn.replace("postgresql://", "postgresql+psycopg://", 1), f"PostgreSQL {row[0]}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@contextlib.contextmanager
def sqlite_database(folder: Path) -> Iterator[tuple[str, str]]:
    yield f"sqlite:///{folder / 'bench.db'}", f"SQLite {sqlite3.sqlite_version}"


# -- report ---------------------------------------------------------------------------------


def _number(value: float, digits: int = 0) -> str:
    return "-" if value != value else f"{value:,.{digits}f}"  # NaN: not measured


def table(rows: list[list[str]]) -> str:
    """Fixed-width columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def report(runs: list[Run]) -> str:
    rows = [
        [
            "mode",
            "workers x conc",
            "events",
            "seconds",
            "events/s",
            "to 1st s",
            "1st-last s",
            "events/s",
            "received",
            "distinct",
            "lost",
            "duplicated",
            "outbox delivered",
            "receiver CPU",
            "deliverer CPU ms/event",
        ]
    ]
    for run in runs:
        received = run.received or Received(0, 0, 0, None, None)
        # After a timeout: how many got through by then, over the time it had.
        timed_out = "" if run.finished else "*"
        in_time = min(run.events, run.in_time.distinct if run.in_time else 0)
        rows.append(
            [
                run.mode,
                run.deliverers,
                f"{run.events:,}",
                _number(run.seconds, 2) + timed_out,
                _number(in_time / run.seconds) + timed_out,
                _number(run.to_first_seconds, 2),
                _number(run.steady_seconds, 2),
                _number(run.steady_rate),
                f"{received.requests:,}",
                f"{received.distinct:,}",
                f"{run.lost:,}",
                f"{run.duplicated:,}",
                f"{run.outbox['delivered']:,}",
                f"{run.receiver_cpu:.0%}" if run.receiver_cpu == run.receiver_cpu else "-",
                _number(run.deliverer_cpu * 1000, 2),
            ]
        )
    return table(rows)


def notes(runs: list[Run]) -> list[str]:
    lines = []
    for run in runs:
        details = list(run.notes)
        if run.tasks:
            outcomes = ", ".join(f"{n:,} {outcome}" for outcome, n in run.tasks.most_common())
            details.append(
                f"deliver tasks run: {sum(run.tasks.values()):,} ({outcomes}); "
                f"{len(run.sweeps):,} sweeps queued {sum(run.sweeps):,} deliver tasks; "
                f"{run.left_in_queue:,} still queued when the workers stopped"
            )
        lines += [f"- {run.mode}: {d}" for d in details]
    return lines


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000, help="events per mode")
    parser.add_argument("--workers", type=int, default=2, help="tessera worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="each worker's --concurrency")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, of: {', '.join(MODES)}"
    )
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--database-url",
        default=PG_ADMIN,
        help="PostgreSQL server to create the benchmark's database on (default: BENCH_PG or "
        "the test database on 127.0.0.1)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=1.0,
        help="outbox.lease_seconds of the sweep mode: the sweep only hands out events due for "
        "longer than a lease (the other modes use Tessera's default, 60)",
    )
    parser.add_argument(
        "--sweep-seconds",
        type=float,
        default=DEFAULTS[1],
        help="outbox.sweep_seconds of the sweep mode (default: Tessera's)",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mode")
    parser.add_argument(
        "--settle",
        type=float,
        default=2.0,
        help="seconds to keep the deliverers running after the last event, to catch late "
        "duplicates (not timed)",
    )
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes takes some of: {', '.join(MODES)}")
    if args.events < 1:
        parser.error("--events must be at least 1")

    runs: list[Run] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-outbox-")))
        if args.database == "sqlite":
            database_url, server = stack.enter_context(sqlite_database(folder))
        else:
            database_url, server = stack.enter_context(postgresql_database(args.database_url))
        receiver = Receiver()
        stack.callback(receiver.stop)
        instance = Instance(folder, database_url, receiver.url)
        instance.write_pack()
        instance.configure(broker_url=None, lease=DEFAULTS[0], sweep=DEFAULTS[1])
        instance.migrate()
        status = OutboxStatus(database_url)
        stack.callback(status.close)
        for number, mode in enumerate(modes):
            status.empty()
            first = number * args.events
            print(f"{mode}: filling the outbox with {args.events:,} events ...", flush=True)
            if mode in CELERY_MODES:
                run = run_celery(mode, instance, receiver, status, first, args)
            else:
                run = run_in_process(instance, receiver, status, first, args)
            run.judge()
            runs.append(run)
            print(
                f"{mode}: {run.events:,} events in {run.seconds:.2f} s "
                f"({run.events / run.seconds:,.0f} events/s)",
                flush=True,
            )

    print(
        f"\n{server}, Redis {redis_version()}, {os.cpu_count()} cores ({platform.machine()}), "
        f"Python {platform.python_version()}; webhook receiver in its own process\n"
    )
    print(report(runs))
    print(
        "\nseconds: from starting the deliverers until the outbox shows every event "
        "delivered and the receiver has every key (start-up included); to 1st: until the "
        "first webhook arrived; 1st-last: from the first to the last webhook received, and "
        "the rate over that span. lost = events - distinct keys received; duplicated = "
        "requests - distinct keys. receiver CPU: its share of one core over the run. "
        "deliverer CPU: of the worker processes' groups (in-process: of the benchmark "
        "process), per event delivered after the first one seen (start-up left out); "
        "PostgreSQL and Redis not included. *: timed out; events/s is then the events "
        "received by the timeout over that time. received, distinct, lost, duplicated and "
        "outbox delivered are counted after the deliverers stopped.\n"
    )
    print("\n".join(notes(runs)))
    problems = [f"{run.mode}: {p}" for run in runs for p in run.problems]
    if problems:
        print("\nProblems:")
        for problem in problems:
            print(f"- {problem}")
    return 1 if problems else 0


def redis_version() -> str:
    executable = shutil.which("redis-server")
    if executable is None:
        return "?"
    output = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"v=(\S+)", output)
    return found.group(1) if found else "?"


if __name__ == "__main__":
    sys.exit(main())
