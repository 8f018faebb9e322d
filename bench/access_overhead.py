"""List and get throughput for a user whose role limits the records (a ``where``) and hides
two fields, against an admin, in the same run (issue 5).

One pack, ``accessbench``, with one entity, ``deal``, of ten fields (name, code, customer,
region, stage, amount, probability, close_date, and two stored computed decimals, ``cost``
and ``margin``), indexed on ``amount`` and on ``(stage, amount)``, and (as ``tessera
validate`` advises for the grant below; ``--no-owner-index`` to leave them out) on
``(created_by, amount)`` and ``(created_by, stage, amount)``; its ``roles.yaml`` gives
the role ``sales_rep`` read, create and update on the deals it created
(``where: "created_by == user.id"``), with ``margin`` and ``cost`` hidden.

Two users: the admin ``bench`` and ``rep`` (role ``sales_rep``), each with an API token made
by the command line. ``--deals`` records are created through ``_bulk`` (1,000 a request),
batches of the admin and of the rep in turn, so the rep may read exactly half; then the
table is analysed (``VACUUM (ANALYZE)`` on PostgreSQL, ``ANALYZE`` on SQLite) so that the
plans do not change during the run. ``amount`` is required, so ``sort=-amount`` is
``ORDER BY amount DESC, id`` (no ``NULLS LAST``) and both backends walk an index.

Workloads, each played by both users on the same requests:

- ``list``: ``GET /api/v1/accessbench/deal?sort=-amount&limit=50&offset=...``, half of them
  with ``stage=...`` as well, on one of the first 10 pages (both users read full pages;
  with ``--no-owner-index`` the rep's skip the admin's records, so the database reads
  about twice as many index entries and rows for them: the cost of an unindexed ``where``);
- ``get``: ``GET /api/v1/accessbench/deal/{id}`` for random ids among the rep's records, the
  same ids for both users.

For each backend a real ``tessera serve`` (one process, on a free loopback port) serves a
freshly migrated and seeded database. After a warm-up, each round plays ``--requests``
lists and 4 times as many gets (``--get-requests``) for each user, the users in ABBA order
(admin, rep, rep, admin, ...) so that drift over the run falls on both alike. The load
comes from ``--concurrency`` keep-alive connections driven by the minimal HTTP/1.1 client of
``bench._harness``. The CPU time of the server process is read from /proc around each
round.

Checks (any failure fails the run): before the load, the rep gets 404 for records the admin
created, 400 for a filter, a sort or ``fields=`` naming a hidden field, and counts
(``count=true``) only its own records;
every response of the load must be a 200; every record the rep receives is its own and has
neither ``margin`` nor ``cost``; every record the admin receives has both, and the admin's
list pages hold records of both users; each get answers the rep the admin's record of the
same id without the two hidden fields. The bodies are checked after each round, outside the
timing. Afterwards the rows are counted in the database, by creator. The server must print
no traceback.

Target: the rep's throughput >= 0.85x the admin's (medians of the rounds), for each
workload, on every backend measured. Exits non-zero if it is missed or if any check fails.

Run: ``.venv/bin/python -m bench.access_overhead`` (``--backends postgresql`` to skip
SQLite). Needs PostgreSQL (``BENCH_PG``, default the ``test`` database on 127.0.0.1); the
benchmark creates and drops its own ``tessera_bench_<random>`` database.
"""

from __future__ import annotations

import argparse
import datetime as dt
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

from bench._auth import USER, bearer, user_token
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

PACK = "accessbench"
ENTITY = "deal"
TABLE = f"{PACK}_{ENTITY}"
REP, ROLE = "rep", "sales_rep"
USERS = ("admin", "rep")
WORKLOADS = ("list", "get")
HIDDEN = ("margin", "cost")
TARGET = 0.85
BULK = 1000
PAGES = 10
PAGE = 50

