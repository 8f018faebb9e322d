"""Submit throughput of a business document against creating the same record without a
lifecycle, in the same run (issue 16, item 8).

One pack, ``docbench``, with two entities of the same fields (title, needed_by,
budget_code, note, a computed total and 10 line items of item, quantity, rate and a
computed amount):

- ``request`` (``document: true``): two asserts over its lines ``on: [submit]`` (every
  line's quantity is positive; every line has a rate) and one mapping action ``on:
  [submit]``: a ``create`` of an ``order`` whose 10 ``items`` are mapped from the request's
  lines (``lines: {from, to, map}``);
- ``plain``: no lifecycle and no rules.

Workload A is ``POST /api/v1/docbench/request/{id}/_submit`` (with ``If-Match``) of a fresh
10-line draft: each round's drafts are created beforehand with ``_bulk``, outside the timed
part. A submit writes the status, reads the lines, writes an audit row, evaluates the two
asserts and creates the order with its 10 lines and its audit row, in one transaction.
Baseline B is ``POST /api/v1/docbench/plain`` of the same 10-line body: one record, 10
lines and its audit row.

For each backend a real ``tessera serve`` (one process, on a free loopback port) serves a
freshly migrated database. After a warm-up, rounds of ``--requests`` requests of A and B
alternate in ABBA order, so that drift over the run falls on both alike. Every submit must
answer 200 and every create 201; afterwards the rows are counted in the database (every
request submitted, one order and 10 order lines per submit, every plain record stored)
and a sample of orders is checked through the API against its request. Before the load, a
draft with a line without a rate checks that the submit's asserts are enforced (422, still
a draft). The CPU time of the server process is read from /proc around each round.

On PostgreSQL the database is ``ANALYZE``d before each round's clock starts (after its
drafts are made), as autovacuum would in production: the development server runs with
``autovacuum = off``, and without fresh statistics the plan PostgreSQL caches for the
statement that reads a document's lines (``_parent = ANY($1)``), made while the table was
small, stays a sequential scan as the table grows, and the submits slow down round after
round (0.40x instead of about 0.75x in a run of 6 rounds). ``--no-analyze`` shows it.

Target (issue 16): submit throughput >= 0.6x the create's (median of the rounds), on every
backend measured. Exits non-zero if it is missed or if any check fails.

Run: ``.venv/bin/python -m bench.document_submit`` (``--backends postgresql`` to skip
SQLite). Needs PostgreSQL (``BENCH_PG``, default the ``test`` database on 127.0.0.1); the
benchmark creates and drops its own ``tessera_bench_<random>`` database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg

from bench._auth import bearer, bench_token
from bench._harness import (
    Client,
    Round,
    Server,
    env,
    migrate,
    percentile,
    postgres_database,
    round_order,
    run_async,
    run_round,
)

if TYPE_CHECKING:
    from collections.abc import Callable

PACK = "docbench"
SUBMIT, CREATE = "submit", "create"
NAMES = (SUBMIT, CREATE)
EXPECTED = {SUBMIT: 200, CREATE: 201}
TARGET = 0.6
LINES = 10
BULK = 250
"""Drafts per ``_bulk`` request when preparing a round (10 lines each: well under 1 MiB)."""

MODULE_YAML = f'name: {PACK}\nversion: "1.0.0"\n'
HEADER_FIELDS = """\
title: title
fields:
  title:       {type: string, required: true, max_length: 120}
  needed_by:   {type: date}
  budget_code: {type: string, max_length: 20}
  note:        {type: text}
  total:       {type: decimal, precision: 14, scale: 2, computed: "lines | sum(attribute='amount')"}
"""
LINE_YAML = """\
fields:
  item:     {type: string, required: true, max_length: 120}
  quantity: {type: integer, required: true}
  rate:     {type: decimal, precision: 12, scale: 2}
  amount:   {type: decimal, precision: 14, scale: 2, computed: "quantity * rate"}
"""
ENTITIES = {
    "request": "document: true\n"
    + HEADER_FIELDS
    + "  lines:       {type: children, entity: request_line}\n",
    "request_line": LINE_YAML,
    "plain": HEADER_FIELDS + "  lines:       {type: children, entity: plain_line}\n",
    "plain_line": LINE_YAML,
    "order": """\
fields:
  request: {type: reference, to: request, required: true}
  items:   {type: children, entity: order_line}
""",
    "order_line": """\
fields:
  item:     {type: string, required: true, max_length: 120}
  quantity: {type: integer, required: true}
  rate:     {type: decimal, precision: 12, scale: 2}
""",
}
RULES_YAML = """\
- name: quantities_positive
  on: [submit]
  assert: "lines | selectattr('quantity', 'le', 0) | list | length == 0"
  field: lines
  message: every line needs a quantity of at least 1
