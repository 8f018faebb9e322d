"""Throughput of the generated API against two hand-written baselines (issue 2, item 8).

Same PostgreSQL data (100,000 contacts), same uvicorn settings (1 worker, uvloop, httptools,
no access log), same pool size (10), same URLs and JSON shape; wrk on loopback, 2 threads,
32 connections, 2 s warm-up then 10 s measured, for:

- W1  GET one contact by random id
- W2  GET a page of 50 filtered by status, sorted by last_name, random page of the first 100
- W3  POST one new contact

Run: ``.venv/bin/python -m bench.api_throughput`` (``--duration``/``--warmup`` to shorten).
Prints a markdown table with ratios; raw numbers go to bench/results/api_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import psycopg
import yaml

from bench._auth import bearer, bench_token

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
DATABASE = "tessera_bench"
ROWS = 100_000
ACCOUNTS = 100
PORT = 8765
STATUSES = ("lead", "prospect", "customer", "churned", "partner")
FIRST = (
    "Anna",
    "Jürgen",
    "Zoë",
    "Mateo",
    "Aiko",
    "Olu",
    "Ingrid",
    "Chloé",
    "Ravi",
    "Marta",
    "Björn",
    "Nadia",
    "Pierre",
    "Sofía",
    "Tomasz",
    "Yuki",
    "Emma",
    "Liam",
    "Noah",
    "Léa",
)
LAST = (
    "Müller",
    "García",
    "O'Brien",
    "Nguyen",
    "Smith",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Søren",
    "Yılmaz",  # noqa: RUF001 - a Turkish name, spelt right
    "Novák",
    "Silva",
    "Tanaka",
    "Ivanova",
    "Schmidt",
    "López",
    "Martin",
    "Jansen",
    "Andersson",
    "Papadopoulos",
    "Kim",
    "Brown",
    "Costa",
    "Horvath",
    "Weiß",
)

AUTH = """
wrk.headers["Authorization"] = "Bearer %(token)s"
"""
W1 = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  return wrk.format("GET", "/api/v1/benchcrm/contact/" .. math.random(1, %(rows)d))
end
"""
W2 = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local statuses = {"lead", "prospect", "customer", "churned", "partner"}
request = function()
  local status = statuses[math.random(1, 5)]
  local offset = 50 * math.random(0, 99)
  return wrk.format("GET", "/api/v1/benchcrm/contact?status=" .. status ..
    "&sort=last_name&limit=50&offset=" .. offset)
end
"""
W3 = """
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
local statuses = {"lead", "prospect", "customer", "churned", "partner"}
local n = 0
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local tag = math.random(1, 1000000000) .. "-" .. n
  local body = '{"first_name": "Bench", "last_name": "Load ' .. tag .. '", ' ..
    '"email": "bench.' .. tag .. '@example.com", "phone": "+1 555 0100", ' ..
    '"status": "' .. statuses[math.random(1, 5)] .. '", "amount": "' ..
    math.random(0, 99999) .. '.50", "account": "' .. math.random(1, %(accounts)d) .. '"}'
  return wrk.format("POST", "/api/v1/benchcrm/contact", nil, body)
