"""The trial balance over 100,000 general ledger entries (issue 18, item 9): the latency of
the finance pack's reports, each one ``GET /api/v1/finance/gl_entry/_aggregate`` request,
through one ``tessera serve`` on PostgreSQL, beside the same aggregate in hand-written SQL
sent with psycopg (the database's share of it).

The ledger is generated in bulk SQL (``bench/_erp.py``, ``seed_history``), as a read
benchmark allows: ``--entries / 3`` submitted sales invoices over 2022-2026 for 1,000
customers, each with its three balanced rows (receivable with the party, income, output
tax) as a submit writes them, then ``VACUUM ANALYZE``. The reports are the ones
docs/packs/finance.md gives:

- trial balance: ``group_by=account``, ``debit__sum, credit__sum, balance__sum``, up to
  2026-12-31 (every row);
- profit and loss: ``group_by=account``, ``balance__sum`` of income and expense rows of
  2026;
- balance sheet: ``group_by=root_type``, ``balance__sum`` of asset, liability and equity
  rows up to 2026-12-31.

Each is requested ``--requests`` times one after the other on one keep-alive connection
after 5 warm-up requests; every answer must be 200, and the trial balance's debits must
equal its credits and the ledger's totals in SQL.

The server's statements are prepared (asyncpg's statement cache): after five executions
PostgreSQL may switch a statement to its generic plan, which cannot see the date in
``posting_date <= $1`` and estimates a third of the rows; for the trial balance it then
reads every row through the ``posting_date`` index instead of a (parallel) sequential scan.
``--custom-plans`` sets ``plan_cache_mode = force_custom_plan`` on the benchmark's database
to show the difference.

Run: ``.venv/bin/python -m bench.trial_balance`` (``--quick``: 20 requests each). Needs
PostgreSQL (``BENCH_PG``, default the ``test`` database on 127.0.0.1); the benchmark
creates and drops its own ``tessera_bench_<random>`` database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psycopg

from bench._auth import bench_token
from bench._erp import request, seed_history, trial_balance, write_instance
from bench._harness import (
    Client,
    Round,
    Server,
    env,
    migrate,
    percentile,
    postgres_database,
    run_async,
    run_round,
)

REPORTS = {
    "trial balance": (
        "group_by=account&measures=debit__sum,credit__sum,balance__sum"
        "&posting_date__lte=2026-12-31",
        "SELECT account, count(*), sum(debit), sum(credit), sum(balance) FROM finance_gl_entry "
        "WHERE posting_date <= '2026-12-31' GROUP BY account ORDER BY account",
    ),
    "profit and loss 2026": (
        "group_by=account&measures=balance__sum&root_type__in=income,expense"
        "&posting_date__gte=2026-01-01&posting_date__lte=2026-12-31",
        "SELECT account, count(*), sum(balance) FROM finance_gl_entry "
        "WHERE root_type IN ('income', 'expense') AND posting_date >= '2026-01-01' "
        "AND posting_date <= '2026-12-31' GROUP BY account ORDER BY account",
    ),
    "balance sheet": (
        "group_by=root_type&measures=balance__sum&root_type__in=asset,liability,equity"
        "&posting_date__lte=2026-12-31",
        "SELECT root_type, count(*), sum(balance) FROM finance_gl_entry "
        "WHERE root_type IN ('asset', 'liability', 'equity') AND posting_date <= '2026-12-31' "
        "GROUP BY root_type ORDER BY root_type",
    ),
}


async def play(port: int, token: str, query: str, count: int) -> Round:
    raw = request("GET", f"/finance/gl_entry/_aggregate?{query}", port, token)
    client = await Client.open(port)
    try:
        await run_round([client], "warm-up", [raw] * 5, 200)
        return await run_round([client], query, [raw] * count, 200, keep_bodies=True)
    finally:
        await client.close()


def sql_latencies(dsn: str, sql: str, count: int) -> list[float]:
    """The same aggregate sent by psycopg (prepared after the first runs, as the server's)."""
    latencies = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(count + 5):
            started = time.perf_counter()
            conn.execute(sql.encode(), prepare=True).fetchall()
            if i >= 5:
                latencies.append(time.perf_counter() - started)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=100_000, help="general ledger rows")
    parser.add_argument("--requests", type=int, default=100, help="requests per report")
    parser.add_argument("--quick", action="store_true", help="20 requests per report")
    parser.add_argument(
        "--custom-plans",
        action="store_true",
        help="the database set to plan_cache_mode = force_custom_plan (see the docstring)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.requests = 20
    problems: list[str] = []
    load_before = os.getloadavg()
    results: list[tuple[str, Round, list[float], int]] = []
    with postgres_database() as (dsn, version), tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_instance(folder, dsn)
        migrate(folder)
        seed_history(dsn, -(-args.entries // 3))
        rows, debit, credit = trial_balance(dsn)
        if args.custom_plans:
            with psycopg.connect(dsn, autocommit=True) as conn:
                database = dsn.rsplit("/", 1)[1]
                conn.execute(
                    f'ALTER DATABASE "{database}" SET plan_cache_mode = force_custom_plan'.encode()
                )
        token = bench_token(folder, env())
        server = Server(folder)
        try:
            for name, (query, sql) in REPORTS.items():
                answer = run_async(play(server.port, token, query, args.requests))
                groups = json.loads(answer.bodies[0])["data"]
                results.append((name, answer, sql_latencies(dsn, sql, args.requests), len(groups)))
                if answer.first_error:
                    problems.append(f"{name}: {dict(answer.statuses)} {answer.first_error}")
                if name == "trial balance":
                    debits = sum(Decimal(g["debit__sum"]) for g in groups)
                    credits = sum(Decimal(g["credit__sum"]) for g in groups)
                    counted = sum(int(g["count"]) for g in groups)
                    if (debits, credits, counted) != (Decimal(debit), Decimal(credit), rows):
                        problems.append(
                            f"trial balance: {counted} rows, {debits} / {credits}; "
                            f"the ledger: {rows} rows, {debit} / {credit}"
                        )
        finally:
            if "Traceback" in server.stop():
                problems.append("the server printed a traceback")
    load_after = os.getloadavg()
    print(
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"PostgreSQL {version}; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after\n"
    )
    print(
        "| report (one `_aggregate` request) | groups | p50 ms | p95 ms | SQL alone p50 ms "
        "| non-200 |\n|---|---:|---:|---:|---:|---:|"
    )
    for name, answer, alone, groups in results:
        bad = sum(n for s, n in answer.statuses.items() if s != 200)
        print(
            f"| {name} | {groups} | {percentile(answer.latencies, 0.5):.1f} "
            f"| {percentile(answer.latencies, 0.95):.1f} | {percentile(alone, 0.5):.1f} | {bad} |"
        )
    print(
        f"\n{rows:,} general ledger rows (debits {debit} = credits {credit}), generated in bulk "
        f"SQL as {-(-args.entries // 3):,} submitted 2-line invoices; {args.requests} requests "
        "per report, one after the other, after 5 warm-up requests"
        + ("; plan_cache_mode = force_custom_plan." if args.custom_plans else ".")
    )
    if problems:
        print("\nProblems:")
        for problem in problems:
            print(f"- {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
