"""What the benchmarks of the ERP packs share (issue 18, item 9): an instance of
``modules/quote_to_cash`` (with sales, orders, finance, inventory and contacts) on a scratch
PostgreSQL database, JSON requests for the harness's keep-alive client, the books checked
in SQL afterwards (the trial balance, every bin against its stock ledger, every voucher
balanced) and ``tessera recompute`` for rollup drift, an optional py-spy profile of the
server, and a history of submitted sales invoices generated in bulk SQL for the read and
"history must not slow the present" benchmarks."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from bench._harness import REPO, env

if TYPE_CHECKING:
    from bench._harness import Client

MODULES = Path(os.environ.get("BENCH_MODULES", REPO / "modules"))
"""The packs benchmarked: the repository's, or a copy of them (``BENCH_MODULES``) to compare
two versions of a pack."""


def write_instance(folder: Path, dsn: str, pool_size: int | None = None) -> None:
    """``tessera.yaml`` of an instance of the quote_to_cash pack on the database ``dsn``."""
    url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
    config = (
        f"database_url: {json.dumps(url)}\nmodules: [quote_to_cash]\n"
        f"module_paths: [{json.dumps(str(MODULES))}]\n"
    )
    if pool_size is not None:
        config += f"pool_size: {pool_size}\n"
    (folder / "tessera.yaml").write_text(config, encoding="utf-8")


def request(method: str, path: str, port: int, token: str, body: Any = None) -> bytes:
    """One HTTP/1.1 request to ``/api/v1{path}``, its body as JSON."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"{method} /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def call(client: Client, raw: bytes, expected: int) -> dict[str, Any]:
    """Send ``raw``; its ``data``, or RuntimeError naming the status and the body."""
    status, body = await client.send(raw)
    if status != expected:
        raise RuntimeError(f"{raw.split(b' ', 2)[:2]!r}: {status} {body[:400]!r}")
    data: dict[str, Any] = json.loads(body)["data"]
    return data


# -- checks ---------------------------------------------------------------------------------


def check_books(dsn: str) -> list[str]:
    """The books in SQL: debits equal credits in total and per voucher, and every bin holds
    what its stock ledger rows add up to (quantity and value) and is not negative."""
    problems: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(sum(debit), 0), coalesce(sum(credit), 0) "
            "FROM finance_gl_entry"
        ).fetchone()
        assert row is not None
        if row[1] != row[2]:
            problems.append(f"trial balance: debits {row[1]} != credits {row[2]}")
        unbalanced = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM finance_gl_entry "
            "GROUP BY voucher_type, voucher_id HAVING sum(debit) <> sum(credit)) v"
        ).fetchone()
        if unbalanced and unbalanced[0]:
            problems.append(f"{unbalanced[0]} vouchers do not balance")
        wrong = conn.execute(
            """
            SELECT count(*) FROM inventory_bin b FULL JOIN (
                SELECT item, warehouse, sum(qty_change) AS qty,
                       sum(stock_value_difference) AS value
                FROM inventory_stock_ledger_entry GROUP BY item, warehouse
            ) l ON l.item = b.item AND l.warehouse = b.warehouse
            WHERE b.id IS NULL OR l.item IS NULL OR b.actual_qty <> l.qty
               OR b.stock_value <> l.value OR b.actual_qty < 0
            """
        ).fetchone()
        if wrong and wrong[0]:
            problems.append(f"{wrong[0]} bins differ from their stock ledger rows")
    return problems


def check_drift(folder: Path) -> list[str]:
    """``tessera recompute`` (no ``--fix``): every rollup equals its source records."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "recompute"],
        cwd=folder,
        env=env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return [f"rollup drift: {(done.stdout + done.stderr).strip()[-1500:]}"]
    return []


def trial_balance(dsn: str) -> tuple[int, str, str]:
    """Rows, total debit and total credit of the general ledger."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), sum(debit)::text, sum(credit)::text FROM finance_gl_entry"
        ).fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), str(row[2])


# -- profile --------------------------------------------------------------------------------


OWN_CODE = ("engine/", "runtime/api", "runtime/", "metadata/")