end
"""


@dataclass
class Measurement:
    app: str
    workload: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    note: str = ""


def _database_url(driver: str = "postgresql") -> str:
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql", driver, 1) + f"/{DATABASE}"


def prepare_database(instance: Path) -> str:
    """Create, migrate and fill the database; an API token of the admin user ``bench``."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{DATABASE}"')
    config = {
        "database_url": _database_url("postgresql+psycopg"),
        "modules": ["benchcrm"],
        "module_paths": [str(REPO / "bench" / "packs")],
    }
    (instance / "tessera.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        cwd=instance,
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    token = bench_token(instance, env)
    asyncio.run(_load_rows())
    return token


async def _load_rows() -> None:
    rng = random.Random(20261122)
    now = dt.datetime.now(dt.UTC)
    conn = await asyncpg.connect(_database_url())
    try:
        await conn.copy_records_to_table(
            "benchcrm_account",
            columns=["name", "created_at", "updated_at", "version"],
            records=[(f"Account {i:03d}", now, now, 1) for i in range(1, ACCOUNTS + 1)],
        )
        records = []
        for i in range(1, ROWS + 1):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            records.append(
                (
                    first,
                    f"{last} {rng.randint(1, 999)}",
                    f"{first}.{i}@example.com".lower(),
                    f"+49 30 {rng.randint(1000000, 9999999)}",
                    rng.choice(STATUSES),
                    Decimal(rng.randint(0, 10_000_000)) / 100,
                    rng.randint(1, ACCOUNTS),
                    now,
                    now,
                    1,
                )
            )
        await conn.copy_records_to_table(
            "benchcrm_contact",
            columns=[
                "first_name",
                "last_name",
                "email",
                "phone",
                "status",
                "amount",
                "account",
                "created_at",
                "updated_at",
                "version",
            ],
            records=records,
        )
        # Freeze and analyse now, so autovacuum does not wake up during the first app's run.
        await conn.execute("VACUUM (FREEZE, ANALYZE)")
    finally:
        await conn.close()


def _reset_rows() -> None:
    """Remove what W3 inserted, so every app sees the same table."""
    with psycopg.connect(_database_url(), autocommit=True) as conn:
        conn.execute("DELETE FROM benchcrm_contact WHERE id > %s", (ROWS,))
        conn.execute("VACUUM ANALYZE benchcrm_contact")


APPS: dict[str, list[str]] = {
    "tessera (generated)": ["runtime.app:create_app", "--factory"],
    "typical FastAPI + ORM": ["bench.baselines.typical_orm_app:app"],
    "bare ASGI + asyncpg": ["bench.baselines.bare_asgi_app:app"],
}


def _start(target: list[str], instance: Path, token: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TESSERA_CONFIG": str(instance / "tessera.yaml"),
        "BENCH_DSN": _database_url(),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        *target,
        "--workers",
        "1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--host",
        "127.0.0.1",
        "--port",
        str(PORT),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.communicate()[0][-2000:])
        try:
            url = f"http://127.0.0.1:{PORT}/api/v1/benchcrm/contact/1"
            if httpx.get(url, headers=bearer(token)).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("server did not answer within 60 s")


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def _wrk(script: Path, seconds: int, *, latency: bool) -> str:
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{PORT}"]
    if latency:
        command.insert(1, "--latency")
    return subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout


def measure(app: str, workload: str, script: Path, *, warmup: int, duration: int) -> Measurement:
    _wrk(script, warmup, latency=False)
    output = _wrk(script, duration, latency=True)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket:
        errors += sum(int(g) for g in socket.groups())
    return Measurement(
        app,
        workload,
        float(rps.group(1)) if rps else 0.0,
        _latency(output, "50"),
        _latency(output, "99"),
        errors,
    )


TARGETS = {  # workload: (min ratio vs typical, min ratio vs bare)
    "W1": (3.0, 0.5),
    "W2": (1.5, 0.85),
    "W3": (3.0, 0.5),
}


def report(results: list[Measurement]) -> str:
    by = {(m.app, m.workload): m for m in results}
    lines = [
        "| workload | app | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for workload in ("W1", "W2", "W3"):
        for app in APPS:
            m = by.get((app, workload))
            if m is None:
                continue
            note = f" {m.note}" if m.note else ""
            lines.append(
                f"| {workload} | {app}{note} | {m.requests_per_s:,.0f} | "
                f"{m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.errors} |"
            )
    lines += [
        "",
        "| workload | tessera / typical | target | tessera / bare | target | met |",
        "|---|---:|---:|---:|---:|---|",
    ]
    names = list(APPS)
    for workload, (vs_typical, vs_bare) in TARGETS.items():
        ours, typical, bare = (by.get((name, workload)) for name in names)
        if not (ours and typical and bare) or not (typical.requests_per_s and bare.requests_per_s):
            continue
        r_typical = ours.requests_per_s / typical.requests_per_s
        r_bare = ours.requests_per_s / bare.requests_per_s
        met = r_typical >= vs_typical and r_bare >= vs_bare and ours.errors == 0
        lines.append(
            f"| {workload} | {r_typical:.2f}x | {vs_typical}x | {r_bare:.2f}x | "
            f"{vs_bare}x | {'yes' if met else 'NO'} |"
        )
    return "\n".join(lines)


def _run_one(
    app: str,
    target: list[str],
    workload: str,
    script: Path,
    scratch: Path,
    token: str,
    args: argparse.Namespace,
) -> Measurement:
    try:
        process = _start(target, scratch, token)
    except RuntimeError as exc:
        print(f"{app}: failed to start: {exc}", file=sys.stderr)
        return Measurement(app, workload, 0, 0, 0, 0, "failed to start")
    try:
        m = measure(app, workload, script, warmup=args.warmup, duration=args.duration)
    finally:
        _stop(process)
        if workload == "W3":
            _reset_rows()
    print(
        f"{workload} {app}: {m.requests_per_s:,.0f} req/s, p50 {m.p50_ms:.2f} ms, "
        f"p99 {m.p99_ms:.2f} ms, errors {m.errors}",
        flush=True,
    )
    return m


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        print(f"loading {ROWS:,} contacts into PostgreSQL database {DATABASE} ...", flush=True)
        token = prepare_database(scratch)
        scripts = {}
        for name, source in (("W1", W1), ("W2", W2), ("W3", W3)):
            scripts[name] = scratch / f"{name}.lua"
            values = {"rows": ROWS, "accounts": ACCOUNTS, "token": token}
            scripts[name].write_text((AUTH + source) % values)
        results: list[Measurement] = []
        # Workload by workload, each app in turn with a fresh server, so that drift on the
        # machine (caches, background work) spreads over the apps instead of hitting one.
        for workload, script in scripts.items():
            for app, target in APPS.items():
                results.append(_run_one(app, target, workload, script, scratch, token, args))
    table = report(results)
    print()
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "api_throughput.json").write_text(
        json.dumps(
            {
                "when": dt.datetime.now(dt.UTC).isoformat(),
                "duration_s": args.duration,
                "results": [asdict(m) for m in results],
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
