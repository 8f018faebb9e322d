"""The finance pack's reports through HTTP, on SQLite and PostgreSQL: profit and loss,
the balance sheet and the trial balance of a small posted ledger (a journal entry before
the period, capital, a sale and a purchase with VAT, both paid, rent, and a sale after
the period), each figure checked against sums computed by hand; who may run them; bad
parameters answered with a problem, never a 500."""

from __future__ import annotations

import concurrent.futures
import csv
import datetime as dt
import io
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from runtime.app import build_app
from tests.modules.finance.conftest import FINANCE, Books
from tests.support.identity import bearer, issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from tests.conftest import Instance

D = Decimal
REPORTS = f"{FINANCE}/_reports"


def journal(books: Books, date: str, *lines: tuple[str, str, str]) -> None:
    """A journal entry of (account code, debit, credit) lines, submitted."""
    body = {
        "posting_date": date,
        "lines": [
            {"account": books.account(code), "debit": debit, "credit": credit}
            for code, debit, credit in lines
        ],
    }
    books.move("journal_entry", books.made(f"{FINANCE}/journal_entry", body)["id"])


def post_ledger(books: Books) -> None:
    """February: rent 50 paid from the bank. March: capital 10,000; a sale of 1,000 + 19%
    VAT, paid; a purchase of 400 + 19% VAT, paid; rent 300. April: a sale of 70."""
    acme = books.customer("Acme")
    vendor = books.customer("Supplies Ltd", type="vendor")
    bolt = books.item("bolt")
    journal(books, "2026-02-15", ("5400", "50.00", "0"), ("1120", "0", "50.00"))
    journal(books, "2026-03-01", ("1120", "10000.00", "0"), ("3100", "0", "10000.00"))
    sale = books.invoice(acme, [(bolt, "10", "100.00")], tax_rate="19", posting_date="2026-03-03")
    books.move("sales_invoice", sale["id"])
    bill = books.made(
        f"{FINANCE}/purchase_invoice",
        {
            "account": vendor,
            "posting_date": "2026-03-04",
            "tax_rate": "19",
            "lines": [{"item": bolt, "quantity": "8", "rate": "50.00"}],
        },
    )
    books.move("purchase_invoice", bill["id"])
    received = books.payment(acme, "1190.00", {sale["id"]: "1190.00"}, posting_date="2026-03-20")
    books.move("payment", received["id"])
    paid = books.made(
        f"{FINANCE}/payment",
        {
            "payment_type": "pay",
            "account": vendor,
            "posting_date": "2026-03-21",
            "amount": "476.00",
            "allocations": [{"purchase_invoice": bill["id"], "amount": "476.00"}],
        },
    )
    books.move("payment", paid["id"])
    journal(books, "2026-03-31", ("5400", "300.00", "0"), ("1120", "0", "300.00"))
    april = books.invoice(acme, [(bolt, "1", "70.00")], posting_date="2026-04-02")
    books.move("sales_invoice", april["id"])


def report(books: Books, name: str, query: str = "") -> dict[str, Any]:
    data: dict[str, Any] = books.get(f"{REPORTS}/{name}?{query}")
    return data


def lines(data: dict[str, Any], section: str, column: str = "amount") -> dict[str, D]:
    found = next(s for s in data["sections"] if s["name"] == section)
    return {line["label"]: D(line["values"][column]) for line in found["lines"]}


def subtotal(data: dict[str, Any], section: str, column: str = "amount") -> D:
    found = next(s for s in data["sections"] if s["name"] == section)
    return D(found["total"][column])


def total(data: dict[str, Any], name: str, column: str = "amount") -> D:
    return D(next(t for t in data["totals"] if t["name"] == name)["values"][column])


def test_profit_and_loss_of_a_period(books: Books) -> None:
    post_ledger(books)
    march = report(books, "profit_and_loss", "from=2026-03-01&to=2026-03-31")
    assert march["parameters_used"] == {"from": "2026-03-01", "to": "2026-03-31"}
    assert [s["label"] for s in march["sections"]] == ["Income", "Expenses"]
    assert lines(march, "income") == {"Sales": D("1000.00")}  # credit - debit: positive
    assert lines(march, "expense") == {"Purchases": D("400.00"), "Rent": D("300.00")}
    assert (subtotal(march, "income"), subtotal(march, "expense")) == (D("1000"), D("700"))
    assert total(march, "net_profit") == D("300.00")

    # the period moves the figures: February's rent only, then the whole quarter and April
    february = report(books, "profit_and_loss", "from=2026-02-01&to=2026-02-28")
    assert lines(february, "income") == {}
    assert total(february, "net_profit") == D("-50.00")
    quarter = report(books, "profit_and_loss", "from=2026-01-01&to=2026-04-30")
    assert lines(quarter, "income") == {"Sales": D("1070.00")}
    assert lines(quarter, "expense") == {"Purchases": D("400.00"), "Rent": D("350.00")}
    assert total(quarter, "net_profit") == D("320.00")