- name: lines_priced
  on: [submit]
  assert: "lines | selectattr('rate', 'none') | list | length == 0"
  field: lines
  message: every line needs a rate
- name: submit_raises_an_order
  on: [submit]
  actions:
    - create:
        entity: order
        values: {request: "{{ id }}"}
        lines:
          from: lines
          to: items
          map:
            item: "{{ line.item }}"
            quantity: "{{ line.quantity }}"
            rate: "{{ line.rate }}"
"""
ITEMS = ("laptop", "dock", "monitor", "keyboard", "mouse", "headset", "cable", "chair")


# -- data -----------------------------------------------------------------------------------


def document(rng: random.Random, serial: int) -> dict[str, Any]:
    """A 10-line request that keeps both asserts."""
    return {
        "title": f"Request {serial}",
        "needed_by": f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "budget_code": f"B-{serial % 1000:03d}",
        "note": "for the new office",
        "lines": [
            {
                "item": f"{rng.choice(ITEMS)} {i}",
                "quantity": rng.randint(1, 20),
                "rate": str(Decimal(rng.randint(100, 99_999)) / 100),
            }
            for i in range(LINES)
        ],
    }


def _request(method: str, path: str, port: int, token: str, payload: bytes, extra: str) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n{extra}Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def create_request(port: int, token: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    extra = "Content-Type: application/json\r\n"
    return _request("POST", f"/api/v1/{PACK}/plain", port, token, payload, extra)


def submit_request(port: int, token: str, record_id: str) -> bytes:
    path = f"/api/v1/{PACK}/request/{record_id}/_submit"
    return _request("POST", path, port, token, b"", 'If-Match: "1"\r\n')


def make_drafts(base: str, token: str, bodies: list[dict[str, Any]]) -> list[str]:
    """Untimed: the drafts of a round, created with ``_bulk``; their ids in order."""
    ids: list[str] = []
    with httpx.Client(base_url=base, headers=bearer(token), timeout=300) as http:
        for start in range(0, len(bodies), BULK):
            response = http.post(f"/api/v1/{PACK}/request/_bulk", json=bodies[start : start + BULK])
            if response.status_code != 201:
                raise RuntimeError(f"_bulk of drafts: {response.status_code} {response.text[:500]}")
            ids += [str(record["id"]) for record in response.json()["data"]]
    return ids


# -- load -----------------------------------------------------------------------------------


async def drive(
    base: str,
    port: int,
    token: str,
    server_cpu: Callable[[], float],
    analyze: Callable[[], None],
    args: argparse.Namespace,
) -> tuple[list[Round], float]:
    """The warm-up (not kept), then the measured rounds; and the share of a core this
    client used during the measured rounds. ``analyze`` runs before each round's clock."""
    rng = random.Random(20261206)
    serial = 0

    def bodies(n: int) -> list[dict[str, Any]]:
        nonlocal serial
        made = [document(rng, serial + i) for i in range(n)]
        serial += n
        return made

    def requests(name: str, shared: list[dict[str, Any]]) -> list[bytes]:
        if name == SUBMIT:
            return [submit_request(port, token, i) for i in make_drafts(base, token, shared)]
        return [create_request(port, token, body) for body in shared]

    async def play(name: str, requests: list[bytes]) -> Round:
        """One round over fresh keep-alive connections: making a round's drafts takes
        longer than the server keeps an idle connection open."""
        clients = [await Client.open(port) for _ in range(args.concurrency)]
        try:
            return await run_round(clients, name, requests, EXPECTED[name])
        finally:
            for client in clients:
                await client.close()

    warm = bodies(args.warmup)
    for name in NAMES:
        await play(name, requests(name, warm))
    rounds: list[Round] = []
    cpu = wall = 0.0
    for group in round_order(NAMES, args.rounds):
        shared = bodies(args.requests)  # the same documents for both workloads
        for name in group:
            prepared = requests(name, shared)  # drafts made here, before the clock
            analyze()
            cpu_started, wall_started = time.process_time(), time.perf_counter()
            server_started = server_cpu()
            last = await play(name, prepared)
            seconds = time.perf_counter() - wall_started
            last.server_cpu = (server_cpu() - server_started) / seconds
            cpu += time.process_time() - cpu_started
            wall += seconds
            rounds.append(last)
            print(
                f"  {name:<7} {last.requests_per_s:8,.0f} req/s, server CPU "
                f"{last.server_cpu:4.0%}"
                + (f"  unexpected: {dict(last.statuses)}" if last.first_error else ""),
                flush=True,
            )
    return rounds, cpu / wall


# -- instance and server --------------------------------------------------------------------


