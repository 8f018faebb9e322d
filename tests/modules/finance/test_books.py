"""The general ledger through HTTP, on SQLite and PostgreSQL: journal entries (unbalanced
refused), the period lock, profit and loss and the balance sheet of a small known month
from the ledger, overdue invoices and receivables aging by the daily rule, and order lines
billed by invoice lines."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from engine import EngineModel, open_database
from engine.scheduling import Scheduler
from runtime.app import load_definitions
from tests.modules.finance.conftest import FINANCE, INVENTORY, ORDERS, Books

if TYPE_CHECKING:
    from tests.conftest import Instance

D = Decimal


def journal(books: Books, date: str, *lines: tuple[str, str, str]) -> dict[str, Any]:
    """A draft journal entry of (account code, debit, credit) lines."""
    body = {
        "posting_date": date,
        "lines": [
            {"account": books.account(code), "debit": debit, "credit": credit}
            for code, debit, credit in lines
        ],
    }
    return books.made(f"{FINANCE}/journal_entry", body)


def test_journal_entries_balance_or_are_refused(books: Books) -> None:
    unbalanced = journal(books, "2026-03-01", ("1120", "100.00", "0"), ("3100", "0", "99.99"))
    problem = books.refused("journal_entry", unbalanced["id"])
    assert (problem["status"], problem["code"]) == (422, "unbalanced")
    assert books.gl() == []

    capital = journal(books, "2026-03-01", ("1120", "100.00", "0"), ("3100", "0", "100.00"))
    assert books.move("journal_entry", capital["id"])["number"] == "JV-2026-00001"
    assert books.balance_of("1120") == D("100.00")
    assert books.balance_of("3100") == D("-100.00")

    # a group account takes no postings
    response = books.client.post(
        f"{FINANCE}/journal_entry",
        json={"lines": [{"account": books.account("1000"), "debit": "1.00"}]},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "lines[0].account"

    # closing February: nothing dated in it can be posted any more
    settings = books.get(f"{FINANCE}/settings?name=default")[0]
    response = books.client.patch(
        f"{FINANCE}/settings/{settings['id']}", json={"books_closed_until": "2026-02-28"}
    )
    assert response.status_code == 200, response.text
    late = journal(books, "2026-02-27", ("1120", "5.00", "0"), ("3100", "0", "5.00"))
    problem = books.refused("journal_entry", late["id"])
    assert (problem["status"], problem["code"]) == (409, "period_locked")
    books.trial_balance()


def test_profit_and_loss_and_balance_sheet_of_a_month(books: Books) -> None:
    """Capital 10,000; a sale of 1,000 + 19% VAT, paid; a purchase of 400 + 19% VAT, paid;
    rent 300. March's profit is 300 and the balance sheet balances with it."""
    acme = books.customer("Acme")
    vendor = books.customer("Supplies Ltd", type="vendor")
    bolt = books.item("bolt")
    books.move(
        "journal_entry",
        journal(books, "2026-03-01", ("1120", "10000.00", "0"), ("3100", "0", "10000.00"))["id"],
    )
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
    submitted = books.move("purchase_invoice", bill["id"])
    assert (submitted["status"], submitted["outstanding"]) == ("unpaid", "476.00")
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
    assert books.get(f"{FINANCE}/purchase_invoice/{bill['id']}")["status"] == "paid"
    books.move(
        "journal_entry",
        journal(books, "2026-03-31", ("5400", "300.00", "0"), ("1120", "0", "300.00"))["id"],
    )
    # April's sale is outside March
    april = books.invoice(acme, [(bolt, "1", "70.00")], posting_date="2026-04-02")
    books.move("sales_invoice", april["id"])

    march = "posting_date__gte=2026-03-01&posting_date__lte=2026-03-31"
    pnl = {
        r["root_type"]: D(r["balance__sum"])
        for r in books.aggregate(
            f"group_by=root_type&measures=balance__sum&root_type__in=income,expense&{march}"
        )
    }
    assert pnl == {"income": D("-1000.00"), "expense": D("700.00")}
    profit = -(pnl["income"] + pnl["expense"])
    assert profit == D("300.00")

    sheet = {
        r["root_type"]: D(r["balance__sum"])
        for r in books.aggregate(
            "group_by=root_type&measures=balance__sum&posting_date__lte=2026-03-31"
            "&root_type__in=asset,liability,equity"
        )
    }
    assets, liabilities, equity = sheet["asset"], -sheet["liability"], -sheet["equity"]
    assert assets == D("10490.00")  # bank 10,414 + input VAT 76
    assert liabilities == D("190.00")  # output VAT
    assert equity == D("10000.00")
    assert assets == liabilities + equity + profit
    balances = books.trial_balance(until="2026-03-31")
    assert balances["1120"] == (D("11190.00"), D("776.00"))
    assert books.balance_of("1200") == D("70.00")  # April's invoice, unpaid
    assert books.balance_of("2100") == D("0.00")