def test_the_balance_sheet_balances_on_any_date(books: Books) -> None:
    post_ledger(books)
    march = report(books, "balance_sheet", "as_of=2026-03-31")
    # bank: -50 + 10,000 + 1,190 - 476 - 300; input VAT 76; receivable paid
    assert lines(march, "assets") == {
        "Bank": D("10364.00"),
        "Accounts receivable": D("0.00"),
        "VAT receivable (input tax)": D("76.00"),
    }
    assert lines(march, "liabilities") == {
        "Accounts payable": D("0.00"),
        "VAT payable (output tax)": D("190.00"),
    }
    assert lines(march, "equity") == {"Share capital": D("10000.00")}
    assert subtotal(march, "profit") == D("250.00")  # 1,000 - 400 - 300 - 50 so far
    assert total(march, "total_assets") == D("10440.00")
    assert total(march, "liabilities_and_equity") == D("10440.00")
    assert total(march, "difference") == D("0.00")

    april = report(books, "balance_sheet", "as_of=2026-04-30")
    assert lines(april, "assets")["Accounts receivable"] == D("70.00")
    assert subtotal(april, "profit") == D("320.00")
    assert total(april, "total_assets") == total(april, "liabilities_and_equity") == D("10510")
    assert total(april, "difference") == 0

    before = report(books, "balance_sheet", "as_of=2026-01-31")
    assert all(not s["lines"] for s in before["sections"])
    assert total(before, "difference") == 0


def test_the_trial_balance_shows_debits_equal_credits(books: Books) -> None:
    post_ledger(books)
    march = report(books, "trial_balance", "from=2026-03-01&to=2026-03-31")
    assert [c["name"] for c in march["columns"]] == ["debit", "credit", "balance"]
    bank = next(x for x in march["sections"][0]["lines"] if x["label"] == "Bank")
    assert bank["values"] == {"debit": "11190.00", "credit": "776.00", "balance": "10414.00"}
    debits, credits = subtotal(march, "accounts", "debit"), subtotal(march, "accounts", "credit")
    # capital 10,000, receivable 1,190, purchases 400 and input VAT 76, bank 1,190, payable
    # 476, rent 300
    assert debits == credits == D("13632.00")
    assert total(march, "difference", "balance") == 0
    assert next(t for t in march["totals"] if t["name"] == "difference")["values"] == {
        "balance": "0.00"
    }
    # the same figures as the ledger's own aggregate
    assert {code: (d, c) for code, (d, c) in books.trial_balance(until="2026-03-31").items()}[
        "1120"
    ] == (D("11140.00") + D("50.00"), D("826.00"))


def test_defaults_are_the_year_so_far_and_today(books: Books) -> None:
    today = dt.datetime.now(dt.UTC).date()
    data = report(books, "profit_and_loss")
    assert data["parameters_used"] == {
        "from": today.replace(month=1, day=1).isoformat(),
        "to": today.isoformat(),
    }
    assert report(books, "balance_sheet")["parameters_used"] == {"as_of": today.isoformat()}
    listed = books.get(REPORTS)
    assert [r["name"] for r in listed] == ["balance_sheet", "profit_and_loss", "trial_balance"]
    assert listed[1]["parameters"][0] == {
        "name": "from",
        "type": "date",
        "label": "From",
        "required": True,
    }


def test_csv_download(books: Books) -> None:
    post_ledger(books)
    response = books.client.get(
        f"{REPORTS}/profit_and_loss?from=2026-03-01&to=2026-03-31&format=csv"
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "profit_and_loss.csv" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        ["section", "line", "Amount"],
        ["Income", "Sales", "1000.00"],
        ["Income", "Total", "1000.00"],
        ["Expenses", "Purchases", "400.00"],
        ["Expenses", "Rent", "300.00"],
        ["Expenses", "Total", "700.00"],
        ["", "Net profit (income - expenses)", "300.00"],
    ]


@pytest.mark.parametrize(
    "query",
    [
        "from=",
        "to=%20",
        "from=2026-13-01",
        "from=2026-02-30",
        "from=10000-01-01",
        "from=0000-01-01",
        "from=yesterday",
        "from=2026-01-01T00:00:00Z",
        "from=2026-03-01%00",
        "from=%ED%A0%80",
        "from=2026-04-01&to=2026-03-01",
        "from=2026-01-01&from=2026-02-01",
        "form=2026-01-01",
        "from=" + "9" * 5000,
        "format=xml",
        "%00=1",
    ],
)
def test_bad_parameters_are_problems(books: Books, query: str) -> None:
    response = books.client.get(f"{REPORTS}/profit_and_loss?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"]


def test_unknown_reports_are_404(books: Books) -> None:
    for path in (f"{REPORTS}/nope", "/api/v1/nopack/_reports/profit_and_loss"):
        response = books.client.get(path)
        assert response.status_code == 404, response.text
        assert response.headers["content-type"].startswith("application/problem+json")