def write_instance(folder: Path, database_url: str, pool_size: int | None = None) -> None:
    pack = folder / "packs" / PACK
    (pack / "entities").mkdir(parents=True)
    (pack / "rules").mkdir()
    (pack / "module.yaml").write_text(MODULE_YAML, encoding="utf-8")
    for entity, text in ENTITIES.items():
        (pack / "entities" / f"{entity}.yaml").write_text(text, encoding="utf-8")
    (pack / "rules" / "request.yaml").write_text(RULES_YAML, encoding="utf-8")
    config = (
        f"database_url: {json.dumps(database_url)}\nmodules: [{PACK}]\nmodule_paths: [./packs]\n"
    )
    if pool_size is not None:
        config += f"pool_size: {pool_size}\n"
    (folder / "tessera.yaml").write_text(config, encoding="utf-8")


# -- checks ---------------------------------------------------------------------------------


def check_asserts_are_live(base: str, token: str) -> list[str]:
    """Untimed: a draft with a line without a rate is not submitted (422 naming the rule;
    still a draft, no order). It is deleted afterwards, so that the counts add up."""
    problems = []
    body = document(random.Random(1), 1)
    body["lines"][3]["rate"] = None
    with httpx.Client(base_url=f"{base}/api/v1/{PACK}", headers=bearer(token)) as http:
        draft = http.post("/request", json=body).json()["data"]
        response = http.post(f"/request/{draft['id']}/_submit")
        rules = [e.get("rule") for e in response.json().get("errors", [])]
        if response.status_code != 422 or rules != ["lines_priced"]:
            problems.append(f"submit asserts not enforced: {response.status_code} {rules}")
        stored = http.get(f"/request/{draft['id']}").json()["data"]
        if stored["docstatus"] != "draft" or http.get("/order").json()["data"]:
            problems.append("a refused submit left something behind")
        http.delete(f"/request/{draft['id']}")
    return problems


def check_orders(base: str, token: str, sample: int) -> list[str]:
    """The last ``sample`` orders carry their request's lines, in order."""
    with httpx.Client(base_url=f"{base}/api/v1/{PACK}", headers=bearer(token), timeout=60) as h:
        orders = h.get("/order", params={"sort": "-id", "limit": sample}).json()["data"]
        wrong = 0
        for order in orders:
            request = h.get(f"/request/{order['request']}").json()["data"]
            mapped = [(x["item"], x["quantity"], x["rate"]) for x in order["items"]]
            source = [(x["item"], x["quantity"], x["rate"]) for x in request["lines"]]
            if mapped != source or len(source) != LINES or request["docstatus"] != "submitted":
                wrong += 1
    if len(orders) != sample or wrong:
        return [f"orders: {wrong} of {len(orders)} do not match their request"]
    return []


def count_rows(count: Callable[[str], int]) -> dict[str, int]:
    return {
        "submitted requests": count(
            f"SELECT count(*) FROM {PACK}_request WHERE docstatus = 'submitted'"
        ),
        "orders": count(f"SELECT count(*) FROM {PACK}_order"),
        "order lines": count(f"SELECT count(*) FROM {PACK}_order_line"),
        "plain records": count(f"SELECT count(*) FROM {PACK}_plain"),
    }


# -- one backend ----------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    rounds: list[Round]
    rows: dict[str, int]
    client_cpu: float
    problems: list[str] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(r.requests_per_s for r in self.rounds if r.name == name)

    def ratio(self) -> float:
        return self.median(SUBMIT) / self.median(CREATE)

    def cpu_per_request(self, name: str) -> float:
        """The median of the rounds' server CPU seconds per request."""
        return statistics.median(
            r.server_cpu / r.requests_per_s for r in self.rounds if r.name == name
        )

    def cpu_ratio(self) -> float:
        """B's server CPU per request over A's: the ratio the server's own work allows,
        less disturbed than req/s by other load on the machine (it leaves out the
        database's work, which runs in other processes on PostgreSQL)."""
        return self.cpu_per_request(CREATE) / self.cpu_per_request(SUBMIT)

    @property
    def met(self) -> bool:
        return self.ratio() >= TARGET and not self.problems


