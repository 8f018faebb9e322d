"""A scheduled rule's run costs what it matches, not the size of the table (issue 19, item
2): one run of ``remind_overdue`` (``where: "not paid and due_date is not none and due_date
< today()"``) over 1,000,000 invoices of which 10 are overdue, with the ``where`` compiled
to SQL (``engine.effects._selection``) against the old way (every id paged through and each
record judged in Python, still the path of a ``where`` SQL cannot say), measured in the
same run on the same database.

The invoices are inserted in bulk SQL (``generate_series``) into the table ``tessera
migrate`` made, then ``VACUUM ANALYZE``: 10 unpaid and overdue, 1,000 overdue but paid, the
rest due in the future. ``due_date`` is indexed (``index: true``). Each run is the rule's
actions on the records it selects (``RuleEffects.run_scheduled``, an ``update`` of
``reminders`` per record), in a transaction rolled back afterwards so every run sees the
same data; runs alternate between the two ways (ABBA).

Run: ``.venv/bin/python -m bench.scheduled_where`` (about 10 minutes, most of it the old
way); ``--quick``: 100,000 invoices, fewer runs. Needs PostgreSQL (``BENCH_PG``, default
the ``test`` database on 127.0.0.1); the benchmark creates and drops its own database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from bench._harness import migrate, postgres_database, round_order, run_async

RULE = "remind_overdue"
WHERE = "not paid and due_date is not none and due_date < today()"
MATCHING = 10
PAID_OVERDUE = 1_000
PACK = {
    "module.yaml": "name: billing\nversion: 1.0.0\n",
    "entities/invoice.yaml": """\
title: number
fields:
  number:    {type: string, required: true}
  due_date:  {type: date, index: true}
  paid:      {type: boolean, default: false}
  reminders: {type: integer, default: 0}
""",
    "rules/invoice.yaml": f"""\
- name: {RULE}
  schedule: "0 9 * * 1-5"
  where: "{WHERE}"
  actions:
    - update: {{values: {{reminders: "{{{{ reminders + 1 }}}}"}}}}
""",
}


class _Undo(Exception):
    """Raised at the end of a run to roll its transaction back."""


def write_instance(folder: Path, dsn: str) -> None:
    pack = folder / "packs" / "billing"
    for relative, text in PACK.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text, encoding="utf-8")
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    (folder / "tessera.yaml").write_text(
        f"database_url: {json.dumps(url)}\nmodules: [billing]\n"
        f"module_paths: [{json.dumps(str(folder / 'packs'))}]\n",
        encoding="utf-8",
    )


def load(dsn: str, rows: int) -> None:
    """``rows`` invoices: ``MATCHING`` overdue and unpaid, ``PAID_OVERDUE`` overdue and
    paid, the rest due in the future; spread over the ids."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO billing_invoice
                (number, due_date, paid, reminders, created_at, updated_at, created_by,
                 updated_by, version)
            SELECT 'INV-' || g,
                   CASE WHEN g %% (%(rows)s / %(matching)s) = 0
                          OR g %% (%(rows)s / %(paid)s) = 1
                        THEN current_date - 1 - (g %% 300)
                        ELSE current_date + 1 + (g %% 1000) END,
                   g %% (%(rows)s / %(matching)s) <> 0,
                   0, now(), now(), 'bench', 'bench', 1
            FROM generate_series(1, %(rows)s) AS g
            """,
            {"rows": rows, "matching": MATCHING, "paid": PAID_OVERDUE},
        )
        conn.execute("VACUUM ANALYZE billing_invoice")
        found = conn.execute(
            "SELECT count(*) FROM billing_invoice WHERE NOT paid AND due_date < current_date"
        ).fetchone()
    if found is None or found[0] != MATCHING:
        raise RuntimeError(f"{found} invoices match, not {MATCHING}")


async def measure(folder: Path, ways: list[str], runs: int) -> dict[str, list[float]]:
    from engine import EngineModel, open_database
    from engine.writes import WriteContext
    from runtime.app import load_definitions
    from runtime.settings import Settings

    settings = Settings.load(folder / "tessera.yaml")
    project = load_definitions(settings)
    url = settings.database_url
    store = EngineModel.for_url(project, url).store("billing", "invoice")
    assert store.effects.selections[RULE] is not None, "the where should compile to SQL"
    database = await open_database(url, pool_size=1)
    times: dict[str, list[float]] = {way: [] for way in ways}
    try:
        if "paged (old)" in ways:  # the plan of the rule's query, once
            chosen = store.effects.selections[RULE]
            async with database.connection() as conn:
                plan = await conn.fetch("EXPLAIN " + chosen.sql.sql, chosen.args(0, 500))
            print("plan of the rule's query:\n  " + "\n  ".join(str(r[0]) for r in plan))
        for order in round_order(tuple(ways), runs):
            for way in order:
                acted = 0
                start = time.perf_counter()
                try:
                    async with database.transaction() as conn:
                        acted = await store.effects.run_scheduled(
                            conn, RULE, WriteContext(), read_all=way == "paged (old)"
                        )
                        times[way].append(time.perf_counter() - start)
                        raise _Undo
                except _Undo:
                    pass
                if acted != MATCHING:
                    raise RuntimeError(f"{way}: acted on {acted} records, not {MATCHING}")
    finally:
        await database.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, fewer runs")
    parser.add_argument("--rows", type=int, default=None)
    options = parser.parse_args()
    rows = options.rows or (100_000 if options.quick else 1_000_000)
    sql_runs, paged_runs = (6, 2) if options.quick else (10, 2)
    with postgres_database() as (dsn, version), tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_instance(folder, dsn)
        migrate(folder)
        started = time.perf_counter()
        load(dsn, rows)
        took = time.perf_counter() - started
        print(f"loaded {rows:,} invoices ({MATCHING} matching) in {took:.0f} s")
        times = run_async(measure(folder, ["sql", "paged (old)"], paged_runs))
        extra = run_async(measure(folder, ["sql"], sql_runs - paged_runs))
        times["sql"] += extra["sql"]
    print(f"\nPostgreSQL {version}, {rows:,} rows, {MATCHING} matching, load: {os.getloadavg()}")
    print(f"where: {WHERE}\n")
    print("| way | runs | median (s) | min (s) | max (s) |")
    print("|---|---:|---:|---:|---:|")
    for way, values in times.items():
        print(
            f"| {way} | {len(values)} | {statistics.median(values):.4f} | "
            f"{min(values):.4f} | {max(values):.4f} |"
        )
    ratio = statistics.median(times["paged (old)"]) / statistics.median(times["sql"])
    print(f"\nratio paged / sql (medians): {ratio:,.0f}x")


if __name__ == "__main__":
    main()
