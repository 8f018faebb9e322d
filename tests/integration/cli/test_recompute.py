"""``tessera recompute``: finds the rollup values that differ from their source records,
exits 1 on drift, rewrites them with ``--fix``, and takes the fields or entities to check."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import pack_instance
from tests.integration.api.test_rollups import FILES, _sql
from tests.support.cli import tessera
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from pathlib import Path


def test_recompute_reports_drift_and_fixes_it(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "books", FILES)
    with instance.client() as api:
        acme = api.post("/api/v1/books/account", json={"name": "Acme"}).json()["data"]["id"]
        invoice = api.post(
            "/api/v1/books/invoice",
            json={"account": acme, "grand_total": "12.50", "posting_date": "2026-05-01"},
        ).json()["data"]
        assert api.post(f"/api/v1/books/invoice/{invoice['id']}/_submit").status_code == 200
        version = api.get(f"/api/v1/books/account/{acme}").json()["data"]["version"]
    clean = tessera("recompute", cwd=instance.path)
    assert (clean.returncode, clean.stdout.strip()) == (0, "no drift in 9 rollup fields")

    three = 300 if db_url.startswith("sqlite") else 3  # SQLite holds a decimal in cents
    _sql(instance, f"UPDATE books_account SET lifetime_value = {three}, invoice_count = 9")
    _sql(instance, "UPDATE books_order_line SET invoiced_lines = 4")  # no order lines: no drift
    found = tessera("recompute", cwd=instance.path)
    assert found.returncode == 1
    assert found.stdout.splitlines() == [
        f"books.account.lifetime_value of record {acme}: 3.00 stored, 12.50 expected",
        f"books.account.invoice_count of record {acme}: 9 stored, 1 expected",
    ]
    assert "2 values drifted in 9 rollup fields; `tessera recompute --fix`" in found.stderr

    only = tessera("recompute", "books.account.invoice_count", cwd=instance.path)
    assert only.returncode == 1
    assert only.stdout.splitlines()[0].startswith("books.account.invoice_count of record")
    assert "1 value drifted in 1 rollup field" in only.stderr
    entity = tessera("recompute", "books.sales_order", cwd=instance.path)
    assert (entity.returncode, entity.stdout.strip()) == (0, "no drift in 2 rollup fields")

    fixed = tessera("recompute", "--fix", cwd=instance.path)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.splitlines()[-1] == "fixed 2 values in 9 rollup fields"
    assert_no_drift(instance.settings)
    with instance.client() as api:
        account = api.get(f"/api/v1/books/account/{acme}").json()["data"]
    assert (account["lifetime_value"], account["invoice_count"]) == ("12.50", 1)
    assert account["version"] == version + 1  # one UPDATE for the group's two fields

    unknown = tessera("recompute", "books.account.name", "books.nothing", cwd=instance.path)
    assert unknown.returncode == 1
    assert "no rollup keeps books.account.name, books.nothing (rollups: " in unknown.stderr
    assert "books.account.invoice_count" in unknown.stderr
