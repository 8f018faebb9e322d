"""Submit throughput of a delivery that posts (issue 17, item 9): Tessera's ``_submit``
against a hand-written asyncpg app doing the same writes, in the same run, on PostgreSQL.

One pack, ``postbench``: items, warehouses, a ``bin`` balance (``actual_qty`` per item and
warehouse, ``min: 0``), a ``stock_ledger_entry`` ledger, stock receipts, sales orders whose
lines carry a read-only ``delivered_qty`` (an assert keeps it within the ordered quantity,
``code: over_delivery``), and deliveries whose rule ``on: [submit]`` posts one ledger row per
line (moving the bin, ``qty_after`` from it) and adjusts the order line by id (``add:
{delivered_qty: …}``). A 5-line delivery's submit therefore writes its status and audit
row, 5 ledger rows, 5 bin moves, 5 order-line updates (each an update of that record: its
assert, its audit row) and the voucher's journal, in one transaction.

Workload T is ``POST /api/v1/postbench/delivery/{id}/_submit`` (``If-Match: "1"``) to one
``tessera serve`` process. Baseline H is the same request to ``bench/baselines/
postings_app.py`` (raw ASGI, an asyncpg pool of the same size, hand-written SQL, one
``uvicorn`` process with the same loop and parser): in one transaction it moves the status
(version checked) and reads the lines, moves the sales order's version on (locking it: the
engine touches a document before writing its lines on their own), then updates the bins
with a guarded ``UPDATE … SET
actual_qty = actual_qty + $d WHERE item … AND actual_qty + $d >= 0`` sorted by key (the
same row locks in the same fixed order as the engine: bins, then order lines), updates the
order lines the same way (``delivered_qty + $d <= quantity``), appends the 5 ledger rows,
the 15 journal rows and the 11 audit rows the engine writes, then commits (18 statements
with BEGIN and COMMIT; Tessera's statements: see bench/README.md).

Each side has its own warehouse (the same items, the same tables), its own sales orders
and its own drafts, all made before the timed part: items, warehouses and a large receipt
per side, sales orders of 5 lines made with ``_bulk`` and submitted, and each round's
deliveries (5 lines against one random order of the side, a random quantity of 1-3 with
decimals) made with ``_bulk`` before its clock starts. Rounds alternate in ABBA order; the
database is ``ANALYZE``d before each (the development server runs with ``autovacuum =
off``; see the document submit benchmark).

Checks, each failing the run: every submit answers 200 on both sides (no error, no
deadlock, no 409); afterwards, for each side separately, every bin's ``actual_qty`` equals
the sum of its ledger rows exactly, every order line's ``delivered_qty`` equals the sum of
the quantities of the submitted delivery lines that name it, every delivery is submitted
with 5 ledger rows and 15 journal entries, and the server printed no traceback.

Target (issue 17): T >= 0.5x H in req/s (median of the rounds).

Run: ``.venv/bin/python -m bench.postings_submit`` (``--requests 300 --rounds 2 --warmup
100`` for a quick run). Needs PostgreSQL (``BENCH_PG``, default the ``test`` database on
127.0.0.1); the benchmark creates and drops its own ``tessera_bench_<random>`` database.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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
    ServedProcess,
    Server,
    env,
    free_port,
    migrate,
    percentile,
    postgres_database,
    round_order,
    run_async,
    run_round,
)

if TYPE_CHECKING:
    from collections.abc import Callable

PACK = "postbench"
TESSERA, BASELINE = "tessera", "baseline"
NAMES = (TESSERA, BASELINE)
WAREHOUSE = {TESSERA: "T", BASELINE: "H"}
TARGET = 0.5
LINES = 5
ITEMS = 200
STOCK = "1000000"
ORDERED = "400"
"""Each order line's quantity: a line takes up to 3 a delivery, so an order takes 133."""
DELIVERIES_PER_ORDER = 40
BULK = 250

