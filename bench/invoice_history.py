"""History must not slow the present (issue 18, item 9): the latency of submitting a 10-line
sales invoice with 1,000,000 invoices already in the books against the same with 1,000, in
the same run, on PostgreSQL (ERPNext's submit took 24 s at 1.3 million invoices before an
index fix, erpnext PR #20557).

Two databases of the quote_to_cash instance (``modules/quote_to_cash``, the finance pack's
chart of accounts), each with a history made in bulk SQL (``bench/_erp.py``,
``seed_history``): ``--small`` and ``--large`` submitted invoices over 2022-2026 for 1,000
customers, 2 lines each, with their three balanced ledger rows, postings journal rows and
submit audit rows, the numbering sequences and the customers' rollups (lifetime value,
outstanding, last order date) as the submits would have left them; then ``VACUUM
ANALYZE``. The bulk load is for speed only: ``tessera recompute`` and the SQL checks of the
books pass on it.

Each database gets its own ``tessera serve``. Before each round's clock starts, its drafts
are made with ``_bulk``: 10 lines of history items, for a random customer of the history
(so that the customer's rollups cover 1,000 invoices at 1M), dated 2026-12-0x. A round is
``--requests`` ``POST /api/v1/finance/sales_invoice/{id}/_submit`` on ``--concurrency``
connections (1: the latency of one submit alone); rounds alternate between the two
databases in ABBA order. Every submit must answer 200; afterwards both databases pass the
checks (debits = credits in total and per voucher, no rollup drift).

``--plans``: before the load, a few submits on the large database run with
``auto_explain`` (every statement's plan written to the PostgreSQL server log, read from
``--pg-log``); the benchmark lists every statement a submit ran with its plan's scan nodes
and flags sequential scans of the history's tables.

Target: p50 at ``--large`` within 1.2x of p50 at ``--small``.

Run: ``.venv/bin/python -m bench.invoice_history`` (1,000 vs 1,000,000: about 5 minutes of
loading, 2.5 GB). ``--quick``: 1,000 vs 100,000, fewer submits. Needs PostgreSQL
(``BENCH_PG``, default the ``test`` database on 127.0.0.1); the benchmark creates and drops
its own two databases.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg

from bench._auth import bearer, bench_token
from bench._erp import (
    HISTORY_ITEMS,
    check_books,
    check_drift,
    request,
    seed_history,
    write_instance,
)
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
    from collections.abc import Iterator

TARGET = 1.2
LINES = 10
PG_LOG = "/var/log/postgresql/postgresql-15-main.log"


class Books:
    """One database with its history, its instance folder and its server."""

    def __init__(self, dsn: str, folder: Path, invoices: int) -> None:
        self.dsn = dsn
        self.folder = folder
        self.invoices = invoices
        self.token = ""
        self.version = ""
        self.server: Server | None = None
        self.rng = random.Random(invoices)
        with psycopg.connect(dsn, autocommit=True) as conn:
            self.customers = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM contacts_account WHERE account_number LIKE 'HIST-%'"
                )
            ]
            self.items = [
                str(r[0]) for r in conn.execute("SELECT id FROM inventory_item WHERE sku LIKE 'H%'")
            ]
        assert len(self.items) == HISTORY_ITEMS

    @property
    def name(self) -> str:
        return f"{self.invoices:,}"

    def drafts(self, count: int) -> list[str]:
        """Untimed: ``count`` 10-line draft invoices, made with ``_bulk``; their ids."""
        assert self.server is not None
        bodies = [
            {
                "account": self.rng.choice(self.customers),
                "posting_date": f"2026-12-{self.rng.randint(1, 6):02d}",
                "tax_rate": "19",
                "lines": [
                    {
                        "item": item,
                        "quantity": str(self.rng.randint(1, 9)),
                        "rate": f"{self.rng.randint(100, 99999) / 100:.2f}",
                    }
                    for item in self.rng.sample(self.items, LINES)
                ],
            }
            for _ in range(count)
        ]
        ids: list[str] = []
        with httpx.Client(
            base_url=f"{self.server.base}/api/v1/finance", headers=bearer(self.token), timeout=300
        ) as http:
            for start in range(0, len(bodies), 200):
                answer = http.post("/sales_invoice/_bulk", json=bodies[start : start + 200])
                if answer.status_code != 201:
                    raise RuntimeError(f"_bulk: {answer.status_code} {answer.text[:500]}")
                ids += [str(r["id"]) for r in answer.json()["data"]]
        return ids

    def submits(self, ids: list[str]) -> list[bytes]:
        assert self.server is not None
        return [
            request("POST", f"/finance/sales_invoice/{i}/_submit", self.server.port, self.token)
            for i in ids
        ]


@contextlib.contextmanager
def books(invoices: int) -> Iterator[Books]:
    """A migrated database of the quote_to_cash instance with ``invoices`` in its history."""
    with postgres_database() as (dsn, version), tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_instance(folder, dsn)
        migrate(folder)
        started = time.perf_counter()
        seed_history(dsn, invoices)
        print(
            f"  {invoices:,} invoices loaded in {time.perf_counter() - started:.0f} s", flush=True
        )
        result = Books(dsn, folder, invoices)
        result.token = bench_token(folder, env())
        result.version = version
        yield result


# -- plans ----------------------------------------------------------------------------------

_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[(\d+)\] ")
_SCAN = re.compile(
    r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan|Bitmap Index Scan)"
    r"(?: using (\w+))? on (\w+).*?rows=(\d+)"
)


def plans(target: Books, log: Path, submits: int) -> list[str]:
    """Submit ``submits`` invoices of ``target`` with auto_explain on; one line per distinct
    statement they ran: its scan nodes, flagged when a history table is read sequentially."""
    database = target.dsn.rsplit("/", 1)[1]
    settings = {
        "session_preload_libraries": "auto_explain",
        "auto_explain.log_min_duration": "0",
        "auto_explain.log_nested_statements": "on",
    }
    with psycopg.connect(target.dsn, autocommit=True) as conn:
        for key, value in settings.items():
            conn.execute(f"ALTER DATABASE \"{database}\" SET {key} = '{value}'".encode())
    target.server = Server(target.folder)
    pids: set[str] = set()
    try:
        ids = target.drafts(submits)
        offset = log.stat().st_size  # the submits' statements only
        with httpx.Client(base_url=target.server.base, headers=bearer(target.token)) as http:
            for i in ids:
                answer = http.post(f"/api/v1/finance/sales_invoice/{i}/_submit")
                if answer.status_code != 200:
                    raise RuntimeError(f"submit: {answer.status_code} {answer.text[:300]}")
        with psycopg.connect(target.dsn, autocommit=True) as conn:
            pids = {
                str(r[0])
                for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                )
            }
            for key in settings:
                conn.execute(f'ALTER DATABASE "{database}" RESET {key}'.encode())
    finally:
        target.server.stop()
        target.server = None
    with log.open(encoding="utf-8", errors="replace") as file:
        file.seek(offset)
        text = file.read()
    entries: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        found = _ENTRY.match(line)
        if found:
            entries.append((found.group(1), [line]))
        elif entries:
            entries[-1][1].append(line)
    statements: Counter[str] = Counter()
    found_scans: dict[str, str] = {}
    for pid, lines in entries:
        body = "\n".join(lines)
        if pid not in pids or "plan:" not in body or "Query Text:" not in body:
            continue
        query = body.split("Query Text:", 1)[1].strip().split("\n")[0]
        query = re.sub(r"\s+", " ", query)
        if query.startswith(("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "SET ", "SHOW ")):
            continue
        scans = []
        for kind, index, table, rows in _SCAN.findall(body):
            flag = " **SEQ SCAN OF HISTORY**" if kind == "Seq Scan" and int(rows) > 1000 else ""
            scans.append(f"{kind} {index + ' ' if index else ''}on {table} (rows={rows}){flag}")
        key = query[:160]
        statements[key] += 1
        found_scans[key] = "; ".join(dict.fromkeys(scans)) or "no table scan (Result/Insert)"
    return [f"| {n} | `{q}` | {found_scans[q]} |" for q, n in statements.items()]


# -- load -----------------------------------------------------------------------------------


async def play(target: Books, requests: list[bytes], concurrency: int) -> Round:
    assert target.server is not None
    clients = [await Client.open(target.server.port) for _ in range(concurrency)]
    try:
        return await run_round(clients, target.name, requests, 200)
    finally:
        for client in clients:
            await client.close()


def measure(sides: tuple[Books, Books], args: argparse.Namespace) -> list[Round]:
    rounds: list[Round] = []
    for side in sides:
        run_async(play(side, side.submits(side.drafts(args.warmup)), args.concurrency))
    by_name = {side.name: side for side in sides}
    for group in round_order(tuple(by_name), args.rounds):
        for name in group:
            side = by_name[name]
            prepared = side.submits(side.drafts(args.requests))
            result = run_async(play(side, prepared, args.concurrency))
            rounds.append(result)
            print(
                f"  {side.name:>10} invoices: p50 {percentile(result.latencies, 0.5):6.1f} ms"
                + (f"  unexpected: {dict(result.statuses)}" if result.first_error else ""),
                flush=True,
            )
    return rounds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=1000, help="invoices in the small books")
    parser.add_argument("--large", type=int, default=1_000_000, help="invoices in the large")
    parser.add_argument("--requests", type=int, default=100, help="submits per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per side (ABBA)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--plans", action="store_true", help="log and list the submit's plans")
    parser.add_argument("--pg-log", default=PG_LOG, help="the PostgreSQL server's log file")
    parser.add_argument("--quick", action="store_true", help="1,000 vs 100,000, fewer submits")
    args = parser.parse_args(argv)
    if args.quick:
        args.large, args.requests, args.rounds, args.warmup = 100_000, 50, 2, 10
    load_before = os.getloadavg()
    problems: list[str] = []
    plan_lines: list[str] = []
    with books(args.small) as small, books(args.large) as large:
        if args.plans:
            plan_lines = plans(large, Path(args.pg_log), 3)
        small.server, large.server = Server(small.folder), Server(large.folder)
        try:
            rounds = measure((small, large), args)
        finally:
            for side in (small, large):
                assert side.server is not None
                if "Traceback" in side.server.stop():
                    problems.append(f"{side.name}: the server printed a traceback")
        for side in (small, large):
            found = check_books(side.dsn) + check_drift(side.folder)
            problems += [f"{side.name}: {p}" for p in found]
        version = large.version
    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"PostgreSQL {version}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after\n"
    )
    base = None
    lines = [
        "| invoices in books | submits | p50 ms | p95 ms | ratio (p50) | non-200 |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    ratio = float("nan")
    for name in (small.name, large.name):
        latencies = [x for r in rounds if r.name == name for x in r.latencies]
        bad = sum(n for r in rounds if r.name == name for s, n in r.statuses.items() if s != 200)
        if bad:
            problems.append(f"{name}: {bad} submits did not answer 200")
        p50 = percentile(latencies, 0.5)
        base = base or p50
        ratio = p50 / base
        lines.append(
            f"| {name} | {len(latencies):,} | {p50:.1f} | {percentile(latencies, 0.95):.1f} "
            f"| {ratio:.2f}x | {bad} |"
        )
    print("\n".join(lines))
    print(
        f"\n{args.rounds} rounds of {args.requests} submits per side (ABBA) after {args.warmup} "
        f"warm-up submits, {args.concurrency} connection(s); 10-line invoices of random history "
        f"customers. Target: ratio <= {TARGET}x: {'met' if ratio <= TARGET else '**NOT MET**'}."
    )
    if plan_lines:
        print("\nStatements of a submit at the large size (auto_explain, 3 submits):\n")
        print("| times | statement | scans |\n|---:|---|---|")
        print("\n".join(plan_lines))
    if problems:
        print("\nProblems:")
        for problem in problems:
            print(f"- {problem}")
    return 1 if problems or ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