MODULE_YAML = f'name: {PACK}\nversion: "1.0.0"\n'
DEAL_YAML = """\
label: Deal
title: name
fields:
  name:        {type: string, required: true, max_length: 120}
  code:        {type: string, max_length: 20}
  customer:    {type: string, max_length: 120}
  region:      {type: enum, values: [emea, americas, apac]}
  stage:
    type: enum
    values: [prospecting, qualification, proposal, negotiation, closed_won, closed_lost]
    default: prospecting
  amount:      {type: decimal, precision: 14, scale: 2, min: 0, required: true}
  probability: {type: integer, min: 0, max: 100}
  close_date:  {type: date}
  cost:
    type: decimal
    precision: 14
    scale: 2
    computed: "amount * (40 + probability % 40) / 100 if amount is not none else none"
  margin:
    type: decimal
    precision: 14
    scale: 2
    computed: "amount - cost if amount is not none else none"
indexes: [[amount], [stage, amount]]
"""
OWNER_INDEXES = (
    "indexes: [[amount], [stage, amount], [created_by, amount], [created_by, stage, amount]]"
)
"""The indexes ``tessera validate`` advises for a grant on the creator (the default;
``--no-owner-index`` leaves them out), so the rep's pages are read from its own index
entries instead of skipping the admin's."""
ROLES_YAML = f"""\
roles:
  {ROLE}:
    label: Sales representative
    grants:
      - entity: {ENTITY}
        actions: [read, create, update]
        where: "created_by == user.id"
        hidden_fields: [{", ".join(HIDDEN)}]
"""
STAGES = ("prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost")
REGIONS = ("emea", "americas", "apac")
WHO = {"admin": "every deal, every field", "rep": "its own deals, without margin and cost"}


# -- data -----------------------------------------------------------------------------------


def deal(rng: random.Random, serial: int, today: dt.date) -> dict[str, Any]:
    return {
        "name": f"Deal {serial}",
        "code": f"DL-{serial:06d}",
        "customer": f"Customer {rng.randint(1, 2_000)} GmbH",
        "region": rng.choice(REGIONS),
        "stage": rng.choice(STAGES),
        "amount": str(Decimal(rng.randint(10_000, 50_000_000)) / 100),
        "probability": rng.randint(0, 100),
        "close_date": (today + dt.timedelta(days=rng.randint(-300, 600))).isoformat(),
    }


def seed(base: str, tokens: dict[str, str], deals: int) -> dict[str, list[str]]:
    """Create ``deals`` records through ``_bulk``, alternating batches of the two users (the
    same number each); the ids each user created."""
    rng = random.Random(20261124)
    today = dt.datetime.now(dt.UTC).date()
    ids: dict[str, list[str]] = {user: [] for user in USERS}
    with httpx.Client(base_url=base, timeout=300) as client:
        for batch, start in enumerate(range(0, deals, BULK)):
            user = USERS[batch % 2]
            body = [deal(rng, n, today) for n in range(start, min(start + BULK, deals))]
            response = client.post(
                f"/api/v1/{PACK}/{ENTITY}/_bulk", json=body, headers=bearer(tokens[user])
            )
            if response.status_code != 201:
                raise RuntimeError(f"_bulk as {user}: {response.status_code} {response.text[:500]}")
            ids[user] += [r["id"] for r in response.json()["data"]]
    return ids


