"""Adding fields to a large PostgreSQL table: time, and whether the table is rewritten.

One entity (``bench.contact``, 8 fields) is migrated by ``engine.migrate.run_migration`` into
a fresh database and filled with ``--rows`` rows (default 1,000,000). Fields are then added
one at a time, each change cumulative on the same table, by rewriting the entity's YAML and
migrating again:

- a  nullable field                        ``{type: string, max_length: 40}``
- b  field with a constant default         ``{type: string, default: "EUR"}``
- c  required field with a constant default ``{type: integer, required: true, default: 0}``
- d  indexed nullable field                ``{type: string, index: true}`` (the index build
     scans the table; its time is shown on its own)
- a re-run with nothing to change (the fixed cost of a migration)
- e  baseline: a nullable column added by a hand-written ``ALTER TABLE ... ADD COLUMN``
     through psycopg (fresh connection, one transaction), measured in the same run

One untimed re-run right after filling warms the process up. Each change is then timed end
to end around ``run_migration`` (engine, connection, system-table check, comparison with the
live schema, DDL, bookkeeping, commit); the time spent inside the DDL statements is measured
by a SQLAlchemy cursor-execute listener. A new ``pg_class.relfilenode`` after the change
means PostgreSQL rewrote the table. After each change the existing rows are read back: a
nullable field must be NULL in every row, a field with a default must hold the default in
every row.

Target (issue): a nullable field or one with a constant default is added in under 1 s at any
table size, without a rewrite (a, b, c). Exits non-zero if a target or a check is missed.

Run: ``.venv/bin/python -m bench.migrate_columns`` (``--rows 100000`` for a quick run).
Needs PostgreSQL 11 or later (``BENCH_PG``, default the ``test`` database on 127.0.0.1); the
benchmark creates and drops its own ``tessera_bench_<random>`` database.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engine.migrate import Plan

PG_ADMIN = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
TABLE = "bench_contact"
TARGET_S = 1.0
IMPORT_RETRIES = 5

MODULE_YAML = 'name: bench\nversion: "1.0.0"\n'
ENTITY_YAML = """\
label: Contact
title: name
fields:
  name:    {type: string, required: true, max_length: 120}
  email:   {type: email}
  phone:   {type: phone}
  city:    {type: string, max_length: 80}
  amount:  {type: decimal, precision: 12, scale: 2}
  created: {type: date}
  active:  {type: boolean, default: true}
  notes:   {type: text}
"""
FILL_SQL = f"""
INSERT INTO {TABLE}
    (name, email, phone, city, amount, created, active, notes, created_at, updated_at)
SELECT
    'Contact ' || g,
    'contact.' || g || '@example.com',
    '+49 30 ' || lpad((g * 7919 %% 10000000)::text, 7, '0'),
    (ARRAY['Berlin', 'Paris', 'Madrid', 'Rome', 'Vienna', 'Lisbon', 'Oslo', 'Prague'])
        [1 + (g %% 8)::int],
    round((g * 37 %% 10000000) / 100.0, 2),
    date '2020-01-01' + (g %% 2000)::int,
    g %% 3 <> 0,
    CASE WHEN g %% 5 = 0 THEN 'Met at the trade fair, follow up in spring (' || g || ')' END,
    now(),
    now()
FROM generate_series(1, %s::bigint) AS g
"""


@dataclass(frozen=True, slots=True)
class Change:
    key: str
    title: str
    column: str
    definition: str | None
    """The field's YAML; None for the hand-written baseline."""
    read_back: str
    """A predicate every existing row must satisfy after the change."""
    target: bool


CHANGES = (
    Change(
        "a", "nullable field", "region", "{type: string, max_length: 40}", "region IS NULL", True
    ),
    Change(
        "b",
        "field with a constant default",
        "currency",
        '{type: string, default: "EUR"}',
        "currency = 'EUR'",
        True,
    ),
    Change(
        "c",
        "required field with a constant default",
        "priority",
        "{type: integer, required: true, default: 0}",
        "priority = 0",
        True,
    ),
    Change(
        "d",
        "indexed nullable field",
        "segment",
        "{type: string, index: true}",
        "segment IS NULL",
        False,
    ),
)
NO_CHANGE = Change("-", "re-run, nothing to change", "", None, "true", False)
RAW = Change(
    "e",
    "baseline: hand-written ALTER TABLE ADD COLUMN (psycopg)",
    "raw_note",
    None,
    "raw_note IS NULL",
    False,
)
RAW_DDL = f"ALTER TABLE {TABLE} ADD COLUMN raw_note VARCHAR(40)"