MODULE_YAML = f'name: {PACK}\nversion: "1.0.0"\n'
ENTITIES = {
    "item": "fields:\n  sku: {type: string, unique: true, required: true, max_length: 40}\n",
    "warehouse": "fields:\n  name: {type: string, unique: true, required: true, max_length: 40}\n",
    "bin": """\
balance:
  key: [item, warehouse]
  limits:
    - {field: actual_qty, min: 0, code: insufficient_stock, message: not enough stock}
fields:
  item:       {type: reference, to: item, required: true}
  warehouse:  {type: reference, to: warehouse, required: true}
  actual_qty: {type: decimal, precision: 18, scale: 3, default: 0}
""",
    "stock_ledger_entry": """\
ledger: {amounts: [qty_change], date: posting_date}
fields:
  item:         {type: reference, to: item, required: true}
  warehouse:    {type: reference, to: warehouse, required: true}
  posting_date: {type: date}
  qty_change:   {type: decimal, precision: 18, scale: 3, required: true}
  qty_after:    {type: decimal, precision: 18, scale: 3}
""",
    "receipt": """\
document: true
fields:
  posting_date: {type: date}
  lines:        {type: children, entity: receipt_line}
""",
    "receipt_line": """\
fields:
  item:      {type: reference, to: item, required: true}
  warehouse: {type: reference, to: warehouse, required: true}
  quantity:  {type: decimal, precision: 18, scale: 3, required: true, min: 0.001}
""",
    "sales_order": """\
document: true
fields:
  customer: {type: string, max_length: 80}
  lines:    {type: children, entity: sales_order_line}
""",
    "sales_order_line": """\
fields:
  item:          {type: reference, to: item, required: true}
  warehouse:     {type: reference, to: warehouse, required: true}
  quantity:      {type: decimal, precision: 18, scale: 3, required: true}
  delivered_qty: {type: decimal, precision: 18, scale: 3, default: 0, read_only: true}
""",
    "delivery": """\
document: true
fields:
  posting_date: {type: date}
  sales_order:  {type: reference, to: sales_order}
  lines:        {type: children, entity: delivery_line}
""",
    "delivery_line": """\
fields:
  item:             {type: reference, to: item, required: true}
  warehouse:        {type: reference, to: warehouse, required: true}
  quantity:         {type: decimal, precision: 18, scale: 3, required: true, min: 0.001}
  sales_order_line: {type: reference, to: sales_order_line}
""",
}
POST_STOCK = """\
      post:
        ledger: stock_ledger_entry
        field: quantity
        values:
          item: "{{{{ line.item }}}}"
          warehouse: "{{{{ line.warehouse }}}}"
          posting_date: "{{{{ posting_date }}}}"
          qty_change: "{{{{ {sign}line.quantity }}}}"
        balance: {{entity: bin, add: {{actual_qty: qty_change}}, after: {{qty_after: actual_qty}}}}
"""
RULES = {
    "receipt": "- name: receive\n  on: [submit]\n  actions:\n    - for_each: lines\n"
    + POST_STOCK.format(sign=""),
    "delivery": "- name: deliver\n  on: [submit]\n  actions:\n    - for_each: lines\n"
    + POST_STOCK.format(sign="-")
    + """\
    - for_each: lines
      adjust:
        entity: sales_order_line
        id: "{{ line.sales_order_line or '' }}"
        add: {delivered_qty: "{{ line.quantity }}"}
        field: quantity
""",
    "sales_order_line": """\
- name: not_over_delivered
  assert: "(delivered_qty or 0) <= quantity"
  field: delivered_qty
  code: over_delivery
  message: more would be delivered than was ordered
""",
}


# -- instance -------------------------------------------------------------------------------


def write_instance(folder: Path, database_url: str, pool_size: int) -> None:
    pack = folder / "packs" / PACK
    (pack / "entities").mkdir(parents=True)
    (pack / "rules").mkdir()
    (pack / "module.yaml").write_text(MODULE_YAML, encoding="utf-8")
    for entity, text in ENTITIES.items():
        (pack / "entities" / f"{entity}.yaml").write_text(text, encoding="utf-8")
    for entity, text in RULES.items():
        (pack / "rules" / f"{entity}.yaml").write_text(text, encoding="utf-8")
    config = (
        f"database_url: {json.dumps(database_url)}\nmodules: [{PACK}]\nmodule_paths: [./packs]\n"
        f"pool_size: {pool_size}\n"
    )
    (folder / "tessera.yaml").write_text(config, encoding="utf-8")


class Baseline(ServedProcess):
    """``bench/baselines/postings_app.py`` under uvicorn (one worker, uvloop, httptools, no
    access log: as ``tessera serve``)."""

    def __init__(self, folder: Path, dsn: str, token: str, pool_size: int) -> None:
        port = free_port()
        super().__init__(
            "the baseline",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.baselines.postings_app:app",
                "--port",
                str(port),
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            folder / "baseline.log",
            port=port,
            environment=env()
            | {"POSTBENCH_DSN": dsn, "POSTBENCH_TOKEN": token, "POSTBENCH_POOL": str(pool_size)},
            ready_path="/",
            any_status=True,
        )


