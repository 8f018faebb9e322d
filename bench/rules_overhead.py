"""Create throughput of an entity with validation rules and computed fields, against the same
entity without them, in the same run (issue 4).

One pack, ``rulesbench``, with two entities of the same ten fields (name, code, amount,
probability, stage, close_date, quantity, price, discount, lost_reason):

- ``plain``: nothing runs on create but field validation;
- ``ruled``: 10 assert rules (``rules/ruled.yaml``, four of them with a ``when``), 3 stored
  computed fields (``subtotal``, ``net`` from ``subtotal``, ``weighted``), one
  ``required_if`` (``lost_reason`` when the stage is ``closed_lost``) and 2 triggers on
  create: a won deal creates an ``order``, a lost deal a ``deal_note`` (each about 10 % of
  the deals). Every create evaluates both triggers' ``when``; they read the assigned
  ``id``, so every ``ruled`` create runs in a transaction.

``--breakdown`` adds two entities to tell the costs apart: ``computed`` (the computed fields
and the required_if of ``ruled``, no rules: still one INSERT without a transaction) and
``one_rule`` (``plain`` with one rule that always holds: a create with a rule runs in a
transaction, BEGIN and COMMIT included, because the rule is checked after the INSERT).

For each backend a real ``tessera serve`` (one process, on a free loopback port) serves a
freshly migrated database. After a warm-up, rounds of ``--requests`` POSTs go to each entity
in turn, in ABBA order (plain, ruled, ruled, plain, ...) so that drift over the run (table
growth, autovacuum, the machine) falls on both alike; both entities get the same bodies.
The load comes from ``--concurrency`` keep-alive connections driven by a minimal HTTP/1.1
client on asyncio streams, cheap enough to leave the server most of the CPU. Every record
is valid (all rules pass) and every response must be 201; afterwards the rows are counted in
the database and the computed values of the last records are checked through the API. Before
the load, two invalid records check that the rules and the required_if are enforced. The CPU
time of the server process is read from /proc around each round.

Target (issue 15; 0.7x in issue 4): ruled throughput >= 0.75x plain (median of the
rounds), on every backend measured.
Exits non-zero if it is missed or if any check fails.

Run: ``.venv/bin/python -m bench.rules_overhead`` (``--backends postgresql`` to skip
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
from decimal import ROUND_HALF_UP, Decimal
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

PACK = "rulesbench"
ENTITIES = ("plain", "ruled")
BREAKDOWN = ("computed", "one_rule")
TARGET = 0.75
CENT = Decimal("0.01")

MODULE_YAML = f'name: {PACK}\nversion: "1.0.0"\n'
FIELDS = """\
label: Deal
title: name
fields:
  name:        {type: string, required: true, max_length: 120}
  code:        {type: string, max_length: 20}
  amount:      {type: decimal, precision: 14, scale: 2, min: 0}
  probability: {type: integer, min: 0, max: 100}
  stage:
    type: enum
    values: [prospecting, qualification, proposal, negotiation, closed_won, closed_lost]
    default: prospecting
  close_date:  {type: date}
  quantity:    {type: integer, min: 1}
  price:       {type: decimal, precision: 12, scale: 2, min: 0}
  discount:    {type: decimal, precision: 5, scale: 2, min: 0, max: 100}
"""
PLAIN_YAML = FIELDS + "  lost_reason: {type: string, max_length: 200}\n"
RULED_YAML = (
    FIELDS
    + """\
  lost_reason: {type: string, max_length: 200, required_if: "stage == 'closed_lost'"}
  subtotal:
    type: decimal
    precision: 14
    scale: 2
    computed: "quantity * price if quantity is not none and price is not none else none"
  net:
    type: decimal
    precision: 14
    scale: 2
    computed: "subtotal * (100 - (discount or 0)) / 100 if subtotal is not none else none"
  weighted:
    type: decimal
    precision: 14
    scale: 2
    computed: >-
      amount * probability / 100
      if amount is not none and probability is not none else none
"""
)
RULES_YAML = """\
- name: close_date_not_past
  when: "stage not in ['closed_won', 'closed_lost']"
  assert: "close_date is none or close_date >= today()"
  field: close_date
  message: Close date cannot be in the past
- name: close_within_two_years
  assert: "close_date is none or close_date.year <= today().year + 2"
  field: close_date
  message: Close date is too far ahead
- name: won_is_certain
  assert: "stage != 'closed_won' or probability == 100"
  field: probability
  message: A won deal has probability 100
- name: lost_is_zero
  when: "stage == 'closed_lost'"
  assert: "probability == 0"
  field: probability
  message: A lost deal has probability 0
- name: discount_needs_approval
  assert: "discount is none or discount <= 30"
  field: discount
  message: Discounts above 30 % need approval