def test_who_may_run_the_reports(books: Books, finance: Instance) -> None:
    post_ledger(books)
    url = finance.settings.database_url
    with TestClient(build_app(finance.settings), raise_server_exceptions=False) as client:
        path = f"{REPORTS}/profit_and_loss?from=2026-03-01&to=2026-03-31"
        for roles in (("finance_viewer",), ("accountant",)):
            headers = bearer(issue_token(url, "_".join(roles), roles))
            response = client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json()["data"]["totals"][0]["values"] == {"amount": "300.00"}
        stranger = bearer(issue_token(url, "stranger", ("contacts_viewer",)))
        response = client.get(path, headers=stranger)
        assert response.status_code == 403, response.text
        assert client.get(REPORTS, headers=stranger).json()["data"] == []
        assert client.get(path).status_code == 401


def test_parallel_runs_agree(books: Books) -> None:
    post_ledger(books)
    path = f"{REPORTS}/balance_sheet?as_of=2026-03-31"

    def run(_: int) -> Any:
        response = books.client.get(path)
        assert response.status_code == 200
        return response.json()["data"]["totals"]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(8)))
    assert all(r == results[0] for r in results)


def test_reports_are_in_openapi(books: Books) -> None:
    document = books.client.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/finance/_reports/profit_and_loss"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert parameters["from"] == {"type": "string", "format": "date"}
    assert parameters["format"]["enum"] == ["json", "csv"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403"}
    assert "/api/v1/finance/_reports" in document["paths"]


PASSWORD = "correct horse battery"


def test_the_report_pages(books: Books, finance: Instance) -> None:
    """The web UI: the reports in the navigation and on the finance dashboard, the form
    with its defaults, the figures of the period picked, the CSV of the same run, a bad
    period shown above the form; a user whose roles may not run it is refused."""
    post_ledger(books)
    issue_token(finance.settings.database_url, "vic", ("finance_viewer",), password=PASSWORD)
    with signed_in(finance, "vic", PASSWORD) as client:
        board = client.get("/app/_dashboards/finance/finance")
        assert board.status_code == 200
        assert 'href="/app/_reports/finance/profit_and_loss"' in board.text
        page = client.get("/app/_reports/finance/profit_and_loss")
        assert page.status_code == 200, page.text[:800]
        today = dt.datetime.now(dt.UTC).date()
        assert f'name="to" type="date" value="{today.isoformat()}"' in page.text
        assert 'aria-current="page">Profit and loss</a>' in page.text  # in the navigation
        march = client.get("/app/_reports/finance/profit_and_loss?from=2026-03-01&to=2026-03-31")
        assert march.status_code == 200
        text = " ".join(march.text.split())
        assert 'value="2026-03-01"' in text
        assert '<th scope="row" class="report-line">Rent</th><td class="num">300.00</td>' in text
        assert (
            '<th scope="row">Net profit (income - expenses)</th><td class="num">300.00</td>' in text
        )
        april = client.get("/app/_reports/finance/profit_and_loss?from=2026-04-01&to=2026-04-30")
        assert '<td class="num">70.00</td>' in " ".join(april.text.split())
        assert "Nothing in this period." in april.text  # no expenses in April
        download = client.get(
            "/app/_reports/finance/profit_and_loss/csv?from=2026-03-01&to=2026-03-31"
        )
        assert download.status_code == 200
        assert download.text.splitlines()[-1] == ",Net profit (income - expenses),300.00"
        sheet = client.get("/app/_reports/finance/balance_sheet?as_of=2026-03-31")
        assert "Total liabilities and equity" in sheet.text
        bad = client.get("/app/_reports/finance/profit_and_loss?from=2026-04-01&to=2026-03-01")
        assert bad.status_code == 400
        assert "&#39;from&#39; must be on or before &#39;to&#39;" in bad.text
        assert 'value="2026-04-01"' in bad.text  # as typed, to be corrected
        assert client.get("/app/_reports/finance/nope").status_code == 404
        cleared = client.get("/app/_reports/finance/profit_and_loss?from=&to=")  # the defaults
        assert cleared.status_code == 200
        assert f'name="to" type="date" value="{today.isoformat()}"' in cleared.text
        hostile = client.get("/app/_reports/finance/profit_and_loss?from=<script>alert(1)</script>")
        assert hostile.status_code == 400
        assert "<script>alert(1)" not in hostile.text
        assert "&lt;script&gt;alert(1)" in hostile.text  # shown back, escaped
    issue_token(finance.settings.database_url, "cora", ("contacts_viewer",), password=PASSWORD)
    with signed_in(finance, "cora", PASSWORD) as client:
        assert client.get("/app/_reports/finance/profit_and_loss").status_code == 403
        assert client.get("/app/_reports/finance/profit_and_loss/csv").status_code == 403
        assert "/app/_reports/" not in client.get("/app").text