def run_backend(
    backend: str,
    database_url: str,
    count: Callable[[str], int],
    args: argparse.Namespace,
    analyze: Callable[[], None] = lambda: None,
) -> BackendResult:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_instance(folder, database_url, args.pool_size)
        migrate(folder)
        token = bench_token(folder, env())
        server = Server(folder)
        problems: list[str] = []
        try:
            problems += check_asserts_are_live(server.base, token)
            rounds, client_cpu = run_async(
                drive(server.base, server.port, token, server.cpu_seconds, analyze, args)
            )
            problems += check_orders(server.base, token, min(args.requests, 200))
        finally:
            output = server.stop()
        if "Traceback" in output:
            problems.append("the server printed a traceback (see its output above)")
            print(output[-3000:], file=sys.stderr)
        rows = count_rows(count)
    n = args.warmup + args.rounds * args.requests
    expected = {
        "submitted requests": n,
        "orders": n,
        "order lines": n * LINES,
        "plain records": n,
    }
    for what, found in rows.items():
        if found != expected[what]:
            problems.append(f"{what}: {found:,} rows, expected {expected[what]:,}")
    for r in rounds:
        if r.statuses != Counter({EXPECTED[r.name]: args.requests}):
            problems.append(f"{r.name}: statuses {dict(r.statuses)}; first: {r.first_error}")
    return BackendResult(backend, rounds, rows, client_cpu, problems)


def run_postgresql(args: argparse.Namespace) -> tuple[BackendResult, str]:
    with postgres_database() as (dsn, version):

        def count(query: str) -> int:
            with psycopg.connect(dsn, autocommit=True) as conn:
                found = conn.execute(query.encode()).fetchone()
            assert found is not None
            return int(found[0])

        def analyze() -> None:
            if not args.no_analyze:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(b"ANALYZE")

        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        return run_backend(f"PostgreSQL {version}", url, count, args, analyze), version


def run_sqlite(args: argparse.Namespace) -> BackendResult:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bench.db"

        def count(query: str) -> int:
            conn = sqlite3.connect(path)
            try:
                return int(conn.execute(query).fetchone()[0])
            finally:
                conn.close()

        return run_backend(f"SQLite {sqlite3.sqlite_version}", f"sqlite:///{path}", count, args)


# -- report ---------------------------------------------------------------------------------

WHAT = {
    SUBMIT: "A: `_submit` of a 10-line draft (2 asserts, 1 create with 10 mapped lines)",
    CREATE: "B: `POST` of the same 10-line record, no lifecycle, no rules",
}


def report(results: list[BackendResult], args: argparse.Namespace) -> str:
    lines = [
        "| backend | workload | req/s (median) | rounds min-max | p50 ms | p99 ms "
        "| server CPU | server CPU µs/req | unexpected |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for name in NAMES:
            rounds = [r for r in result.rounds if r.name == name]
            rates = [r.requests_per_s for r in rounds]
            latencies = [x for r in rounds for x in r.latencies]
            bad = sum(n for r in rounds for s, n in r.statuses.items() if s != EXPECTED[name])
            lines.append(
                f"| {result.backend} | {WHAT[name]} | {result.median(name):,.0f} "
                f"| {min(rates):,.0f}-{max(rates):,.0f} | {percentile(latencies, 0.5):.1f} "
                f"| {percentile(latencies, 0.99):.1f} "
                f"| {statistics.median(r.server_cpu for r in rounds):.0%} "
                f"| {result.cpu_per_request(name) * 1e6:.0f} | {bad} |"
            )
    lines += [
        "",
        "| backend | A / B (req/s) | target | met? | B / A (server CPU per request) |",
        "|---|---:|---:|---|---:|",
    ]
    for result in results:
        lines.append(
            f"| {result.backend} | {result.ratio():.2f}x | ≥ {TARGET}x "
            f"| {'yes' if result.met else '**NO**'} | {result.cpu_ratio():.2f}x |"
        )
    cpu = ", ".join(f"{r.backend} {r.client_cpu:.0%}" for r in results)
    lines += [
        "",
        f"{args.rounds} rounds of {args.requests:,} requests per workload (ABBA order) after "
        f"{args.warmup:,} warm-up requests each, {args.concurrency} keep-alive connections; "
        "one `tessera serve` process per backend; the drafts of each round made with `_bulk` "
        "before its clock starts. Server CPU: the server process's CPU time over the round "
        f"(100 % = one core), and per request. Load client CPU: {cpu} of one core.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per workload (even: ABBA)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up requests per workload")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--pool-size", type=int, default=None, help="the server's pool_size (default: Tessera's)"
    )
    parser.add_argument(
        "--backends", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite"
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="do not ANALYZE the PostgreSQL database before each round (what autovacuum "
        "would do; see the module's docstring)",
    )
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"postgresql", "sqlite"}:
        parser.error("--backends takes postgresql and/or sqlite")
    results = []
    version = None
    for backend in backends:
        print(f"{backend}:", flush=True)
        if backend == "postgresql":
            result, version = run_postgresql(args)
        else:
            result = run_sqlite(args)
        results.append(result)
    print(
        f"\n{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}"
        + (f", PostgreSQL {version}" if version else "")
        + "\n"
    )
    print(report(results, args))
    problems = [f"{r.backend}: {p}" for r in results for p in r.problems]
    if problems:
        print("\nProblems:")
        for problem in problems:
            print(f"- {problem}")
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