@dataclass
class Result:
    change: Change
    seconds: float
    ddl_seconds: float
    index_seconds: float
    steps: int | None
    rewritten: bool
    size_before: int
    size_after: int
    index_growth: int
    """Bytes added to the table's indexes."""
    rows_ok: bool
    """Every existing row reads back NULL or the default, as the change promises."""
    steps_ok: bool
    """A change plans at least one step, a re-run with nothing to change none."""
    sql: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        fast = self.seconds < TARGET_S and not self.rewritten
        return self.rows_ok and self.steps_ok and (fast or not self.change.target)


class StatementTimer:
    """Times every statement that any SQLAlchemy engine runs: ``run_migration`` makes its own
    engine, so the listener is set on the ``Engine`` class."""

    def __init__(self) -> None:
        self.timings: list[tuple[str, float]] = []

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info["bench_started"].pop()
        self.timings.append((" ".join(statement.split()), time.perf_counter() - started))

    def __enter__(self) -> StatementTimer:
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(Engine, "before_cursor_execute", self._before)
        event.remove(Engine, "after_cursor_execute", self._after)

    def ddl(self) -> Iterator[tuple[str, float]]:
        for statement, seconds in self.timings:
            if statement.split(" ", 1)[0].upper() in {"ALTER", "CREATE", "COMMENT", "DROP"}:
                yield statement, seconds


def _import_engine() -> None:
    """Import the engine, waiting out a half-edited ``metadata`` package in a shared checkout."""
    for attempt in range(IMPORT_RETRIES):
        try:
            for module in ("metadata", "metadata.fingerprint", "engine.tables", "engine.migrate"):
                importlib.import_module(module)
            return
        except (ImportError, SyntaxError) as exc:
            if attempt == IMPORT_RETRIES - 1:
                raise
            print(f"import failed ({exc}); retrying in 60 s", file=sys.stderr)
            for name in [m for m in sys.modules if m.split(".")[0] in {"engine", "metadata"}]:
                del sys.modules[name]
            time.sleep(60)


