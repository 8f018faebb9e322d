"""One customer's journey from a lead to a paid invoice, and back, through the HTTP API
only, on SQLite and PostgreSQL, with every pack enabled (contacts, inventory, sales, orders,
finance, quote_to_cash): lead -> conversion (account + contact + opportunity) -> the
opportunity's lines -> a quotation (availability on its lines, a submit above the stock
refused, then fixed) -> won (a draft sales order with the lines, a welcome e-mail in the
outbox) -> the order submitted (stock reserved) -> a partial and a full delivery -> the
invoice (general ledger) -> a partial and a full payment -> the customer's lifetime value,
outstanding amount and last order date, and the opportunity's order and payment status.
Then every step cancelled in reverse. After each step the trial balance balances and every
bin equals its stock ledger rows (quantity and value) and the reservations of the open
orders; after the journey no rollup has drifted (what `tessera recompute` checks)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, Instance, write_instance
from tests.support.fixture_records import migrate_with_fixtures
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

API = "/api/v1"
ALL_PACKS = ["contacts", "inventory", "sales", "orders", "finance", "quote_to_cash"]


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "i", db_url, ALL_PACKS, [REPO / "modules"], reload_interval=0
    )
    migrate_with_fixtures(instance)  # the finance pack's chart of accounts
    return instance


class Journey:
    """The HTTP API of the instance, and the checks run after every step."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.steps: list[str] = []

    # -- requests ----------------------------------------------------------------------
    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"{API}/{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def made(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(f"{API}/{path}", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.patch(f"{API}/{path}", json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def move(self, path: str, action: str = "submit") -> dict[str, Any]:
        response = self.client.post(f"{API}/{path}/_{action}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    # -- the checks after each step ------------------------------------------------------
    def step(self, name: str) -> None:
        """The books balance and the stock agrees with its ledger and the open orders."""
        self.steps.append(name)
        self.trial_balance()
        self.stock()

    def trial_balance(self) -> dict[str, Decimal]:
        """Debit minus credit per ledger account code, from the finance pack's aggregate of
        the general ledger; asserts that debits equal credits."""
        rows = self.get(
            "finance/gl_entry/_aggregate", group_by="account", measures="debit__sum,credit__sum"
        )
        debit = sum((Decimal(r["debit__sum"]) for r in rows), Decimal(0))
        credit = sum((Decimal(r["credit__sum"]) for r in rows), Decimal(0))
        assert debit == credit, (self.steps[-1], debit, credit)
        codes = {a["id"]: a["code"] for a in self.get("finance/account", limit=500)}
        return {
            codes[r["account"]]: Decimal(r["debit__sum"]) - Decimal(r["credit__sum"]) for r in rows
        }

    def stock(self) -> None:
        reserved: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for order in self.get("orders/sales_order", docstatus="submitted", limit=500):
            for line in order["lines"]:
                pending = Decimal(line["quantity"]) - Decimal(line["delivered_qty"] or 0)
                reserved[line["item"], line["warehouse"]] += max(pending, Decimal(0))
        for row in self.get("inventory/bin", limit=500):
            key = (row["item"], row["warehouse"])
            entries = self.get(
                "inventory/stock_ledger_entry", item=key[0], warehouse=key[1], limit=1000
            )
            qty = sum((Decimal(e["qty_change"]) for e in entries), Decimal(0))
            value = sum((Decimal(e["stock_value_difference"]) for e in entries), Decimal(0))
            assert Decimal(row["actual_qty"]) == qty, (self.steps[-1], row)
            assert Decimal(row["stock_value"] or 0) == value, (self.steps[-1], row)
            assert Decimal(row["reserved_qty"]) == reserved[key], (self.steps[-1], row)

    def bin(self, item: str, warehouse: str) -> tuple[str, str]:
        (row,) = self.get("inventory/bin", item=item, warehouse=warehouse)
        return row["actual_qty"], row["reserved_qty"]


@pytest.fixture
def journey(instance: Instance) -> Iterator[Journey]:
    with instance.client() as client:
        yield Journey(client)
    assert_no_drift(instance.settings)


def test_a_lead_becomes_a_paid_invoice_and_walks_back(journey: Journey) -> None:
    j = journey
    # -- the shop: a chair in stock, 20 received at 25.00 -----------------------------------
    chair = j.made("inventory/item", {"sku": "CHAIR", "name": "Chair", "standard_rate": "40.00"})
    main = j.made("inventory/warehouse", {"name": "Main"})
    receipt = j.made(
        "inventory/stock_entry",
        {
            "purpose": "receipt",
            "posting_date": "2026-11-02",
            "lines": [
                {
                    "item": chair["id"],
                    "quantity": "20",
                    "target_warehouse": main["id"],
                    "rate": "25",
                }
            ],
        },
    )
    j.move(f"inventory/stock_entry/{receipt['id']}")
    j.step("stock received")
    assert j.bin(chair["id"], main["id"]) == ("20.000", "0.000")

    # -- a lead, scored, converted into account + contact + opportunity ------------------
    lead = j.made(
        "sales/lead",
        {
            "first_name": "Ada",
            "last_name": "Byron",
            "company": "Analytical Engines Ltd",
            "email": "ada@engines.example",
            "phone": "+44 20 7946 0000",
            "source": "referral",
        },
    )
    assert lead["score"] == 65  # referral 30 + e-mail, phone, company 30 + first name 5
    lead = j.patch(f"sales/lead/{lead['id']}", {"status": "converted"})
    account_id = lead["converted_account"]
    assert account_id
    assert lead["converted_contact"]
    assert lead["converted_opportunity"]
    account = j.get(f"contacts/account/{account_id}")
    assert (account["name"], account["type"]) == ("Analytical Engines Ltd", "prospect")
    contact = j.get(f"contacts/contact/{lead['converted_contact']}")
    assert (contact["email"], contact["account"]) == ("ada@engines.example", account_id)
    deal_path = f"sales/opportunity/{lead['converted_opportunity']}"
    deal = j.get(deal_path)
    assert (deal["account"], deal["contact"], deal["lead"], deal["stage"]) == (
        account_id,
        lead["converted_contact"],
        lead["id"],
        "qualification",
    )
    assert (deal["order_status"], deal["payment_status"]) == ("none", "none")
    # the customer's e-mail address, for the welcome e-mail
    j.patch(f"contacts/account/{account_id}", {"email": "orders@engines.example"})
    j.step("lead converted")

    # -- the opportunity's lines ------------------------------------------------------------
    deal = j.patch(
        deal_path,
        {
            "stage": "proposal",
            "expected_close": "2099-01-15",
            "lines": [{"item": chair["id"], "quantity": "12", "warehouse": main["id"]}],
        },
    )
    assert (deal["amount"], deal["lines"][0]["rate"]) == ("480.00", "40.00")
    j.step("opportunity lines")

    # -- a quotation: the stock available on its line; above it, the submit is refused ---
    quotation = j.made(
        "sales/quotation",
        {
            "account": account_id,
            "opportunity": deal["id"],
            "lines": [{"item": chair["id"], "quantity": "25"}],
        },
    )
    assert quotation["lines"][0]["available_qty"] == "20.000"
    refused = j.client.post(f"{API}/sales/quotation/{quotation['id']}/_submit")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "insufficient_stock" or any(
        e.get("code") == "insufficient_stock" for e in problem["errors"]
    ), problem
    assert problem["errors"][0]["field"] == "lines[0].quantity"
    assert j.get(f"sales/quotation/{quotation['id']}")["docstatus"] == "draft"
    line = quotation["lines"][0]
    j.patch(
        f"sales/quotation/{quotation['id']}",
        {"lines": [{"id": line["id"], "item": chair["id"], "quantity": "12"}]},
    )
    quotation = j.move(f"sales/quotation/{quotation['id']}")
    assert quotation["number"].startswith("QTN-")
    assert quotation["total"] == "480.00"
    j.step("quotation submitted")

    # -- won: a draft sales order with the lines, a welcome e-mail in the outbox ----------
    deal = j.patch(deal_path, {"stage": "closed_won"})
    order_path = f"orders/sales_order/{deal['sales_order']}"
    order = j.get(order_path)
    assert (order["docstatus"], order["account"], order["opportunity"]) == (
        "draft",
        account_id,
        deal["id"],
    )
    assert [(ln["item"], ln["quantity"], ln["rate"], ln["warehouse"]) for ln in order["lines"]] == [
        (chair["id"], "12.000", "40.00", main["id"])
    ]
    assert (deal["order_status"], deal["payment_status"]) == ("draft", "none")
    (event,) = j.get("_outbox")
    assert (event["kind"], event["rule"]) == ("email", "won_welcomes_the_customer")
    # the order carries the deal's latest submitted quotation (a lookup of quote_to_cash)
    assert order["quotation"] == quotation["id"]
    j.step("won")
    assert j.bin(chair["id"], main["id"]) == ("20.000", "0.000")

    # -- the order submitted: stock reserved ------------------------------------------------
    order = j.move(order_path)
    assert order["status"] == "to_deliver_and_bill"
    assert j.bin(chair["id"], main["id"]) == ("20.000", "12.000")
    assert j.get(f"inventory/item/{chair['id']}")["available_qty"] == "8.000"
    assert j.get(deal_path)["order_status"] == "to_deliver_and_bill"
    j.step("order submitted")

    # -- a partial delivery, then the rest ----------------------------------------------------
    order_line = order["lines"][0]

    def deliver(quantity: str, date: str) -> dict[str, Any]:
        delivery = j.made(
            "orders/delivery",
            {
                "sales_order": order["id"],
                "posting_date": date,
                "carrier": "DHL",
                "tracking_number": f"JD0146{date[-2:]}",
                "lines": [
                    {
                        "item": chair["id"],
                        "quantity": quantity,
                        "warehouse": main["id"],
                        "sales_order_line": order_line["id"],
                    }
                ],
            },
        )
        return j.move(f"orders/delivery/{delivery['id']}")

    first = deliver("5", "2026-11-10")
    assert j.bin(chair["id"], main["id"]) == ("15.000", "7.000")
    order = j.get(order_path)
    assert (order["status"], order["delivered_qty"], order["per_delivered"]) == (
        "to_deliver_and_bill",
        "5.000",
        "41.67",
    )
    assert j.get(deal_path)["delivered_qty"] == "5.000"
    j.step("partial delivery")

    second = deliver("7", "2026-11-12")
    assert j.bin(chair["id"], main["id"]) == ("8.000", "0.000")
    order = j.get(order_path)
    assert (order["status"], order["delivered_qty"]) == ("to_bill", "12.000")
    assert j.get(deal_path)["order_status"] == "to_bill"
    j.step("full delivery")

    # -- the invoice: 12 x 40.00 + 19% VAT, posted to the general ledger -------------------
    invoice = j.made(
        "finance/sales_invoice",
        {
            "account": account_id,
            "sales_order": order["id"],
            "posting_date": "2026-11-12",
            "due_date": "2026-12-12",
            "tax_rate": "19",
            "lines": [
                {
                    "item": chair["id"],
                    "quantity": "12",
                    "rate": "40.00",
                    "sales_order_line": order_line["id"],
                }
            ],
        },
    )
    invoice_path = f"finance/sales_invoice/{invoice['id']}"
    invoice = j.move(invoice_path)
    assert (invoice["status"], invoice["grand_total"], invoice["outstanding"]) == (
        "unpaid",
        "571.20",
        "571.20",
    )
    books = j.trial_balance()
    assert (books["1200"], books["4100"], books["2200"]) == (
        Decimal("571.20"),
        Decimal("-480.00"),
        Decimal("-91.20"),
    )
    assert j.get(order_path)["status"] == "completed"
    deal = j.get(deal_path)
    assert (deal["order_status"], deal["payment_status"], deal["invoiced_amount"]) == (
        "completed",
        "unpaid",
        "571.20",
    )
    account = j.get(f"contacts/account/{account_id}")
    assert (account["lifetime_value"], account["outstanding"], account["last_order_date"]) == (
        "571.20",
        "571.20",
        "2026-11-12",
    )
    j.step("invoice submitted")

    # -- paid in two parts ---------------------------------------------------------------------
    def pay(amount: str, date: str) -> str:
        payment = j.made(
            "finance/payment",
            {
                "account": account_id,
                "posting_date": date,
                "amount": amount,
                "allocations": [{"invoice": invoice["id"], "amount": amount}],
            },
        )
        j.move(f"finance/payment/{payment['id']}")
        return str(payment["id"])

    partly = pay("200.00", "2026-11-20")
    invoice = j.get(invoice_path)
    assert (invoice["status"], invoice["outstanding"]) == ("partly_paid", "371.20")
    account = j.get(f"contacts/account/{account_id}")
    assert (account["lifetime_value"], account["outstanding"]) == ("571.20", "371.20")
    deal = j.get(deal_path)
    assert (deal["payment_status"], deal["outstanding_amount"]) == ("partly_paid", "371.20")
    assert j.trial_balance()["1200"] == Decimal("371.20")
    j.step("partial payment")

    rest = pay("371.20", "2026-12-01")
    invoice = j.get(invoice_path)
    assert (invoice["status"], invoice["outstanding"]) == ("paid", "0.00")
    account = j.get(f"contacts/account/{account_id}")
    assert (account["lifetime_value"], account["outstanding"], account["last_order_date"]) == (
        "571.20",
        "0.00",
        "2026-11-12",
    )
    deal = j.get(deal_path)
    assert (deal["order_status"], deal["payment_status"], deal["outstanding_amount"]) == (
        "completed",
        "paid",
        "0.00",
    )
    books = j.trial_balance()
    assert (books["1200"], books["1120"]) == (Decimal("0.00"), Decimal("571.20"))
    j.step("full payment")

    # == walking it back ==========================================================================
    # an invoice with payments allocated is not cancelled (409): the payments go first
    refused = j.client.post(f"{API}/{invoice_path}/_cancel")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "payments_allocated"
    j.move(f"finance/payment/{rest}", "cancel")
    assert j.get(invoice_path)["status"] == "partly_paid"
    assert j.get(deal_path)["payment_status"] == "partly_paid"
    j.step("full payment cancelled")

    j.move(f"finance/payment/{partly}", "cancel")
    invoice = j.get(invoice_path)
    assert (invoice["status"], invoice["outstanding"]) == ("unpaid", "571.20")
    assert j.get(f"contacts/account/{account_id}")["outstanding"] == "571.20"
    assert j.get(deal_path)["payment_status"] == "unpaid"
    books = j.trial_balance()
    assert (books["1200"], books.get("1120", Decimal(0))) == (Decimal("571.20"), Decimal(0))
    j.step("partial payment cancelled")

    j.move(invoice_path, "cancel")
    order = j.get(order_path)
    assert (order["status"], order["billed_amount"]) == ("to_bill", "0.00")
    account = j.get(f"contacts/account/{account_id}")
    assert (account["lifetime_value"], account["outstanding"], account["last_order_date"]) == (
        "0.00",
        "0.00",
        None,
    )
    deal = j.get(deal_path)
    assert (deal["order_status"], deal["payment_status"], deal["invoiced_amount"]) == (
        "to_bill",
        "none",
        "0.00",
    )
    assert all(v == 0 for v in j.trial_balance().values())
    j.step("invoice cancelled")

    j.move(f"orders/delivery/{second['id']}", "cancel")
    assert j.bin(chair["id"], main["id"]) == ("15.000", "7.000")
    order = j.get(order_path)
    assert (order["status"], order["delivered_qty"]) == ("to_deliver_and_bill", "5.000")
    assert j.get(deal_path)["order_status"] == "to_deliver_and_bill"
    j.step("second delivery cancelled")

    j.move(f"orders/delivery/{first['id']}", "cancel")
    assert j.bin(chair["id"], main["id"]) == ("20.000", "12.000")
    assert j.get(order_path)["delivered_qty"] == "0.000"
    j.step("first delivery cancelled")

    j.move(order_path, "cancel")
    assert j.bin(chair["id"], main["id"]) == ("20.000", "0.000")
    deal = j.get(deal_path)
    assert (deal["order_status"], deal["open_orders"], deal["cancelled_orders"]) == (
        "cancelled",
        0,
        1,
    )
    j.step("order cancelled")


def test_a_return_and_a_credit_note_take_back_stock_and_lifetime_value(journey: Journey) -> None:
    """The customer sends two of the twelve chairs back after paying: a return delivery
    puts them in stock (the order line open again), a credit note against the invoice lowers
    the customer's lifetime value and leaves a credit; cancelling both walks it back."""
    j = journey
    chair = j.made("inventory/item", {"sku": "CHAIR", "name": "Chair", "standard_rate": "40.00"})
    main = j.made("inventory/warehouse", {"name": "Main"})
    line = {"item": chair["id"], "quantity": "20", "target_warehouse": main["id"], "rate": "25"}
    receipt = j.made(
        "inventory/stock_entry",
        {"purpose": "receipt", "posting_date": "2026-11-02", "lines": [line]},
    )
    j.move(f"inventory/stock_entry/{receipt['id']}")
    customer = j.made(
        "contacts/account", {"name": "Babbage & Co", "type": "customer", "email": "cb@example.org"}
    )
    deal = j.made(
        "sales/opportunity",
        {
            "name": "Babbage chairs",
            "account": customer["id"],
            "lines": [{"item": chair["id"], "quantity": "12", "warehouse": main["id"]}],
        },
    )
    deal_path = f"sales/opportunity/{deal['id']}"
    deal = j.patch(deal_path, {"stage": "closed_won"})
    order_path = f"orders/sales_order/{deal['sales_order']}"
    order = j.move(order_path)
    order_line = order["lines"][0]["id"]
    delivery = j.made(
        "orders/delivery",
        {
            "sales_order": order["id"],
            "posting_date": "2026-11-10",
            "lines": [{"item": chair["id"], "quantity": "12", "warehouse": main["id"]}],
        },
    )
    j.move(f"orders/delivery/{delivery['id']}")
    invoice = j.made(
        "finance/sales_invoice",
        {
            "account": customer["id"],
            "sales_order": order["id"],
            "posting_date": "2026-11-12",
            "tax_rate": "19",
            "lines": [
                {
                    "item": chair["id"],
                    "quantity": "12",
                    "rate": "40",
                    "sales_order_line": order_line,
                }
            ],
        },
    )
    j.move(f"finance/sales_invoice/{invoice['id']}")
    payment = j.made(
        "finance/payment",
        {
            "account": customer["id"],
            "posting_date": "2026-11-20",
            "amount": "571.20",
            "allocations": [{"invoice": invoice["id"], "amount": "571.20"}],
        },
    )
    j.move(f"finance/payment/{payment['id']}")
    j.step("delivered, billed and paid")
    assert j.get(deal_path)["payment_status"] == "paid"
    assert j.bin(chair["id"], main["id"]) == ("8.000", "0.000")

    # two chairs come back: stock in, the order line open again for two
    returned = j.made(
        "orders/delivery",
        {
            "is_return": True,
            "return_against": delivery["id"],
            "posting_date": "2026-11-25",
            "lines": [{"item": chair["id"], "quantity": "2", "warehouse": main["id"]}],
        },
    )
    assert returned["sales_order"] == order["id"]
    j.move(f"orders/delivery/{returned['id']}")
    assert j.bin(chair["id"], main["id"]) == ("10.000", "2.000")
    order = j.get(order_path)
    assert (order["delivered_qty"], order["status"]) == ("10.000", "to_deliver")
    j.step("return delivered")

    # the credit note: 2 x 40.00 + 19% back, the customer's worth down, a credit left
    credit = j.made(
        "finance/sales_invoice",
        {
            "account": customer["id"],
            "is_return": True,
            "return_against": invoice["id"],
            "posting_date": "2026-11-26",
            "tax_rate": "19",
            "lines": [{"item": chair["id"], "quantity": "-2", "rate": "40"}],
        },
    )
    assert credit["sales_order"] == order["id"]  # the credited invoice's order
    credit = j.move(f"finance/sales_invoice/{credit['id']}")
    assert (credit["status"], credit["grand_total"]) == ("returned", "-95.20")
    assert j.get(f"finance/sales_invoice/{invoice['id']}")["outstanding"] == "-95.20"
    account = j.get(f"contacts/account/{customer['id']}")
    assert (account["lifetime_value"], account["outstanding"]) == ("476.00", "-95.20")
    books = j.trial_balance()
    assert (books["1200"], books["4100"], books["2200"]) == (
        Decimal("-95.20"),
        Decimal("-400.00"),
        Decimal("-76.00"),
    )
    deal = j.get(deal_path)
    assert (deal["invoiced_amount"], deal["outstanding_amount"], deal["payment_status"]) == (
        "476.00",
        "-95.20",
        "paid",
    )
    j.step("credit note")

    # both cancelled: what the customer owed and was worth, and the stock, as before
    j.move(f"finance/sales_invoice/{credit['id']}", "cancel")
    account = j.get(f"contacts/account/{customer['id']}")
    assert (account["lifetime_value"], account["outstanding"]) == ("571.20", "0.00")
    assert j.get(f"finance/sales_invoice/{invoice['id']}")["status"] == "paid"
    j.step("credit note cancelled")
    j.move(f"orders/delivery/{returned['id']}", "cancel")
    assert j.bin(chair["id"], main["id"]) == ("8.000", "0.000")
    assert j.get(order_path)["status"] == "completed"
    assert j.get(deal_path)["order_status"] == "completed"
    j.step("return cancelled")
