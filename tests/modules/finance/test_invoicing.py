"""Sales invoices, payments and credit notes through HTTP, on SQLite and PostgreSQL: the
postings of a submit, the trial balance, outstanding amounts and statuses, over-allocation,
a cancel refused while paid, credit notes, and the customer's rollups (no drift: the
``books`` fixture checks every rollup at the end)."""

from __future__ import annotations

from decimal import Decimal

from tests.modules.finance.conftest import CONTACTS, FINANCE, Books

D = Decimal


def test_invoice_submit_posts_balanced_books_and_keeps_the_customer(books: Books) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    draft = books.invoice(acme, [(bolt, "2", "50.00"), (bolt, "1", "0.05")], tax_rate="19")
    assert draft["number"] is None
    assert draft["status"] == "draft"
    assert (draft["net_total"], draft["tax_amount"], draft["grand_total"]) == (
        "100.05",
        "19.01",
        "119.06",
    )
    submitted = books.move("sales_invoice", draft["id"])
    assert submitted["number"] == "SINV-2026-00001"
    assert (submitted["status"], submitted["outstanding"]) == ("unpaid", "119.06")

    rows = books.gl(voucher_id=draft["id"], voucher_type="finance.sales_invoice")
    posted = {(r["account"], r["debit"], r["credit"], r["party"]) for r in rows}
    assert posted == {
        (books.account("1200"), "119.06", "0.00", acme),
        (books.account("4100"), "0.00", "100.05", None),
        (books.account("2200"), "0.00", "19.01", None),
    }
    balances = books.trial_balance()
    assert balances["1200"] == (D("119.06"), D("0"))
    customer = books.customer_of(acme)
    assert (customer["lifetime_value"], customer["outstanding"]) == ("119.06", "119.06")
    assert customer["last_order_date"] == "2026-03-02"

    # accounts named instead of the defaults must fit
    response = books.client.post(
        f"{FINANCE}/sales_invoice",
        json={"account": acme, "debit_to": books.account("1000"), "lines": []},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "debit_to"

    # a second invoice takes the next number; a draft takes none and counts for nothing
    second = books.invoice(acme, [(bolt, "1", "10.00")])
    assert books.move("sales_invoice", second["id"])["number"] == "SINV-2026-00002"
    books.invoice(acme, [(bolt, "1", "999.00")])
    assert books.customer_of(acme)["lifetime_value"] == "129.06"


def test_payments_partial_then_full_set_status_and_outstanding(books: Books) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    first = books.invoice(acme, [(bolt, "10", "10.00")])
    second = books.invoice(acme, [(bolt, "5", "10.00")])
    for invoice in (first, second):
        books.move("sales_invoice", invoice["id"])
    assert books.customer_of(acme)["outstanding"] == "150.00"

    partial = books.payment(acme, "40.00", {first["id"]: "40.00"})
    books.move("payment", partial["id"])
    invoice = books.invoice_of(first["id"])
    assert (invoice["status"], invoice["outstanding"], invoice["paid_amount"]) == (
        "partly_paid",
        "60.00",
        "40.00",
    )
    assert books.customer_of(acme)["outstanding"] == "110.00"

    # one payment settling the rest of both
    rest = books.payment(acme, "110.00", {first["id"]: "60.00", second["id"]: "50.00"})
    books.move("payment", rest["id"])
    for record_id in (first["id"], second["id"]):
        invoice = books.invoice_of(record_id)
        assert (invoice["status"], invoice["outstanding"]) == ("paid", "0.00")
    customer = books.customer_of(acme)
    assert (customer["outstanding"], customer["lifetime_value"]) == ("0.00", "150.00")
    assert books.balance_of("1120") == D("150.00")  # the bank
    assert books.balance_of("1200") == D("0.00")  # the receivable
    books.trial_balance()

    # cancelling a payment re-opens what it settled
    books.move("payment", partial["id"], "cancel")
    invoice = books.invoice_of(first["id"])
    assert (invoice["status"], invoice["outstanding"]) == ("partly_paid", "40.00")
    assert books.customer_of(acme)["outstanding"] == "40.00"
    assert books.balance_of("1120") == D("110.00")


def test_over_allocation_is_refused_and_writes_nothing(books: Books) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    invoice = books.invoice(acme, [(bolt, "3", "10.00")])
    books.move("sales_invoice", invoice["id"])

    too_much = books.payment(acme, "50.00", {invoice["id"]: "50.00"})
    problem = books.refused("payment", too_much["id"])
    assert (problem["status"], problem["code"]) == (422, "over_allocation")
    assert books.get(f"{FINANCE}/payment/{too_much['id']}")["docstatus"] == "draft"
    assert books.invoice_of(invoice["id"])["outstanding"] == "30.00"
    assert books.gl(voucher_type="finance.payment") == []

    # allocations adding up to more than the payment's amount: refused when written
    response = books.client.post(
        f"{FINANCE}/payment",
        json={
            "account": acme,
            "amount": "10.00",
            "allocations": [{"invoice": invoice["id"], "amount": "20.00"}],
        },
    )
    assert response.status_code == 422
    assert response.json()["code"] == "over_allocation"

    # a draft invoice cannot be paid either (nothing is outstanding on it)
    draft = books.invoice(acme, [(bolt, "1", "10.00")])
    early = books.payment(acme, "10.00", {draft["id"]: "10.00"})
    assert books.refused("payment", early["id"])["code"] == "over_allocation"


def test_cancel_is_refused_while_a_payment_is_allocated(books: Books) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    invoice = books.invoice(acme, [(bolt, "2", "50.00")], tax_rate="10")
    books.move("sales_invoice", invoice["id"])
    payment = books.payment(acme, "110.00", {invoice["id"]: "110.00"})
    books.move("payment", payment["id"])

    problem = books.refused("sales_invoice", invoice["id"], "cancel")
    assert (problem["status"], problem["code"]) == (409, "payments_allocated")
    assert books.invoice_of(invoice["id"])["docstatus"] == "submitted"

    books.move("payment", payment["id"], "cancel")
    cancelled = books.move("sales_invoice", invoice["id"], "cancel")
    assert (cancelled["status"], cancelled["outstanding"]) == ("cancelled", "0.00")
    # every voucher's rows net to zero; the customer is back where it started
    for voucher in ("finance.sales_invoice", "finance.payment"):
        rows = books.gl(voucher_type=voucher)
        assert len(rows) == (6 if voucher == "finance.sales_invoice" else 4)
        assert sum(D(r["balance"]) for r in rows) == 0
        assert sum(D(r["debit"]) for r in rows) == 0
    customer = books.customer_of(acme)
    assert (customer["outstanding"], customer["lifetime_value"]) == ("0.00", "0.00")
    assert customer["last_order_date"] is None
    books.trial_balance()


def test_a_credit_note_lowers_outstanding_and_lifetime_value(books: Books) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    invoice = books.invoice(acme, [(bolt, "4", "25.00")], tax_rate="20")
    books.move("sales_invoice", invoice["id"])

    # positive quantities on a credit note are refused
    response = books.client.post(
        f"{FINANCE}/sales_invoice",
        json={
            "account": acme,
            "is_return": True,
            "return_against": invoice["id"],
            "lines": [{"item": bolt, "quantity": "1", "rate": "25.00"}],
        },
    )
    assert response.status_code == 422

    note = books.invoice(
        acme,
        [(bolt, "-1", "25.00")],
        tax_rate="20",
        is_return=True,
        return_against=invoice["id"],
        posting_date="2026-03-05",
    )
    assert note["grand_total"] == "-30.00"
    submitted = books.move("sales_invoice", note["id"])
    assert (submitted["status"], submitted["outstanding"]) == ("returned", "0.00")
    original = books.invoice_of(invoice["id"])
    assert (original["outstanding"], original["credited_amount"]) == ("90.00", "30.00")
    customer = books.customer_of(acme)
    assert (customer["lifetime_value"], customer["outstanding"]) == ("90.00", "90.00")
    assert customer["last_order_date"] == "2026-03-02"  # a credit note is no order
    rows = books.gl(voucher_id=note["id"], voucher_type="finance.sales_invoice")
    assert {(r["account"], r["debit"], r["credit"]) for r in rows} == {
        (books.account("1200"), "0.00", "30.00"),
        (books.account("4100"), "25.00", "0.00"),
        (books.account("2200"), "5.00", "0.00"),
    }
    books.trial_balance()

    # paying the rest settles the invoice; cancelling the note re-opens 30
    payment = books.payment(acme, "90.00", {invoice["id"]: "90.00"})
    books.move("payment", payment["id"])
    assert books.invoice_of(invoice["id"])["status"] == "paid"
    books.move("sales_invoice", note["id"], "cancel")
    original = books.invoice_of(invoice["id"])
    assert (original["status"], original["outstanding"]) == ("partly_paid", "30.00")
    assert books.customer_of(acme)["lifetime_value"] == "120.00"


def test_an_invoice_in_another_currency_posts_company_currency(books: Books) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    for date, rate in (("2026-02-01", "0.95"), ("2026-03-01", "0.9"), ("2026-03-20", "0.8")):
        books.made(
            f"{FINANCE}/currency_rate",
            {"from_currency": "USD", "to_currency": "EUR", "date": date, "rate": rate},
        )
    # the rate of the posting date (the latest on or before it) unless one is given
    invoice = books.invoice(acme, [(bolt, "3", "33.33")], currency="USD", tax_rate="19")
    assert invoice["exchange_rate"] == "0.900000"
    assert (invoice["grand_total"], invoice["base_grand_total"]) == ("118.99", "107.09")
    assert books.invoice(acme, [(bolt, "1", "1.00")])["exchange_rate"] == "1.000000"
    given = books.invoice(acme, [(bolt, "1", "1.00")], currency="USD", exchange_rate="0.5")
    assert given["exchange_rate"] == "0.500000"
    response = books.client.post(
        f"{FINANCE}/sales_invoice",
        json={"account": acme, "currency": "GBP", "lines": [{"item": bolt, "rate": "1.00"}]},
    )
    assert response.status_code == 422
    assert "no_exchange_rate" in {e["code"] for e in response.json()["errors"]}

    books.move("sales_invoice", invoice["id"])
    rows = books.gl(voucher_id=invoice["id"], voucher_type="finance.sales_invoice")
    assert sum(D(r["debit"]) for r in rows) == sum(D(r["credit"]) for r in rows) == D("107.09")
    customer = books.customer_of(acme)
    assert (customer["lifetime_value"], customer["outstanding"]) == ("107.09", "107.09")


def test_drafts_follow_the_address_submitted_invoices_keep_theirs(books: Books) -> None:
    address = books.made(
        f"{CONTACTS}/address",
        {"label": "Acme HQ", "street": "1 Main St", "postal_code": "20095", "city": "Hamburg"},
    )
    acme = books.customer("Acme", billing_address=address["id"])
    bolt = books.item("bolt")
    submitted = books.invoice(acme, [(bolt, "1", "10.00")])
    assert submitted["billing_address"] == address["id"]  # the account's, by default
    text = books.move("sales_invoice", submitted["id"])["address_display"]
    assert text == "Acme HQ\n1 Main St\n20095 Hamburg"  # the text as of the submit
    draft = books.invoice(acme, [(bolt, "1", "10.00")], billing_address=address["id"])
    assert draft["address_display"] == text

    moved = books.client.patch(
        f"{CONTACTS}/address/{address['id']}", json={"street": "9 Harbour Rd", "country": "DE"}
    )
    assert moved.status_code == 200, moved.text
    assert books.invoice_of(draft["id"])["address_display"] == (
        "Acme HQ\n9 Harbour Rd\n20095 Hamburg\nDE"
    )
    assert books.invoice_of(submitted["id"])["address_display"] == (
        "Acme HQ\n1 Main St\n20095 Hamburg"
    )