class Profile:
    """``py-spy record`` of the server process while it runs (when py-spy is installed), and
    a summary: the share of samples in which each of the engine's functions is on the stack
    (inclusive time)."""

    def __init__(self, pid: int, seconds: int) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.path = Path(tempfile.mkdtemp()) / "profile.txt"
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            print("  (py-spy not installed: no profile)", flush=True)
            return
        self.process = subprocess.Popen(
            [
                *(spy, "record", "--format", "raw", "--rate", "200", "--duration", str(seconds)),
                *("--pid", str(pid), "--output", str(self.path), "--nonblocking"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def summary(self, top: int = 15) -> list[tuple[str, float]]:
        """Stop recording; (function, share of samples) of the repository's functions,
        most first."""
        if self.process is None:
            return []
        self.process.send_signal(signal.SIGINT)
        _, err = self.process.communicate(timeout=120)
        if not self.path.exists():
            print(f"  (py-spy failed: {err.decode(errors='replace')[-300:]})", flush=True)
            return []
        inclusive: Counter[str] = Counter()
        total = 0
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            samples = int(count)
            total += samples
            seen = set()
            for frame in stack.split(";"):
                name, _, where = frame.partition(" (")
                if not where.startswith(OWN_CODE) or where.startswith("runtime/app.py"):
                    continue
                key = f"{where.rsplit(':', 1)[0]}:{name}"
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += samples
        return [(k, v / total) for k, v in inclusive.most_common(top)] if total else []


_TARGET = re.compile(r'(?:UPDATE|INSERT INTO|FROM)\s+"?(\w+)', re.IGNORECASE)


class WaitSampler(threading.Thread):
    """What the database's sessions of the benchmark's database are doing, sampled every
    20 ms from ``pg_stat_activity`` while the load runs: on CPU (active, no wait event),
    waiting on a lock, on I/O, on the client (idle in transaction), ..."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.counts: Counter[str] = Counter()
        self._done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._done.wait(0.02):
                for state, kind, event, query in conn.execute(
                    "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend' AND state <> 'idle'"
                ).fetchall():
                    if state == "idle in transaction":
                        self.counts["idle in transaction (the server's Python)"] += 1
                    elif kind is None:
                        self.counts["active: running (CPU)"] += 1
                    elif kind == "Lock":
                        found = _TARGET.search(query or "")
                        table = found.group(1) if found else "?"
                        self.counts[
                            f"active: waiting on a lock ({event}) in a statement on {table}"
                        ] += 1
                    else:
                        self.counts[f"active: waiting on {kind}:{event}"] += 1

    def stop(self) -> list[tuple[str, float]]:
        """Stop sampling; each state's share of the busy session samples, most first."""
        self._done.set()
        self.join()
        total = sum(self.counts.values())
        return [(k, v / total) for k, v in self.counts.most_common(8)] if total else []


# -- history --------------------------------------------------------------------------------

HISTORY_CUSTOMERS = 1000
HISTORY_ITEMS = 50
HISTORY_LINES = 2
TAX_RATE = 19


def seed_history(dsn: str, invoices: int, customers: int = HISTORY_CUSTOMERS) -> None:
    """``invoices`` submitted sales invoices in bulk SQL, consistent with what their submits
    would have written: ``customers`` customers and ``HISTORY_ITEMS`` items; each invoice of
    ``HISTORY_LINES`` lines with 19 % tax, numbered ``SINV-<year>-<n>`` per year (the
    sequences set to match), posted over 2022-01-01 .. 2026-11-30, unpaid; its three
    balanced ledger rows (receivable with the party, income, output tax) with their postings
    journal rows, and its submit's audit row; the customers' rollups (lifetime value,
    outstanding, last order date) set from them. Then ``VACUUM ANALYZE``. The chart of
    accounts is the pack's."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("SET work_mem = '64MB'")
        accounts: dict[str, int] = dict(
            conn.execute(
                "SELECT code, id FROM finance_account WHERE code IN ('1200', '2200', '4100')"
            ).fetchall()
        )
        ar, tax, income = (accounts[c] for c in ("1200", "2200", "4100"))
        conn.execute(
            """
            INSERT INTO contacts_account (name, type, account_number, created_at, updated_at,
                                          created_by, updated_by)
            SELECT 'Customer ' || c, 'customer', 'HIST-' || lpad(c::text, 6, '0'),
                   now(), now(), '1', '1'
            FROM generate_series(1, %(n)s) c
            """,
            {"n": customers},
        )
        conn.execute(
            """
            INSERT INTO inventory_item (sku, name, uom, is_stock_item, standard_rate,
                                        created_at, updated_at, created_by, updated_by)
            SELECT 'H' || i, 'History item ' || i, 'Nos', false, 10 + i, now(), now(), '1', '1'
            FROM generate_series(1, %(n)s) i
            """,
            {"n": HISTORY_ITEMS},
        )
        conn.execute(
            """
            CREATE TEMP TABLE h AS
            SELECT n, d AS posting_date,
                   extract(year FROM d)::int AS year,
                   row_number() OVER (PARTITION BY extract(year FROM d) ORDER BY n) AS ordinal,
                   (SELECT min(id) FROM contacts_account) + (n %% %(customers)s) AS account,
                   (SELECT min(id) FROM inventory_item WHERE sku LIKE 'H%%') AS item0,
                   net, round(net * %(tax)s / 100, 2) AS tax
            FROM (
                SELECT n, date '2022-01-01' + (n * 1794 / %(invoices)s)::int AS d,
                       (100 + (n * 7919) %% 90000)::numeric / 100 * 2 AS net
                FROM generate_series(1::bigint, %(invoices)s) n
            ) s
            """,
            {"customers": customers, "invoices": invoices, "tax": TAX_RATE},
        )
        conn.execute(
            """
            INSERT INTO finance_sales_invoice (
                id, number, account, posting_date, due_date, currency, exchange_rate, is_return,
                tax_rate, net_total, tax_amount, grand_total, base_net_total, base_tax_amount,
                base_grand_total, paid_amount, credited_amount, outstanding, base_outstanding,
                is_overdue, aging_bucket, status, address_display, docstatus, created_at,
                updated_at, created_by, updated_by, version)
            SELECT n, 'SINV-' || year || '-' ||
                   CASE WHEN ordinal < 100000 THEN lpad(ordinal::text, 5, '0')
                        ELSE ordinal::text END, account,
                   posting_date, posting_date + 30, 'EUR', 1, false, %(tax)s, net, tax,
                   net + tax, net, tax, net + tax,
                   0, 0, net + tax, net + tax, false, '0-30', 'unpaid',
                   'Bill to: -', 'submitted', posting_date, posting_date, '1', '1', 3
            FROM h
            """,
            {"tax": TAX_RATE},
        )
        conn.execute(
            """
            INSERT INTO finance_sales_invoice_line (_parent, _position, item, description,
                quantity, rate, amount, created_at, updated_at, created_by, updated_by)
            SELECT n, p, item0 + ((n + p) %% %(items)s), 'History item', 2, net / 2 / %(lines)s,
                   net / %(lines)s, posting_date, posting_date, '1', '1'
            FROM h, generate_series(0, %(lines)s - 1) p
            """,
            {"items": HISTORY_ITEMS, "lines": HISTORY_LINES},
        )
        gl = """
            INSERT INTO finance_gl_entry (posting_date, account, debit, credit, party, remark,
                root_type, balance, voucher_type, voucher_id, is_reversal, created_at,
                updated_at, created_by, updated_by)
            SELECT posting_date, a, dr, cr, party, remark, rt, dr - cr, vt, vid, false,
                   posting_date, posting_date, '1', '1'
            FROM (
                SELECT posting_date, %(ar)s AS a, net + tax AS dr, 0 AS cr, account AS party,
                       'SINV ' || n AS remark, 'asset' AS rt, 'finance.sales_invoice' AS vt,
                       n AS vid, 0 AS seq FROM h
                UNION ALL
                SELECT posting_date, %(income)s, 0, net, NULL, 'SINV ' || n, 'income',
                       'finance.sales_invoice', n, 1 FROM h
                UNION ALL
                SELECT posting_date, %(tax)s, 0, tax, NULL, 'SINV ' || n, 'liability',
                       'finance.sales_invoice', n, 2 FROM h
                ORDER BY 1, vid, seq
            ) rows (posting_date, a, dr, cr, party, remark, rt, vt, vid, seq)
        """
        conn.execute(gl, {"ar": ar, "income": income, "tax": tax})
        conn.execute(
            """
            INSERT INTO tessera_posting (voucher_type, voucher_id, seq, kind, target, target_id,
                                         deltas, at)
            SELECT voucher_type, voucher_id,
                   row_number() OVER (PARTITION BY voucher_type, voucher_id ORDER BY id) - 1,
                   'ledger', 'finance.gl_entry', id, '{}', ''
            FROM finance_gl_entry
            """
        )
        conn.execute(
            """
            INSERT INTO tessera_audit (at, user_id, entity, record_id, action, changes)
            SELECT extract(epoch FROM posting_date), '1', 'finance.sales_invoice', n::text,
                   'submit', '{"docstatus":["draft","submitted"]}'
            FROM h
            """
        )
        conn.execute(
            """
            INSERT INTO tessera_sequence (series, value)
            SELECT 'finance.sales_invoice.number:SINV-' || year || '-{#####}', max(ordinal)
            FROM h GROUP BY year
            ON CONFLICT (series) DO UPDATE SET value = excluded.value
            """
        )
        conn.execute(
            """
            UPDATE contacts_account a SET lifetime_value = s.ltv, outstanding = s.out,
                   last_order_date = s.last
            FROM (SELECT account, sum(net + tax) AS ltv,
                         sum(net + tax) AS out,
                         max(posting_date) AS last FROM h GROUP BY account) s
            WHERE a.id = s.account
            """
        )
        for table in ("finance_sales_invoice", "finance_sales_invoice_line", "finance_gl_entry"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))".encode()
            )
        conn.execute("DROP TABLE h")
        conn.execute("VACUUM ANALYZE")