def get_request(path: str, port: int, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


def paths(workload: str, rng: random.Random, n: int, rep_ids: list[str], pages: int) -> list[str]:
    """The requests of one round, the same for both users."""
    base = f"/api/v1/{PACK}/{ENTITY}"
    if workload == "get":
        return [f"{base}/{rng.choice(rep_ids)}" for _ in range(n)]
    made = []
    for _ in range(n):
        query = f"sort=-amount&limit={PAGE}&offset={rng.randrange(pages) * PAGE}"
        if rng.random() < 0.5:
            query = f"stage={rng.choice(STAGES)}&{query}"
        made.append(f"{base}?{query}")
    return made


# -- load -----------------------------------------------------------------------------------


@dataclass
class Load:
    rounds: list[Round]
    client_cpu: float
    problems: list[str]


async def drive(
    port: int,
    tokens: dict[str, str],
    user_ids: dict[str, str],
    rep_ids: list[str],
    server_cpu: Callable[[], float],
    args: argparse.Namespace,
) -> Load:
    """The warm-up (not kept, but checked), then the measured rounds; the share of a core
    this client used during the measured rounds; what the checks found."""
    rng = random.Random(20261123)
    clients = [await Client.open(port) for _ in range(args.concurrency)]
    problems: list[str] = []

    async def play(workload: str, user: str, shared: list[str]) -> Round:
        requests = [get_request(path, port, tokens[user]) for path in shared]
        return await run_round(clients, f"{workload}/{user}", requests, 200, keep_bodies=True)

    try:
        for workload in WORKLOADS:
            shared = paths(workload, rng, args.warmup, rep_ids, args.pages)
            warm = {user: await play(workload, user, shared) for user in USERS}
            problems += check_group(workload, warm, user_ids)
        rounds: list[Round] = []
        cpu = wall = 0.0
        for order in round_order(USERS, args.rounds):
            for workload in WORKLOADS:
                shared = paths(workload, rng, args.count[workload], rep_ids, args.pages)
                group: dict[str, Round] = {}
                for user in order:
                    cpu_started, wall_started = time.process_time(), time.perf_counter()
                    server_started = server_cpu()
                    last = await play(workload, user, shared)
                    seconds = time.perf_counter() - wall_started
                    last.server_cpu = (server_cpu() - server_started) / seconds
                    cpu += time.process_time() - cpu_started
                    wall += seconds
                    group[user] = last
                    rounds.append(last)
                    print(
                        f"  {last.name:<10} {last.requests_per_s:8,.0f} req/s, server CPU "
                        f"{last.server_cpu:4.0%}"
                        + (f"  non-200: {dict(last.statuses)}" if last.first_error else ""),
                        flush=True,
                    )
                problems += check_group(workload, group, user_ids)
                for played in group.values():
                    played.bodies = {}  # checked; the report needs only the numbers
        return Load(rounds, cpu / wall, problems)
    finally:
        for client in clients:
            await client.close()


# -- checks ---------------------------------------------------------------------------------


def check_access(base: str, tokens: dict[str, str], ids: dict[str, list[str]]) -> list[str]:
    """Untimed, before the load: the rep's grant is enforced on the paths the load uses."""
    problems = []
    url = f"{base}/api/v1/{PACK}/{ENTITY}"
    rep = bearer(tokens["rep"])
    with httpx.Client(timeout=60) as client:
        for record_id in ids["admin"][:3] + ids["admin"][-2:]:
            response = client.get(f"{url}/{record_id}", headers=rep)
            if response.status_code != 404:
                problems.append(f"rep reads admin's deal {record_id}: {response.status_code}")
        for query in ("margin__gt=0", "sort=-cost", "fields=name,margin"):
            response = client.get(f"{url}?{query}", headers=rep)
            if response.status_code != 400:
                problems.append(f"rep lists with {query}: {response.status_code}, not 400")
        for user, expected in (("rep", len(ids["rep"])), ("admin", sum(map(len, ids.values())))):
            response = client.get(f"{url}?count=true&limit=1", headers=bearer(tokens[user]))
            found = response.json().get("meta", {}).get("count")
            if response.status_code != 200 or found != expected:
                problems.append(
                    f"{user} counts {found} deals ({response.status_code}), not {expected}"
                )
    return problems


def _records(workload: str, body: bytes) -> list[dict[str, Any]]:
    data = json.loads(body)["data"]
    return list(data) if workload == "list" else [data]


def check_group(workload: str, group: dict[str, Round], user_ids: dict[str, str]) -> list[str]:
    """Every answer of both users' rounds of one workload (played on the same requests)."""
    problems = []
    for user, played in group.items():
        if set(played.statuses) != {200} or played.first_error:
            problems.append(
                f"{played.name}: statuses {dict(played.statuses)}; first: {played.first_error}"
            )
            continue
        creators: Counter[str] = Counter()
        wrong = short = 0
        for body in played.bodies.values():
            records = _records(workload, body)
            short += workload == "list" and len(records) != PAGE
            for record in records:
                creators[str(record.get("created_by"))] += 1
                has_hidden = any(name in record for name in HIDDEN)
                wrong += has_hidden if user == "rep" else not all(n in record for n in HIDDEN)
        if wrong:
            what = "with margin or cost" if user == "rep" else "without margin and cost"
            problems.append(f"{played.name}: {wrong} records {what}")
        if short:
            problems.append(f"{played.name}: {short} pages of fewer than {PAGE} records")
        allowed = {user_ids["rep"]} if user == "rep" else set(user_ids.values())
        if set(creators) - allowed:
            problems.append(f"{played.name}: records created by {dict(creators)}")
        if user == "admin" and workload == "list" and set(creators) != allowed:
            problems.append(f"{played.name}: the admin saw only the records of {set(creators)}")
    if workload == "get" and len(group) == len(USERS) and not problems:
        problems += _same_records(group)
    return problems


def _same_records(group: dict[str, Round]) -> list[str]:
    """The rep's answer to each get is the admin's without the hidden fields."""
    admin, rep = group["admin"].bodies, group["rep"].bodies
    differ = 0
    for i, body in rep.items():
        mine = json.loads(body)["data"]
        theirs = {k: v for k, v in json.loads(admin[i])["data"].items() if k not in HIDDEN}
        differ += mine != theirs
    return [f"get: {differ} of the rep's records differ from the admin's"] if differ else []


# -- one backend ----------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    rounds: list[Round]
    rows: dict[str, int]
    client_cpu: float
    problems: list[str] = field(default_factory=list)

    def median(self, workload: str, user: str) -> float:
        name = f"{workload}/{user}"
        return statistics.median(r.requests_per_s for r in self.rounds if r.name == name)

    def ratio(self, workload: str) -> float:
        return self.median(workload, "rep") / self.median(workload, "admin")

    @property
    def met(self) -> bool:
        return all(self.ratio(w) >= TARGET for w in WORKLOADS) and not self.problems


def write_instance(folder: Path, database_url: str, owner_index: bool) -> None:
    pack = folder / "packs" / PACK
    (pack / "entities").mkdir(parents=True)
    (pack / "module.yaml").write_text(MODULE_YAML, encoding="utf-8")
    deal = DEAL_YAML.replace("indexes: [[amount], [stage, amount]]", OWNER_INDEXES)
    (pack / "entities" / f"{ENTITY}.yaml").write_text(
        deal if owner_index else DEAL_YAML, encoding="utf-8"
    )
    (pack / "roles.yaml").write_text(ROLES_YAML, encoding="utf-8")
    config = (
        f"database_url: {json.dumps(database_url)}\nmodules: [{PACK}]\nmodule_paths: [./packs]\n"
    )
    (folder / "tessera.yaml").write_text(config, encoding="utf-8")


def user_id(base: str, token: str) -> str:
    response = httpx.get(f"{base}/api/v1/auth/me", headers=bearer(token), timeout=30)
    response.raise_for_status()
    return str(response.json()["data"]["id"])


def run_backend(
    backend: str,
    database_url: str,
    sql: Callable[[str], list[tuple[Any, ...]]],
    args: argparse.Namespace,
) -> BackendResult:
    """``sql`` runs one statement on the benchmark's database, outside the server."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_instance(folder, database_url, args.owner_index)
        migrate(folder)
        tokens = {
            "admin": user_token(folder, env(), USER, "admin"),
            "rep": user_token(folder, env(), REP, ROLE),
        }
        server = Server(folder)
        try:
            user_ids = {user: user_id(server.base, token) for user, token in tokens.items()}
            started = time.perf_counter()
            ids = seed(server.base, tokens, args.deals)
            sql(SETTLE[backend.split()[0]])  # statistics, so that plans do not change mid-run
            print(f"  seeded {args.deals:,} deals in {time.perf_counter() - started:.1f} s")
            problems = check_access(server.base, tokens, ids)
            load = run_async(
                drive(server.port, tokens, user_ids, ids["rep"], server.cpu_seconds, args)
            )
            problems += load.problems
        finally:
            output = server.stop()
        if "Traceback" in output:
            problems.append("the server printed a traceback (its output is on stderr)")
            print(output[-3000:], file=sys.stderr)
        counted = {str(creator): int(n) for creator, n in sql(BY_CREATOR)}
    rows = {user: counted.get(user_ids[user], 0) for user in USERS}
    expected = {user: len(ids[user]) for user in USERS}
    if rows != expected or sum(counted.values()) != args.deals:
        problems.append(f"rows by creator: {counted}, expected {expected} (ids {user_ids})")
    return BackendResult(backend, load.rounds, rows, load.client_cpu, problems)


BY_CREATOR = f"SELECT created_by, count(*) FROM {TABLE} GROUP BY created_by"
SETTLE = {"PostgreSQL": f"VACUUM (ANALYZE) {TABLE}", "SQLite": "ANALYZE"}


def run_postgresql(args: argparse.Namespace) -> tuple[BackendResult, str]:
    with postgres_database() as (dsn, version):

        def sql(statement: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(dsn, autocommit=True) as conn:
                cursor = conn.execute(statement.encode())
                return cursor.fetchall() if cursor.description else []

        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        return run_backend(f"PostgreSQL {version}", url, sql, args), version


def run_sqlite(args: argparse.Namespace) -> BackendResult:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "bench.db"

        def sql(statement: str) -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(path)
            try:
                rows = conn.execute(statement).fetchall()
                conn.commit()
                return rows
            finally:
                conn.close()

        return run_backend(f"SQLite {sqlite3.sqlite_version}", f"sqlite:///{path}", sql, args)


# -- report ---------------------------------------------------------------------------------


def report(results: list[BackendResult], args: argparse.Namespace) -> str:
    lines = [
        "| backend | workload | user | reads | req/s (median) | rounds min-max "
        "| p50 ms | p99 ms | server CPU | server CPU µs/req | non-200 |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for workload in WORKLOADS:
            for user in USERS:
                rounds = [r for r in result.rounds if r.name == f"{workload}/{user}"]
                rates = [r.requests_per_s for r in rounds]
                latencies = [x for r in rounds for x in r.latencies]
                bad = sum(n for r in rounds for status, n in r.statuses.items() if status != 200)
                cpu_per_request = statistics.median(r.server_cpu / r.requests_per_s for r in rounds)
                lines.append(
                    f"| {result.backend} | {workload} | {user} | {WHO[user]} "
                    f"| {result.median(workload, user):,.0f} "
                    f"| {min(rates):,.0f}-{max(rates):,.0f} | {percentile(latencies, 0.5):.1f} "
                    f"| {percentile(latencies, 0.99):.1f} "
                    f"| {statistics.median(r.server_cpu for r in rounds):.0%} "
                    f"| {cpu_per_request * 1e6:.0f} | {bad} |"
                )
    lines += ["", "| backend | workload | rep / admin | target | met? |", "|---|---|---:|---:|---|"]
    for result in results:
        for workload in WORKLOADS:
            ratio = result.ratio(workload)
            met = ratio >= TARGET and not result.problems
            lines.append(
                f"| {result.backend} | {workload} | {ratio:.2f}x | ≥ {TARGET}x "
                f"| {'yes' if met else '**NO**'} |"
            )
    cpu = ", ".join(f"{r.backend} {r.client_cpu:.0%}" for r in results)
    rows = ", ".join(f"{r.backend}: {r.rows['admin']:,} + {r.rows['rep']:,}" for r in results)
    lines += [
        "",
        f"{args.deals:,} deals, created by the admin + by the rep ({rows}). Each round plays "
        f"{args.count['list']:,} list and {args.count['get']:,} get requests per user (users in "
        f"ABBA order), after {args.warmup:,} warm-up requests per workload and user; "
        f"{args.rounds} rounds, {args.concurrency} keep-alive connections, one `tessera serve` "
        "process per backend.",
        f"list: `sort=-amount&limit={PAGE}&offset=` a multiple of {PAGE} below "
        f"{args.pages * PAGE}, half with a `stage=` filter; get: random ids among the rep's "
        "deals, the same for both users. "
        "Server CPU: the server process's CPU time over the round (100 % = one core), and per "
        f"request. Load client CPU: {cpu} of one core.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--deals", type=int, default=20_000, help="records, half per user")
    parser.add_argument(
        "--requests", type=int, default=3000, help="list requests per round and user"
    )
    parser.add_argument(
        "--get-requests",
        type=int,
        default=None,
        help="get requests per round and user (default: 4x --requests; a get is that much "
        "cheaper, and a round must last long enough for the server's CPU time from /proc)",
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds per user (even: ABBA)")
    parser.add_argument(
        "--warmup", type=int, default=500, help="warm-up requests per workload and user"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--backends", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite"
    )
    parser.add_argument(
        "--owner-index",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also index (created_by, amount) and (created_by, stage, amount), as "
        "tessera validate advises for a grant on the creator (--no-owner-index: without)",
    )
    args = parser.parse_args(argv)
    args.count = {"list": args.requests, "get": args.get_requests or 4 * args.requests}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"postgresql", "sqlite"}:
        parser.error("--backends takes postgresql and/or sqlite")
    if args.deals < 2 * BULK or args.deals % (2 * BULK):
        parser.error(f"--deals takes a multiple of {2 * BULK:,}")
    # pages every user fills, even with a stage filter (a sixth of the rep's half, or less)
    args.pages = max(1, min(PAGES, args.deals // (4 * len(STAGES) * PAGE)))
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