class Bench:
    def __init__(self, root: Path, dsn: str, rows: int) -> None:
        self.packs = root / "packs"
        self.entity_file = self.packs / "bench" / "entities" / "contact.yaml"
        self.dsn = dsn
        self.url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        self.rows = rows
        self.fields: list[str] = []
        self.load_seconds: list[float] = []

    def write_definitions(self) -> None:
        self.entity_file.parent.mkdir(parents=True, exist_ok=True)
        (self.packs / "bench" / "module.yaml").write_text(MODULE_YAML, encoding="utf-8")
        extra = "".join(f"  {line}\n" for line in self.fields)
        self.entity_file.write_text(ENTITY_YAML + extra, encoding="utf-8")

    def migrate(self) -> tuple[Plan, float]:
        """Load the definitions (timed apart, in ``load_seconds``), then run the migration;
        the plan and the wall-clock time of ``run_migration``."""
        import engine.migrate
        import engine.tables
        import metadata
        import metadata.fingerprint

        self.write_definitions()
        started = time.perf_counter()
        project = metadata.load_project(["bench"], [self.packs])
        tables = engine.tables.build_tables(project)
        self.load_seconds.append(time.perf_counter() - started)
        definitions_hash = metadata.fingerprint.definitions_hash(project)
        started = time.perf_counter()
        plan = engine.migrate.run_migration(
            self.url, tables, applied_by="bench", definitions_hash=definitions_hash
        )
        seconds = time.perf_counter() - started
        if plan.refused:
            raise RuntimeError(f"migration refused: {plan.reasons()}")
        return plan, seconds

    def fill(self) -> float:
        started = time.perf_counter()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(FILL_SQL.encode(), (self.rows,))
            # Freeze and analyse now, so autovacuum does not wake up (and hold a lock that
            # ALTER TABLE waits for) during a measurement.
            conn.execute(f"VACUUM (FREEZE, ANALYZE) {TABLE}".encode())
        return time.perf_counter() - started

    def table_state(self) -> tuple[int, int, int]:
        """The table's file node (a new one means a rewrite), size, and its indexes' size."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT relfilenode, pg_relation_size(oid), pg_indexes_size(oid) "
                "FROM pg_class WHERE oid = %s::regclass",
                (TABLE,),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])

    def rows_satisfying(self, predicate: str) -> int:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            query = f"SELECT count(*) FROM {TABLE} WHERE {predicate}".encode()
            row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])

    def run(self, change: Change) -> Result:
        """Apply one change (through Tessera, or by hand for the baseline) and measure it."""
        node_before, size_before, indexes_before = self.table_state()
        raw_ddl: list[tuple[str, float]] = []
        if change.definition is not None:
            self.fields.append(f"{change.column}: {change.definition}")
        with StatementTimer() as timer:
            if change is RAW:
                started = time.perf_counter()
                with psycopg.connect(self.dsn) as conn:  # commits on leaving the block
                    ddl_started = time.perf_counter()
                    conn.execute(RAW_DDL.encode())
                    raw_ddl = [(RAW_DDL, time.perf_counter() - ddl_started)]
                seconds = time.perf_counter() - started
                steps = None
                sql = [RAW_DDL]
            else:
                plan, seconds = self.migrate()
                steps = len(plan.steps)
                sql = plan.sql
        ddl = raw_ddl if change is RAW else list(timer.ddl())
        node_after, size_after, indexes_after = self.table_state()
        return Result(
            change=change,
            seconds=seconds,
            ddl_seconds=sum(s for _, s in ddl),
            index_seconds=sum(s for statement, s in ddl if " INDEX " in f" {statement} "),
            steps=steps,
            rewritten=node_after != node_before,
            size_before=size_before,
            size_after=size_after,
            index_growth=indexes_after - indexes_before,
            rows_ok=self.rows_satisfying(change.read_back) == self.rows,
            steps_ok=change is RAW or (steps == 0) == (change is NO_CHANGE),
            sql=sql,
        )


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def report(results: list[Result], *, rows: int, server: str, load_seconds: float) -> None:
    raw = next(r for r in results if r.change is RAW)
    print(
        f"\nPostgreSQL {server}, {rows:,} rows in {TABLE}, "
        f"{os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}\n"
    )
    print(
        "| change | time (s) | in DDL (s) | index build (s) | steps | rewritten? "
        "| table size | x raw DDL | target | met? |"
    )
    print("|---|---:|---:|---:|---:|---|---|---:|---|---|")
    for r in results:
        size = _mib(r.size_before)
        if r.size_after != r.size_before:
            size += f" → {_mib(r.size_after)}"
        if r.index_growth:
            size += f" (+ {_mib(r.index_growth)} index)"
        target = f"< {TARGET_S:g} s, no rewrite" if r.change.target else ""
        if r.change is NO_CHANGE:
            target = "0 steps"
        met = "yes" if r.met else "**NO**"
        print(
            f"| {r.change.key} {r.change.title} | {r.seconds:.3f} | {r.ddl_seconds:.3f} "
            f"| {r.index_seconds:.3f} | {'' if r.steps is None else r.steps} "
            f"| {'**yes**' if r.rewritten else 'no'} | {size} "
            f"| {r.seconds / raw.seconds:.1f} | {target} | {met} |"
        )
    print(
        "\ntime: wall clock around run_migration (or around connect + ALTER + commit for e); "
        "in DDL: inside ALTER/CREATE/COMMENT statements; rewritten: pg_class.relfilenode "
        "changed; met? also requires every existing row to read back NULL or the default. "
        f"Not in the times: loading the definitions and building the tables, {load_seconds:.3f} s "
        "(best of the runs)."
    )
    print("\nSQL run by each change:\n")
    for r in results:
        print(f"- {r.change.key} {r.change.title}:")
        for statement in r.sql or ["(none)"]:
            print(f"  - `{statement}`")


def _admin(statement: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(statement.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table")
    args = parser.parse_args(argv)
    _import_engine()
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        row = admin.execute("SHOW server_version").fetchone()
        number = admin.execute("SHOW server_version_num").fetchone()
    assert row is not None
    assert number is not None
    if int(number[0]) < 110000:
        print(f"PostgreSQL {row[0]} rewrites tables to add a default; 11 or later is needed")
        return 2
    database = f"tessera_bench_{secrets.token_hex(4)}"
    dsn = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    _admin(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory() as folder:
            bench = Bench(Path(folder), dsn, args.rows)
            bench.migrate()
            fill_s = bench.fill()
            print(f"filled {TABLE} with {args.rows:,} rows in {fill_s:.1f} s")
            # Untimed: the first comparison against a populated table pays one-off costs in
            # this process (SQLAlchemy and Alembic caches), as a running server already has.
            if bench.migrate()[0].steps:
                raise RuntimeError("a migration right after the first one planned steps")
            results = [bench.run(change) for change in (*CHANGES, NO_CHANGE, RAW)]
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    report(results, rows=args.rows, server=str(row[0]), load_seconds=min(bench.load_seconds))
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