- name: big_deals_need_a_date
  assert: "amount is none or amount < 100000 or close_date is not none"
  field: close_date
  message: Deals of 100,000 or more need a close date
- name: proposal_has_amount
  when: "stage in ['proposal', 'negotiation', 'closed_won']"
  assert: "amount is not none and amount > 0"
  field: amount
  message: A proposal needs an amount
- name: price_needs_quantity
  assert: "price is none or quantity is not none"
  field: quantity
  message: A price needs a quantity
- name: amount_covers_net
  when: "net is not none"
  assert: "amount is not none and amount >= net"
  field: amount
  message: The amount is below the net price
- name: code_format
  assert: "code is none or (code | length == 8 and code.startswith('DL-'))"
  field: code
  message: Codes look like DL-12345
"""
TRIGGERS_YAML = """\
- name: won_creates_order
  on: create
  when: "stage == 'closed_won'"
  actions:
    - create: {entity: order, values: {deal: "{{ id }}", amount: "{{ net }}"}}
- name: lost_leaves_a_note
  on: create
  when: "stage == 'closed_lost'"
  actions:
    - create: {entity: deal_note, values: {deal: "{{ id }}", text: "Lost: {{ lost_reason }}"}}
"""
ORDER_YAML = """\
fields:
  deal:   {type: reference, to: ruled, required: true}
  amount: {type: decimal, precision: 14, scale: 2}
"""
NOTE_YAML = """\
fields:
  deal: {type: reference, to: ruled, required: true}
  text: {type: text}
"""
ONE_RULE_YAML = """\
- name: always
  assert: "true"