class Data:
    """The master data, stock and sales orders of both sides (untimed), and the drafts of
    each round."""

    def __init__(self, base: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=f"{base}/api/v1/{PACK}", headers=bearer(token), timeout=600
        )
        self.items: list[str] = []
        self.warehouses: dict[str, str] = {}
        self.orders: dict[str, list[dict[str, Any]]] = {name: [] for name in NAMES}
        self.rng = random.Random(20261206)

    def close(self) -> None:
        self.http.close()

    def bulk(self, entity: str, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        made: list[dict[str, Any]] = []
        for start in range(0, len(bodies), BULK):
            response = self.http.post(f"/{entity}/_bulk", json=bodies[start : start + BULK])
            if response.status_code != 201:
                raise RuntimeError(f"_bulk {entity}: {response.status_code} {response.text[:500]}")
            made += response.json()["data"]
        return made

    def submit_all(self, entity: str, ids: list[str]) -> None:
        for record_id in ids:
            response = self.http.post(f"/{entity}/{record_id}/_submit")
            if response.status_code != 200:
                raise RuntimeError(f"submit {entity}: {response.status_code} {response.text[:500]}")

    def master(self, deliveries: int) -> None:
        """Items, a warehouse per side, a receipt of ``STOCK`` of every item into each, and
        enough submitted sales orders for ``deliveries`` deliveries per side."""
        items = self.bulk("item", [{"sku": f"SKU-{i:04d}"} for i in range(ITEMS)])
        self.items = [str(item["id"]) for item in items]
        houses = self.bulk("warehouse", [{"name": WAREHOUSE[name]} for name in NAMES])
        self.warehouses = {name: str(h["id"]) for name, h in zip(NAMES, houses, strict=True)}
        receipts = [
            {
                "posting_date": "2026-12-01",
                "lines": [
                    {"item": item, "warehouse": house, "quantity": STOCK}
                    for item in self.items[start : start + 50]
                ],
            }
            for house in self.warehouses.values()
            for start in range(0, ITEMS, 50)
        ]
        self.submit_all("receipt", [str(r["id"]) for r in self.bulk("receipt", receipts)])
        count = deliveries // DELIVERIES_PER_ORDER + 1
        for name in NAMES:
            bodies = [
                {
                    "customer": f"Customer {i}",
                    "lines": [
                        {"item": item, "warehouse": self.warehouses[name], "quantity": ORDERED}
                        for item in self.rng.sample(self.items, LINES)
                    ],
                }
                for i in range(count)
            ]
            orders = self.bulk("sales_order", bodies)
            self.submit_all("sales_order", [str(o["id"]) for o in orders])
            self.orders[name] = orders

    def drafts(self, name: str, n: int) -> list[str]:
        """``n`` delivery drafts of side ``name``, each against one random order of its."""
        bodies = []
        for _ in range(n):
            order = self.rng.choice(self.orders[name])
            lines = [
                {
                    "item": line["item"],
                    "warehouse": line["warehouse"],
                    "quantity": str(Decimal(self.rng.randint(1000, 3000)) / 1000),
                    "sales_order_line": line["id"],
                }
                for line in order["lines"]
            ]
            bodies.append(
                {"posting_date": "2026-12-05", "sales_order": order["id"], "lines": lines}
            )
        return [str(d["id"]) for d in self.bulk("delivery", bodies)]


def submit_request(port: int, token: str, record_id: str, prefix: str) -> bytes:
    return (
        f"POST {prefix}/delivery/{record_id}/_submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f'Authorization: Bearer {token}\r\nIf-Match: "1"\r\nContent-Length: 0\r\n\r\n'
    ).encode()


# -- load -----------------------------------------------------------------------------------


@dataclass
class Side:
    port: int
    prefix: str
    cpu: Callable[[], float]


async def drive(
    data: Data, token: str, sides: dict[str, Side], analyze: Callable[[], None], args: Any
) -> list[Round]:
    async def play(name: str, requests: list[bytes]) -> Round:
        clients = [await Client.open(sides[name].port) for _ in range(args.concurrency)]
        try:
            return await run_round(clients, name, requests, 200)
        finally:
            for client in clients:
                await client.close()

    def requests(name: str, n: int) -> list[bytes]:
        side = sides[name]
        return [submit_request(side.port, token, i, side.prefix) for i in data.drafts(name, n)]

    for name in NAMES:
        warm = await play(name, requests(name, args.warmup))
        if warm.first_error:
            raise RuntimeError(f"warm-up of {name}: {warm.first_error}")
    rounds: list[Round] = []
    for group in round_order(NAMES, args.rounds):
        for name in group:
            prepared = requests(name, args.requests)
            analyze()
            started, cpu_started = time.perf_counter(), sides[name].cpu()
            last = await play(name, prepared)
            last.server_cpu = (sides[name].cpu() - cpu_started) / (time.perf_counter() - started)
            rounds.append(last)
            print(
                f"  {name:<8} {last.requests_per_s:8,.0f} req/s, server CPU {last.server_cpu:4.0%}"
                + (f"  unexpected: {dict(last.statuses)}" if last.first_error else ""),
                flush=True,
            )
    return rounds


# -- checks ---------------------------------------------------------------------------------


def check_books(
    query: Callable[[str], list[tuple[Any, ...]]], warehouses: dict[str, str]
) -> dict[str, list[str]]:
    """For each side: bins = their ledger's sums, order lines' delivered = the sum of the
    submitted deliveries naming them, 5 ledger rows and 15 journal entries per delivery."""
    problems: dict[str, list[str]] = {}
    for name, house in warehouses.items():
        found: list[str] = []
        drift = query(
            f"SELECT b.item, b.actual_qty, s.total FROM {PACK}_bin b LEFT JOIN "
            f"(SELECT item, sum(qty_change) AS total FROM {PACK}_stock_ledger_entry "
            f"WHERE warehouse = {int(house)} GROUP BY item) s ON s.item = b.item "
            f"WHERE b.warehouse = {int(house)} AND b.actual_qty IS DISTINCT FROM s.total"
        )
        if drift:
            found.append(f"{len(drift)} bins differ from their ledger, first: {drift[0]}")
        bins = query(f"SELECT count(*) FROM {PACK}_bin WHERE warehouse = {int(house)}")[0][0]
        if bins != ITEMS:
            found.append(f"{bins} bins, expected {ITEMS}")
        delivered = query(
            f"SELECT l.id, l.delivered_qty, d.total FROM {PACK}_sales_order_line l LEFT JOIN "
            f"(SELECT dl.sales_order_line, sum(dl.quantity) AS total FROM {PACK}_delivery_line dl "
            f"JOIN {PACK}_delivery d ON d.id = dl._parent AND d.docstatus = 'submitted' "
            f"GROUP BY dl.sales_order_line) d ON d.sales_order_line = l.id "
            f"WHERE l.warehouse = {int(house)} AND l.delivered_qty <> coalesce(d.total, 0)"
        )
        if delivered:
            found.append(
                f"{len(delivered)} order lines' delivered_qty differ, first: {delivered[0]}"
            )
        moved = query(
            f"SELECT count(DISTINCT l._parent), "
            f"(SELECT count(*) FROM {PACK}_stock_ledger_entry e WHERE e.warehouse = {int(house)} "
            f"AND e.voucher_type = '{PACK}.delivery'), "
            f"(SELECT count(*) FROM tessera_posting p JOIN {PACK}_delivery_line x ON "
            f"x._parent = p.voucher_id AND x._position = 0 AND x.warehouse = {int(house)} "
            f"WHERE p.voucher_type = '{PACK}.delivery') "
            f"FROM {PACK}_delivery_line l JOIN {PACK}_delivery d ON d.id = l._parent "
            f"WHERE l.warehouse = {int(house)} AND d.docstatus = 'submitted'"
        )[0]
        submitted, ledger_rows, journal_rows = (int(x) for x in moved)
        if ledger_rows != submitted * LINES or journal_rows != submitted * LINES * 3:
            found.append(
                f"{submitted} deliveries submitted, {ledger_rows} ledger rows, "
                f"{journal_rows} journal entries (expected {LINES} and {LINES * 3} each)"
            )
        problems[name] = found
    return problems


# -- run ------------------------------------------------------------------------------------


@dataclass
class Result:
    version: str
    rounds: list[Round]
    problems: list[str] = field(default_factory=list)
    submitted: dict[str, int] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(r.requests_per_s for r in self.rounds if r.name == name)

    def ratio(self) -> float:
        return self.median(TESSERA) / self.median(BASELINE)

    def cpu_per_request(self, name: str) -> float:
        return statistics.median(
            r.server_cpu / r.requests_per_s for r in self.rounds if r.name == name
        )

    @property
    def met(self) -> bool:
        return self.ratio() >= TARGET and not self.problems


def run(args: argparse.Namespace) -> Result:
    with postgres_database() as (dsn, version), tempfile.TemporaryDirectory() as scratch:

        def query(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(dsn, autocommit=True) as conn:
                return conn.execute(sql.encode()).fetchall()

        def analyze() -> None:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(b"ANALYZE")

        folder = Path(scratch)
        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        write_instance(folder, url, args.pool_size)
        migrate(folder)
        token = bench_token(folder, env())
        server = Server(folder)
        baseline: Baseline | None = None
        problems: list[str] = []
        rounds: list[Round] = []
        try:
            data = Data(server.base, token)
            try:
                data.master(args.warmup + args.rounds * args.requests)
                analyze()
                baseline = Baseline(folder, dsn, token, args.pool_size)
                sides = {
                    TESSERA: Side(server.port, f"/api/v1/{PACK}", server.cpu_seconds),
                    BASELINE: Side(baseline.port, "/baseline", baseline.cpu_seconds),
                }
                rounds = run_async(drive(data, token, sides, analyze, args))
            finally:
                data.close()
        finally:
            outputs = {TESSERA: server.stop(), BASELINE: baseline.stop() if baseline else ""}
        for name, output in outputs.items():
            if "Traceback" in output:
                problems.append(f"{name}: the server printed a traceback")
                print(output[-3000:], file=sys.stderr)
        for name, found in check_books(query, data.warehouses).items():
            problems += [f"{name}: {p}" for p in found]
        for r in rounds:
            if r.statuses != Counter({200: args.requests}):
                problems.append(f"{r.name}: statuses {dict(r.statuses)}; first: {r.first_error}")
        return Result(version, rounds, problems)


WHAT = {
    TESSERA: "T: Tessera `_submit` of a 5-line delivery (5 ledger rows, 5 bins, 5 order lines)",
    BASELINE: "H: hand-written asyncpg app, the same writes in one transaction",
}


def report(result: Result, args: argparse.Namespace) -> str:
    lines = [
        "| workload | req/s (median) | rounds min-max | p50 ms | p99 ms | server CPU "
        "| server CPU µs/req | non-200 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in NAMES:
        rounds = [r for r in result.rounds if r.name == name]
        rates = [r.requests_per_s for r in rounds]
        latencies = [x for r in rounds for x in r.latencies]
        bad = sum(n for r in rounds for s, n in r.statuses.items() if s != 200)
        lines.append(
            f"| {WHAT[name]} | {result.median(name):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} "
            f"| {percentile(latencies, 0.5):.1f} | {percentile(latencies, 0.99):.1f} "
            f"| {statistics.median(r.server_cpu for r in rounds):.0%} "
            f"| {result.cpu_per_request(name) * 1e6:.0f} | {bad} |"
        )
    lines += [
        "",
        "| T / H (req/s) | target | met? | H / T (server CPU per request) |",
        "|---:|---:|---|---:|",
        f"| {result.ratio():.2f}x | ≥ {TARGET}x | {'yes' if result.met else '**NO**'} "
        f"| {result.cpu_per_request(BASELINE) / result.cpu_per_request(TESSERA):.2f}x |",
        "",
        f"{args.rounds} rounds of {args.requests:,} submits per side (ABBA order) after "
        f"{args.warmup:,} warm-up submits each, {args.concurrency} keep-alive connections, "
        f"pools of {args.pool_size} connections; the drafts of each round made with `_bulk` "
        "and the database analysed before its clock starts.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1000, help="submits per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per side (even: ABBA)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up submits per side")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--pool-size", type=int, default=10, help="both servers' pools (Tessera's default)"
    )
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    result = run(args)
    print(
        f"\n{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
        f"PostgreSQL {result.version}; load average after: {os.getloadavg()[0]:.1f}\n"
    )
    print(report(result, args))
    if result.problems:
        print("\nProblems:")
        for problem in result.problems:
            print(f"- {problem}")
    return 0 if result.met else 1


if __name__ == "__main__":
    sys.exit(main())