def run_daily_rules(instance: Instance) -> None:
    """The slot of the finance pack's daily rules (00:05 UTC), as a scheduler runs it."""
    project = load_definitions(instance.settings)
    url = instance.settings.database_url
    now = dt.datetime.now(dt.UTC).replace(hour=0, minute=6, second=0, microsecond=0)

    async def run() -> None:
        database = await open_database(url, pool_size=1)
        try:
            await Scheduler(EngineModel.for_url(project, url)).run_due(database, now)
        finally:
            await database.close()

    asyncio.run(run())


def test_overdue_and_aging_by_the_daily_rule(books: Books, finance: Instance) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    today = dt.datetime.now(dt.UTC).date()
    ages = {"current": -10, "late": 45, "later": 75, "oldest": 200, "paid": 40}
    invoices = {}
    for name, days in ages.items():
        due = today - dt.timedelta(days=days)
        posted = min(due, today) - dt.timedelta(days=1)
        invoice = books.invoice(
            acme, [(bolt, "1", "100.00")], posting_date=posted.isoformat(), due_date=due.isoformat()
        )
        books.move("sales_invoice", invoice["id"])
        invoices[name] = invoice["id"]
    payment = books.payment(
        acme, "100.00", {invoices["paid"]: "100.00"}, posting_date=today.isoformat()
    )
    books.move("payment", payment["id"])
    partial = books.payment(
        acme, "30.00", {invoices["late"]: "30.00"}, posting_date=today.isoformat()
    )
    books.move("payment", partial["id"])

    # aged at submit already; overdue only once the daily rule has run
    late = books.invoice_of(invoices["late"])
    assert (late["status"], late["aging_bucket"]) == ("partly_paid", "31-60")
    run_daily_rules(finance)
    got = {name: books.invoice_of(i) for name, i in invoices.items()}
    assert {n: (r["status"], r["aging_bucket"]) for n, r in got.items()} == {
        "current": ("unpaid", "0-30"),
        "late": ("overdue", "31-60"),
        "later": ("overdue", "61-90"),
        "oldest": ("overdue", "90+"),
        "paid": ("paid", None),
    }
    aging = books.get(
        f"{FINANCE}/sales_invoice/_aggregate?group_by=aging_bucket&measures=base_outstanding__sum"
        "&docstatus=submitted&outstanding__gt=0"
    )
    assert {r["aging_bucket"]: r["base_outstanding__sum"] for r in aging} == {
        "0-30": "100.00",
        "31-60": "70.00",
        "61-90": "100.00",
        "90+": "100.00",
    }
    # paying an overdue invoice makes it paid
    rest = books.payment(acme, "70.00", {invoices["late"]: "70.00"}, posting_date=today.isoformat())
    books.move("payment", rest["id"])
    assert books.invoice_of(invoices["late"])["status"] == "paid"


def test_invoice_lines_bill_the_order_lines(books: Books) -> None:
    acme = books.customer("Acme")
    chair = books.item("chair", "40.00")
    main = books.made(f"{INVENTORY}/warehouse", {"name": "Main"})["id"]
    order = books.made(
        f"{ORDERS}/sales_order",
        {
            "account": acme,
            "order_date": "2026-02-03",
            "lines": [{"item": chair, "quantity": "5", "warehouse": main}],
        },
    )
    response = books.client.post(f"{ORDERS}/sales_order/{order['id']}/_submit")
    assert response.status_code == 200, response.text
    line = order["lines"][0]["id"]
    invoice = books.made(
        f"{FINANCE}/sales_invoice",
        {
            "account": acme,
            "sales_order": order["id"],
            "posting_date": "2026-02-10",
            "lines": [{"item": chair, "quantity": "2", "rate": "40.00", "sales_order_line": line}],
        },
    )
    assert books.get(f"{ORDERS}/sales_order/{order['id']}")["lines"][0]["billed_amount"] == "0.00"
    books.move("sales_invoice", invoice["id"])
    billed = books.get(f"{ORDERS}/sales_order/{order['id']}")
    assert billed["lines"][0]["billed_amount"] == "80.00"
    assert billed["billed_amount"] == "80.00"
    books.move("sales_invoice", invoice["id"], "cancel")
    billed = books.get(f"{ORDERS}/sales_order/{order['id']}")
    assert billed["lines"][0]["billed_amount"] == "0.00"

    # a line that does not name its order line bills the order's line of the same item
    # (the lookup of sales_invoice_line.sales_order_line), as the web form's lines do
    unnamed = books.made(
        f"{FINANCE}/sales_invoice",
        {
            "account": acme,
            "sales_order": order["id"],
            "posting_date": "2026-02-11",
            "lines": [{"item": chair, "quantity": "5", "rate": "40.00"}],
        },
    )
    assert unnamed["lines"][0]["sales_order_line"] == line
    books.move("sales_invoice", unnamed["id"])
    billed = books.get(f"{ORDERS}/sales_order/{order['id']}")
    assert billed["lines"][0]["billed_amount"] == "200.00"
    assert billed["per_billed"] == "100.00"
    without_order = books.made(
        f"{FINANCE}/sales_invoice",
        {"account": acme, "posting_date": "2026-02-12", "lines": [{"item": chair}]},
    )
    assert without_order["lines"][0]["sales_order_line"] is None
