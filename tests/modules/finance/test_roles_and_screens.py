"""The finance pack's roles and screens, on SQLite and PostgreSQL: the receivables clerk
drafts but cannot submit, the accountant submits, the viewer only reads; the fixture chart
is there after migrating; the finance dashboard and the forms render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from runtime.app import build_app
from tests.modules.finance.conftest import FINANCE, Books
from tests.support.fixture_records import load_fixtures
from tests.support.identity import bearer, issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from tests.conftest import Instance

PASSWORD = "correct horse battery"


def test_the_chart_is_loaded_once_and_kept(books: Books, finance: Instance) -> None:
    chart = books.get(f"{FINANCE}/account?limit=100&sort=code")
    assert len(chart) == 32
    by_code = {a["code"]: a for a in chart}
    assert by_code["1200"]["account_type"] == "receivable"
    assert by_code["1200"]["parent"] == by_code["1000"]["id"]
    assert by_code["5990"]["account_type"] == "round_off"
    assert load_fixtures(finance) == 33  # loading again upserts the same records: no duplicates
    assert len(books.get(f"{FINANCE}/account?limit=100")) == 32


def test_clerk_drafts_accountant_submits_viewer_reads(books: Books, finance: Instance) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    url = finance.settings.database_url
    with TestClient(build_app(finance.settings), raise_server_exceptions=False) as client:
        clerk = bearer(issue_token(url, "cleo", ("ar_clerk",)))
        accountant = bearer(issue_token(url, "acco", ("accountant",)))
        viewer = bearer(issue_token(url, "vic", ("finance_viewer",)))
        body = {"account": acme, "lines": [{"item": bolt, "quantity": "1", "rate": "5.00"}]}
        made = client.post(f"{FINANCE}/sales_invoice", json=body, headers=clerk)
        assert made.status_code == 201, made.text
        invoice = made.json()["data"]["id"]
        path = f"{FINANCE}/sales_invoice/{invoice}"
        assert client.post(f"{path}/_submit", headers=clerk).status_code == 403
        assert client.post(f"{path}/_submit", headers=viewer).status_code == 403
        assert client.patch(path, json={"is_overdue": True}, headers=clerk).status_code in (
            403,
            422,
        )
        assert client.post(f"{path}/_submit", headers=accountant).status_code == 200
        assert client.get(path, headers=viewer).status_code == 200
        assert client.post(f"{FINANCE}/sales_invoice", json=body, headers=viewer).status_code == 403
        # the clerk records payments received, not payments made
        pay = {"payment_type": "pay", "account": acme, "amount": "5.00"}
        assert client.post(f"{FINANCE}/payment", json=pay, headers=clerk).status_code == 403
        # nobody writes the ledger
        entry = {"posting_date": "2026-03-01", "account": "1", "debit": "1.00"}
        assert client.post(f"{FINANCE}/gl_entry", json=entry, headers=accountant).status_code == 405


def test_the_dashboard_and_forms_render(books: Books, finance: Instance) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    invoice = books.invoice(acme, [(bolt, "2", "21.00")])
    books.move("sales_invoice", invoice["id"])
    issue_token(finance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(finance, "ada", PASSWORD) as client:
        page = client.get("/app/_dashboards/finance/finance")
        assert page.status_code == 200, page.text[:500]
        assert "Receivables aging" in page.text
        assert "42.00" in page.text
        form = client.get(f"/app/finance/sales_invoice/{invoice['id']}")
        assert form.status_code == 200
        assert "SINV-2026-00001" in form.text
        assert client.get("/app/finance/payment/new").status_code == 200