"""
WHAT = {
    "plain": "nothing (field validation only)",
    "ruled": "10 assert rules, 3 computed fields, 1 required_if, 2 triggers",
    "computed": "3 computed fields, 1 required_if (no rules)",
    "one_rule": "1 assert rule (`true`)",
}
OPEN_STAGES = ("prospecting", "qualification", "proposal", "negotiation")


# -- data -----------------------------------------------------------------------------------


def deal(rng: random.Random, serial: int, today: dt.date) -> dict[str, Any]:
    """A deal that keeps every rule of ``RULES_YAML``."""
    quantity = rng.randint(1, 20)
    price = Decimal(rng.randint(1_000, 999_999)) / 100
    discount = Decimal(rng.randint(0, 3_000)) / 100
    roll = rng.random()
    if roll < 0.1:
        stage, probability = "closed_won", 100
    elif roll < 0.2:
        stage, probability = "closed_lost", 0
    else:
        stage, probability = rng.choice(OPEN_STAGES), rng.randint(5, 95)
    closed = stage.startswith("closed")
    days = -rng.randint(1, 300) if closed else rng.randint(1, 600)
    return {
        "name": f"Deal {serial}",
        "code": f"DL-{serial % 100_000:05d}",
        "amount": str(quantity * price),
        "probability": probability,
        "stage": stage,
        "close_date": (today + dt.timedelta(days=days)).isoformat(),
        "quantity": quantity,
        "price": str(price),
        "discount": str(discount),
        "lost_reason": "Went with a competitor" if stage == "closed_lost" else None,
    }


def post_request(entity: str, port: int, token: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST /api/v1/{PACK}/{entity} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


# -- load -----------------------------------------------------------------------------------


async def drive(
    port: int, token: str, server_cpu: Callable[[], float], args: argparse.Namespace
) -> tuple[list[Round], float]:
    """The warm-up (not kept), then the measured rounds; and the share of a core this
    client used during the measured rounds."""
    rng = random.Random(20261123)
    today = dt.datetime.now(dt.UTC).date()
    serial = 0

    def bodies(n: int) -> list[dict[str, Any]]:
        nonlocal serial
        made = [deal(rng, serial + i, today) for i in range(n)]
        serial += n
        return made

    clients = [await Client.open(port) for _ in range(args.concurrency)]
    try:
        warm = bodies(args.warmup)
        for entity in args.entities:
            await run_round(clients, entity, [post_request(entity, port, token, b) for b in warm])
        rounds: list[Round] = []
        cpu = wall = 0.0
        for group in round_order(args.entities, args.rounds):
            shared = bodies(args.requests)  # the same bodies for every entity of a group
            for entity in group:
                requests = [post_request(entity, port, token, b) for b in shared]
                cpu_started, wall_started = time.process_time(), time.perf_counter()
                server_started = server_cpu()
                last = await run_round(clients, entity, requests)
                seconds = time.perf_counter() - wall_started
                last.server_cpu = (server_cpu() - server_started) / seconds
                cpu += time.process_time() - cpu_started
                wall += seconds
                rounds.append(last)
                print(
                    f"  {entity:<8} {last.requests_per_s:8,.0f} req/s, server CPU "
                    f"{last.server_cpu:4.0%}"
                    + (f"  non-201: {dict(last.statuses)}" if last.first_error else ""),
                    flush=True,
                )
        return rounds, cpu / wall
    finally:
        for client in clients:
            await client.close()


# -- instance and server --------------------------------------------------------------------


def write_instance(
    folder: Path, database_url: str, entities: tuple[str, ...], pool_size: int | None = None
) -> None:
    pack = folder / "packs" / PACK
    (pack / "entities").mkdir(parents=True)
    (pack / "rules").mkdir()
    (pack / "module.yaml").write_text(MODULE_YAML, encoding="utf-8")
    definitions = {
        "plain": PLAIN_YAML,
        "ruled": RULED_YAML,
        "computed": RULED_YAML,  # the same fields, without the rules file
        "one_rule": PLAIN_YAML,
    }
    for entity in entities:
        (pack / "entities" / f"{entity}.yaml").write_text(definitions[entity], encoding="utf-8")
    (pack / "rules" / "ruled.yaml").write_text(RULES_YAML + TRIGGERS_YAML, encoding="utf-8")
    (pack / "entities" / "order.yaml").write_text(ORDER_YAML, encoding="utf-8")
    (pack / "entities" / "deal_note.yaml").write_text(NOTE_YAML, encoding="utf-8")
    if "one_rule" in entities:
        (pack / "rules" / "one_rule.yaml").write_text(ONE_RULE_YAML, encoding="utf-8")
    config = (
        f"database_url: {json.dumps(database_url)}\nmodules: [{PACK}]\nmodule_paths: [./packs]\n"
    )
    if pool_size is not None:
        config += f"pool_size: {pool_size}\n"
    (folder / "tessera.yaml").write_text(config, encoding="utf-8")


# -- checks ---------------------------------------------------------------------------------


def check_rules_are_live(base: str, token: str) -> list[str]:
    """Untimed: the ruled entity refuses what its rules forbid (nothing is stored)."""
    problems = []
    today = dt.datetime.now(dt.UTC).date()
    bad = deal(random.Random(1), 1, today) | {
        "stage": "closed_won",
        "probability": 50,
        "discount": "45.00",
        "code": "XX-1",
    }
    response = httpx.post(f"{base}/api/v1/{PACK}/ruled", json=bad, headers=bearer(token))
    broken = {e.get("rule") for e in response.json().get("errors", [])}
    expected = {"won_is_certain", "discount_needs_approval", "code_format"}
    if response.status_code != 422 or broken != expected:
        problems.append(f"rules not enforced as expected: {response.status_code} {broken}")
    lost = deal(random.Random(2), 2, today) | {
        "stage": "closed_lost",
        "probability": 0,
        "lost_reason": None,
        "close_date": today.isoformat(),
    }
    response = httpx.post(f"{base}/api/v1/{PACK}/ruled", json=lost, headers=bearer(token))
    codes = [(e.get("field"), e.get("code")) for e in response.json().get("errors", [])]
    if response.status_code != 422 or codes != [("lost_reason", "required")]:
        problems.append(f"required_if not enforced: {response.status_code} {codes}")
    return problems


def check_computed(base: str, token: str, sample: int) -> list[str]:
    """The last ``sample`` ruled records hold the values their expressions give."""
    response = httpx.get(
        f"{base}/api/v1/{PACK}/ruled",
        params={"sort": "-id", "limit": sample},
        headers=bearer(token),
        timeout=30,
    )
    records = response.json()["data"]
    wrong = 0
    for r in records:
        subtotal = (r["quantity"] * Decimal(r["price"])).quantize(CENT, ROUND_HALF_UP)
        net = (subtotal * (100 - Decimal(r["discount"])) / 100).quantize(CENT, ROUND_HALF_UP)
        weighted = (Decimal(r["amount"]) * r["probability"] / 100).quantize(CENT, ROUND_HALF_UP)
        if (r["subtotal"], r["net"], r["weighted"]) != (str(subtotal), str(net), str(weighted)):
            wrong += 1
    if len(records) != sample or wrong:
        return [f"computed fields: {wrong} of {len(records)} records wrong"]
    return []


def count_rows(count: Callable[[str], int], entities: tuple[str, ...]) -> dict[str, int]:
    return {entity: count(f"SELECT count(*) FROM {PACK}_{entity}") for entity in entities}


# -- one backend ----------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    rounds: list[Round]
    rows: dict[str, int]
    client_cpu: float
    problems: list[str] = field(default_factory=list)

    def median(self, entity: str) -> float:
        return statistics.median(r.requests_per_s for r in self.rounds if r.name == entity)

    def ratio(self, entity: str = "ruled") -> float:
        return self.median(entity) / self.median("plain")

    @property
    def met(self) -> bool:
        return self.ratio() >= TARGET and not self.problems


def run_backend(
    backend: str, database_url: str, count: Callable[[str], int], args: argparse.Namespace
) -> BackendResult:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_instance(folder, database_url, args.entities, args.pool_size)
        migrate(folder)
        token = bench_token(folder, env())
        server = Server(folder)
        problems: list[str] = []
        try:
            problems += check_rules_are_live(server.base, token)
            rounds, client_cpu = run_async(drive(server.port, token, server.cpu_seconds, args))
            problems += check_computed(server.base, token, min(args.requests, 1000))
        finally:
            output = server.stop()
        if "Traceback" in output:
            problems.append("the server printed a traceback (see its output above)")
            print(output[-3000:], file=sys.stderr)
        warnings = [line for line in output.splitlines() if "could not be evaluated" in line]
        if warnings:
            problems.append(f"{len(warnings)} rule evaluation warnings: {warnings[0]}")
        rows = count_rows(count, args.entities)
    expected = args.warmup + args.rounds * args.requests
    for entity, n in rows.items():
        if n != expected:
            problems.append(f"{entity}: {n:,} rows, expected {expected:,}")
    for r in rounds:
        if r.statuses != Counter({201: args.requests}):
            problems.append(f"{r.name}: statuses {dict(r.statuses)}; first: {r.first_error}")
    return BackendResult(backend, rounds, rows, client_cpu, problems)


def run_postgresql(args: argparse.Namespace) -> tuple[BackendResult, str]:
    with postgres_database() as (dsn, version):

        def count(query: str) -> int:
            with psycopg.connect(dsn, autocommit=True) as conn:
                found = conn.execute(query.encode()).fetchone()
            assert found is not None
            return int(found[0])

        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        return run_backend(f"PostgreSQL {version}", url, count, args), version


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


def report(results: list[BackendResult], args: argparse.Namespace) -> str:
    lines = [
        "| backend | entity | runs on create | req/s (median) | rounds min-max "
        "| p50 ms | p99 ms | server CPU | server CPU µs/req | non-201 | rows |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for entity in args.entities:
            rounds = [r for r in result.rounds if r.name == entity]
            rates = [r.requests_per_s for r in rounds]
            latencies = [x for r in rounds for x in r.latencies]
            bad = sum(n for r in rounds for status, n in r.statuses.items() if status != 201)
            lines.append(
                f"| {result.backend} | {entity} | {WHAT[entity]} | {result.median(entity):,.0f} "
                f"| {min(rates):,.0f}-{max(rates):,.0f} | {percentile(latencies, 0.5):.1f} "
                f"| {percentile(latencies, 0.99):.1f} "
                f"| {statistics.median(r.server_cpu for r in rounds):.0%} "
                f"| {statistics.median(r.server_cpu / r.requests_per_s for r in rounds) * 1e6:.0f} "
                f"| {bad} | {result.rows[entity]:,} |"
            )
    extra = args.entities[2:]
    lines += [
        "",
        "| backend | ruled / plain | target | met? |" + "".join(f" {e} / plain |" for e in extra),
        "|---|---:|---:|---|" + "---:|" * len(extra),
    ]
    for result in results:
        lines.append(
            f"| {result.backend} | {result.ratio():.2f}x | ≥ {TARGET}x "
            f"| {'yes' if result.met else '**NO**'} |"
            + "".join(f" {result.ratio(e):.2f}x |" for e in extra)
        )
    cpu = ", ".join(f"{r.backend} {r.client_cpu:.0%}" for r in results)
    lines += [
        "",
        f"{args.rounds} rounds of {args.requests:,} POSTs per entity (ABBA order) after "
        f"{args.warmup:,} warm-up POSTs each, {args.concurrency} keep-alive connections; "
        f"one `tessera serve` process per backend. Server CPU: the server process's CPU "
        "time over the round (100 % = one core), and per request. "
        f"Load client CPU: {cpu} of one core.",
        "The 2 triggers create an order (won deals) or a note (lost deals): about 20 % of "
        "the ruled creates write a second record.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="POSTs per round")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per entity (even: ABBA)")
    parser.add_argument("--warmup", type=int, default=1000, help="warm-up POSTs per entity")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--pool-size", type=int, default=None, help="the server's pool_size (default: Tessera's)"
    )
    parser.add_argument(
        "--backends", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure 'computed' (the computed fields and required_if, no rules) and "
        "'one_rule' (one rule that always holds: the cost of the write's transaction)",
    )
    args = parser.parse_args(argv)
    args.entities = ENTITIES + BREAKDOWN if args.breakdown else ENTITIES
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
