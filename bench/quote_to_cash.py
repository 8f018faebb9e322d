"""Quote to cash, end to end (issue 18, item 9): customer journeys per second through the
HTTP API of one ``tessera serve`` on PostgreSQL, with 16 journeys at a time.

The instance enables ``modules/quote_to_cash`` (sales, orders, finance, inventory,
contacts) and loads the pack's chart of accounts (``tessera migrate``). Untimed setup:
``--items`` stock items in one warehouse, all received by one submitted stock entry (a
million of each), then ``ANALYZE``. One journey is 12 requests, each waiting for the one
before, as a user's screens would:

 1. ``POST /sales/lead`` (a new company and e-mail address per journey)
 2. ``PATCH /sales/lead/{id}`` ``status: converted``: the account, contact and opportunity
 3. ``PATCH /sales/opportunity/{id}`` with 2-4 lines (random items, quantities 1-5)
 4. ``PATCH /sales/opportunity/{id}`` ``stage: closed_won``: the draft sales order
 5. ``POST /orders/sales_order/{id}/_submit``
 6. ``POST /orders/delivery`` of every line in full, 7. its ``_submit``
 8. ``POST /finance/sales_invoice`` of every line (19 % tax), 9. its ``_submit``
10. ``POST /finance/payment`` of the grand total allocated to it, 11. its ``_submit``
12. ``GET /sales/opportunity/{id}``: must say ``order_status: completed``,
    ``payment_status: paid``.

``--concurrency`` (16) connections each run journeys one after the other until
``--journeys`` have been started or ``--seconds`` have passed, after ``--warmup``
journeys that are not counted. Any answer other than the expected status fails the run.
Afterwards: debits equal credits (in total and per voucher), every bin equals its stock
ledger rows, ``tessera recompute`` finds no rollup drift, the server printed no traceback.

The table gives journeys/s and requests/s, p50/p95 per request kind and each kind's share
of the summed request time (what dominates a journey), the server's CPU per journey, and,
with ``--profile`` and py-spy installed (``.venv/bin/pip install py-spy``), the engine's
functions most often on the server's stack.

Run: ``.venv/bin/python -m bench.quote_to_cash`` (``--quick`` for a short run). Needs
PostgreSQL (``BENCH_PG``, default the ``test`` database on 127.0.0.1); the benchmark creates
and drops its own ``tessera_bench_<random>`` database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg

from bench._auth import bearer, bench_token
from bench._erp import (
    Profile,
    WaitSampler,
    call,
    check_books,
    check_drift,
    request,
    write_instance,
)
from bench._erp import trial_balance as ledger_totals
from bench._harness import Client, Server, env, migrate, percentile, postgres_database, run_async

STEPS = (
    "lead create",
    "lead convert",
    "opportunity lines",
    "opportunity won (draft order)",
    "sales order submit",
    "delivery create",
    "delivery submit",
    "invoice create",
    "invoice submit",
    "payment create",
    "payment submit",
    "opportunity read",
)


class Stats:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.journeys = 0
        self.errors: list[str] = []


async def journey(
    client: Client,
    port: int,
    token: str,
    serial: int,
    items: list[str],
    warehouse: str,
    rng: random.Random,
    stats: Stats | None,
) -> None:
    """One customer from lead to cash; raises RuntimeError on an unexpected answer."""

    async def step(kind: str, method: str, path: str, expected: int, body: object = None):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        data = await call(client, request(method, path, port, token, body), expected)
        if stats is not None:
            stats.latencies[kind].append(time.perf_counter() - started)
        return data

    company = f"Journey {serial} GmbH"
    lead = await step(
        STEPS[0],
        "POST",
        "/sales/lead",
        201,
        {
            "first_name": "Ada",
            "last_name": f"Buyer {serial}",
            "company": company,
            "email": f"buyer{serial}@journey.test",
            "source": "website",
        },
    )
    lead = await step(STEPS[1], "PATCH", f"/sales/lead/{lead['id']}", 200, {"status": "converted"})
    opportunity = f"/sales/opportunity/{lead['converted_opportunity']}"
    lines = [
        {"item": item, "quantity": str(rng.randint(1, 5)), "warehouse": warehouse}
        for item in rng.sample(items, rng.randint(2, 4))
    ]
    await step(STEPS[2], "PATCH", opportunity, 200, {"lines": lines})
    won = await step(STEPS[3], "PATCH", opportunity, 200, {"stage": "closed_won"})
    order = await step(STEPS[4], "POST", f"/orders/sales_order/{won['sales_order']}/_submit", 200)
    delivery = await step(
        STEPS[5],
        "POST",
        "/orders/delivery",
        201,
        {
            "sales_order": order["id"],
            "posting_date": "2026-12-08",
            "lines": [
                {
                    "item": x["item"],
                    "quantity": x["quantity"],
                    "warehouse": x["warehouse"],
                    "sales_order_line": x["id"],
                }
                for x in order["lines"]
            ],
        },
    )
    await step(STEPS[6], "POST", f"/orders/delivery/{delivery['id']}/_submit", 200)
    invoice = await step(
        STEPS[7],
        "POST",
        "/finance/sales_invoice",
        201,
        {
            "account": order["account"],
            "sales_order": order["id"],
            "posting_date": "2026-12-08",
            "tax_rate": "19",
            "lines": [
                {
                    "item": x["item"],
                    "quantity": x["quantity"],
                    "rate": x["rate"],
                    "sales_order_line": x["id"],
                }
                for x in order["lines"]
            ],
        },
    )
    invoice = await step(STEPS[8], "POST", f"/finance/sales_invoice/{invoice['id']}/_submit", 200)
    payment = await step(
        STEPS[9],
        "POST",
        "/finance/payment",
        201,
        {
            "account": order["account"],
            "posting_date": "2026-12-09",
            "amount": invoice["grand_total"],
            "allocations": [{"invoice": invoice["id"], "amount": invoice["grand_total"]}],
        },
    )
    await step(STEPS[10], "POST", f"/finance/payment/{payment['id']}/_submit", 200)
    final = await step(STEPS[11], "GET", opportunity, 200)
    if (final["order_status"], final["payment_status"]) != ("completed", "paid"):
        raise RuntimeError(
            f"journey {serial}: opportunity {final['order_status']}/{final['payment_status']}"
        )
    if Decimal(final["outstanding_amount"]) != 0:
        raise RuntimeError(f"journey {serial}: outstanding {final['outstanding_amount']}")


async def drive(
    port: int,
    token: str,
    items: list[str],
    warehouse: str,
    args: argparse.Namespace,
    start_clock: object,
) -> tuple[Stats, float]:
    """The warm-up, then the measured journeys; their stats and the measured seconds."""
    serial = 0
    clients = [await Client.open(port) for _ in range(args.concurrency)]

    async def run(count: int, seconds: float, stats: Stats | None) -> None:
        nonlocal serial
        deadline = time.perf_counter() + seconds
        started = 0

        async def worker(client: Client, rng: random.Random) -> None:
            nonlocal serial, started
            while started < count and time.perf_counter() < deadline:
                started += 1
                serial += 1
                try:
                    await journey(client, port, token, serial, items, warehouse, rng, stats)
                except RuntimeError as exc:
                    if stats is None:
                        raise
                    stats.errors.append(str(exc))
                    continue
                if stats is not None:
                    stats.journeys += 1

        await asyncio.gather(
            *(worker(c, random.Random(1000 * i + 7)) for i, c in enumerate(clients))
        )

    try:
        await run(args.warmup, 3600, None)
        stats = Stats()
        start_clock()  # type: ignore[operator]
        began = time.perf_counter()
        await run(args.journeys, args.seconds, stats)
        seconds = time.perf_counter() - began
    finally:
        for client in clients:
            await client.close()
    return stats, seconds


def setup(base: str, token: str, count: int) -> tuple[list[str], str]:
    """Untimed: ``count`` items and a warehouse, a million of each received."""
    with httpx.Client(base_url=f"{base}/api/v1", headers=bearer(token), timeout=120) as http:

        def made(path: str, body: object, expected: int = 201) -> dict[str, str]:
            answer = http.post(path, json=body)
            if answer.status_code != expected:
                raise RuntimeError(f"{path}: {answer.status_code} {answer.text[:500]}")
            data: dict[str, str] = answer.json()["data"]
            return data

        items = [
            made(
                "/inventory/item",
                {"sku": f"SKU{i:03d}", "name": f"Item {i}", "standard_rate": f"{10 + i}.50"},
            )["id"]
            for i in range(count)
        ]
        warehouse = made("/inventory/warehouse", {"name": "Main"})["id"]
        entry = made(
            "/inventory/stock_entry",
            {
                "purpose": "receipt",
                "posting_date": "2026-12-01",
                "lines": [
                    {
                        "item": i,
                        "target_warehouse": warehouse,
                        "quantity": "1000000",
                        "rate": "7.25",
                    }
                    for i in items
                ],
            },
        )
        made(f"/inventory/stock_entry/{entry['id']}/_submit", None, 200)
    return items, warehouse


def report(
    stats: Stats,
    seconds: float,
    server_cpu: float,
    load: tuple[str, str],
    profile: list[tuple[str, float]],
    waits: list[tuple[str, float]],
    args: argparse.Namespace,
    version: str,
) -> str:
    requests = sum(len(v) for v in stats.latencies.values())
    total = sum(sum(v) for v in stats.latencies.values())
    lines = [
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"PostgreSQL {version}; load average {load[0]} before, {load[1]} after",
        "",
        "| journeys | seconds | journeys/s | requests/s | errors | server CPU | "
        "server CPU ms/journey |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {stats.journeys:,} | {seconds:.1f} | {stats.journeys / seconds:.2f} "
        f"| {requests / seconds:.1f} | {len(stats.errors)} | {server_cpu / seconds:.0%} "
        f"| {server_cpu / max(stats.journeys, 1) * 1000:.0f} |",
        "",
        "| step | requests | p50 ms | p95 ms | mean ms | share of request time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in sorted(STEPS, key=lambda k: -sum(stats.latencies[k])):
        values = stats.latencies[kind]
        if not values:
            continue
        lines.append(
            f"| {kind} | {len(values):,} | {percentile(values, 0.5):.1f} "
            f"| {percentile(values, 0.95):.1f} | {statistics.fmean(values) * 1000:.1f} "
            f"| {sum(values) / total:.0%} |"
        )
    if waits:
        lines += [
            "",
            "| PostgreSQL sessions of the run (sampled every 20 ms) | share |",
            "|---|---:|",
        ]
        lines += [f"| {name} | {share:.0%} |" for name, share in waits]
    if profile:
        lines += ["", "| server function (py-spy, inclusive) | share of samples |", "|---|---:|"]
        lines += [f"| `{name}` | {share:.0%} |" for name, share in profile]
    lines += [
        "",
        f"{args.concurrency} concurrent journeys on keep-alive connections, {args.warmup} warm-up "
        f"journeys, then up to {args.journeys:,} journeys or {args.seconds:.0f} s; "
        f"{args.items} items in stock; one `tessera serve` process (pool size "
        f"{args.pool_size or 'default'}).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--journeys", type=int, default=1000, help="measured journeys (at most)")
    parser.add_argument("--seconds", type=float, default=180, help="measured time (at most)")
    parser.add_argument("--warmup", type=int, default=32, help="journeys before the clock")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--items", type=int, default=40, help="stock items")
    parser.add_argument("--pool-size", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="py-spy the server (if installed)")
    parser.add_argument("--quick", action="store_true", help="200 journeys or 60 s, 16 warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.journeys, args.seconds, args.warmup = 200, 60.0, 16
    problems: list[str] = []
    load_before = os.getloadavg()
    with postgres_database() as (dsn, version), tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        write_instance(folder, dsn, args.pool_size)
        migrate(folder)
        token = bench_token(folder, env())
        server = Server(folder)
        profile: Profile | None = None
        try:
            items, warehouse = setup(server.base, token, args.items)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("ANALYZE")
            cpu: list[float] = []
            sampler = WaitSampler(dsn)

            def start_clock() -> None:
                nonlocal profile
                cpu.append(server.cpu_seconds())
                sampler.start()
                if args.profile:
                    profile = Profile(server.process.pid, int(args.seconds))

            stats, seconds = run_async(
                drive(server.port, token, items, warehouse, args, start_clock)
            )
            server_cpu = server.cpu_seconds() - cpu[0]
            summary = profile.summary() if profile is not None else []
            waits = sampler.stop()
        finally:
            output = server.stop()
        if "Traceback" in output:
            problems.append("the server printed a traceback")
            print(output[-3000:], file=sys.stderr)
        if stats.errors:
            problems.append(f"{len(stats.errors)} journeys failed; first: {stats.errors[0]}")
        problems += check_books(dsn)
        problems += check_drift(folder)
        rows, debit, credit = ledger_totals(dsn)
    load_after = os.getloadavg()
    print(
        report(
            stats,
            seconds,
            server_cpu,
            (f"{load_before[0]:.1f}", f"{load_after[0]:.1f}"),
            summary,
            waits,
            args,
            version,
        )
    )
    print(
        f"\nChecks: {rows:,} ledger rows, debits {debit} = credits {credit}; bins = stock "
        "ledger; no rollup drift"
        if not problems
        else "\nProblems:"
    )
    for problem in problems:
        print(f"- {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
