"""Quote to cash through the web UI, in a real headless Chromium against a real
``tessera serve`` with every pack (contacts, inventory, sales, orders, finance,
quote_to_cash): a lead on the leads list is converted (account, contact and opportunity
appear), the opportunity gets its lines and moves on the kanban, a quotation shows the
stock available on its lines and is submitted, the opportunity is won (a draft sales order
with its lines), the order, a delivery, an invoice and a payment are submitted, and the
customer shows its lifetime value; then each pack's dashboard. Every step checks what the
user sees (badges, values); the screenshots are the user guide's (docs/user-guide-quote-to-
cash.md), taken at 1200x800."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_web import open_page, served, sign_in
from tests.conftest import REPO, Instance, write_instance
from tests.integration.web.test_screens import PASSWORD
from tests.support.fixture_records import migrate_with_fixtures
from tests.support.identity import issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
ALL_PACKS = ["contacts", "inventory", "sales", "orders", "finance", "quote_to_cash"]
CUSTOMER = "Analytical Engines Ltd"


def _instance(db_url: str, tmp_path: Path) -> Instance:
    """Every pack, the chart of accounts, a user, twenty chairs in stock and one lead."""
    instance = write_instance(tmp_path / "i", db_url, ALL_PACKS, [REPO / "modules"])
    migrate_with_fixtures(instance)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with instance.client() as client:

        def made(path: str, body: dict[str, object]) -> str:
            response = client.post(f"/api/v1/{path}", json=body)
            assert response.status_code == 201, response.text
            return str(response.json()["data"]["id"])

        chair = made("inventory/item", {"sku": "CHAIR", "name": "Chair", "standard_rate": "40"})
        main = made("inventory/warehouse", {"name": "Main"})
        line = {"item": chair, "quantity": "20", "target_warehouse": main, "rate": "25.00"}
        receipt = made("inventory/stock_entry", {"purpose": "receipt", "lines": [line]})
        response = client.post(f"/api/v1/inventory/stock_entry/{receipt}/_submit")
        assert response.status_code == 200, response.text
        lead = {
            "first_name": "Ada",
            "last_name": "Byron",
            "company": CUSTOMER,
            "email": "ada@engines.example",
            "phone": "+44 20 7946 0000",
            "source": "referral",
        }
        made("sales/lead", lead)
    return instance


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_instance, db_url, tmp_path) as base:
        yield base


def navigate(page: Page, entities: str) -> None:
    """Follow a link of the side bar, and wait for the page it opens (read before that, a
    list's headings could still be the previous page's)."""
    link = page.get_by_role("navigation", name="Packs and entities").get_by_role(
        "link", name=entities, exact=True
    )
    target = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{target}")
    page.wait_for_load_state()


def choose(page: Page, label: str, typed: str, title: str) -> None:
    """Type into a reference picker's search box and choose the record offered as
    ``title`` (``label`` is the box's: "Search for customer")."""
    search = page.get_by_label(label, exact=True)
    search.fill(typed)
    select = search.locator("xpath=following-sibling::select")
    select_id = select.get_attribute("id")
    page.wait_for_function(
        "([id, title]) => [...document.getElementById(id).options].some(o => o.text === title)",
        arg=[select_id, title],
    )
    select.select_option(label=title)


def shown(page: Page, name: str) -> str:
    """A read-only field's value as the form shows it."""
    return (page.locator(f"output#f-{name}").text_content() or "").strip()


def badge(page: Page) -> str:
    return page.locator("h1 .badge").text_content() or ""


def cells(page: Page, row: int = 0) -> dict[str, str]:
    """A read-only line table's row: its cells by column heading."""
    table = page.locator("table.lines").first
    headings = [h.strip() for h in table.locator("thead th").all_inner_texts()]
    values = [c.strip() for c in table.locator("tbody tr").nth(row).locator("td").all_inner_texts()]
    return dict(zip(headings, values, strict=False))


def list_row(page: Page, text: str) -> dict[str, str]:
    """The list's row that contains ``text``: its cells by column heading."""
    headings = [h.strip() for h in page.locator("table.records thead th").all_inner_texts()]
    row = page.locator("table.records tbody tr", has_text=text)
    assert row.count() == 1, text
    values = [c.strip() for c in row.locator("td").all_inner_texts()]
    return dict(zip(headings, values, strict=True))


def save(page: Page) -> None:
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/\d+\?saved=1$"))
    assert page.locator("p[role=status]").inner_text() == "Saved."


def submit(page: Page, entity: str) -> None:
    """Submit… then confirm: the badge turns Submitted."""
    page.get_by_role("link", name="Submit…").click()
    page.get_by_role("button", name=f"Submit {entity}").click()
    page.wait_for_url(re.compile(r".*\?done=submit$"))
    assert page.locator("p[role=status]").inner_text() == "Submitted."
    assert badge(page) == "Status: Submitted"


def show(page: Page, selector: str, above: int = 0) -> None:
    """Scroll so that ``selector`` is ``above`` pixels below the top of the window, for the
    screenshot."""
    page.locator(selector).first.evaluate(
        "(el, above) => window.scrollTo(0, el.getBoundingClientRect().top + scrollY - above)",
        above,
    )


def test_a_lead_becomes_a_paid_invoice_on_the_screens(
    chromium: Browser, shop: str, screenshots: Path
) -> None:
    page = open_page(chromium, 1200, 800)
    sign_in(page, shop, "ada")

    def snap(name: str) -> None:
        page.screenshot(path=screenshots / f"quote-to-cash-{name}.png")

    # -- the lead, on the leads list ---------------------------------------------------------
    navigate(page, "Leads")
    row = page.locator("table.records tbody tr", has_text=CUSTOMER)
    assert list_row(page, CUSTOMER)["Status"] == "New"
    snap("leads")

    # -- converted: the account, the contact and the opportunity appear ----------------------
    row.get_by_role("link").first.click()
    page.get_by_label("Status").select_option("converted")
    save(page)
    assert shown(page, "converted_account") == CUSTOMER
    assert shown(page, "converted_contact") == "Byron"
    assert shown(page, "converted_opportunity") == CUSTOMER
    show(page, "#f-converted_account", 560)
    snap("lead-converted")

    # -- the opportunity: on the kanban by stage, then its lines -----------------------------
    navigate(page, "Opportunities")
    page.get_by_role("link", name="Kanban").click()
    column = page.locator('.kanban-column[data-value="qualification"]')
    card = page.locator(".kanban-card", has_text=CUSTOMER)
    assert column.locator(".kanban-card", has_text=CUSTOMER).count() == 1
    assert f"Account: {CUSTOMER}" in card.inner_text()  # the account's name, not its id
    card.get_by_role("link", name=CUSTOMER).click()
    page.get_by_label("Stage", exact=True).select_option("proposal")
    page.get_by_label("Expected close").fill("2099-01-15")
    choose(page, "Search for item, line 1", "cha", "Chair")
    page.get_by_label("Quantity, line 1").fill("12")
    choose(page, "Search for warehouse, line 1", "mai", "Main")
    save(page)
    # the rate came from the item (no price list), the amount and the weighting follow
    assert page.get_by_label("Rate, line 1").input_value() == "40.00"
    assert shown(page, "amount") == "480.00"
    assert shown(page, "weighted_amount") == "240.00"  # proposal: 50 %
    show(page, "#f-lines", 120)
    snap("opportunity-lines")
    page.goto(f"{shop}/app/sales/opportunity/kanban")
    column = page.locator('.kanban-column[data-value="proposal"]')
    assert column.locator(".kanban-card", has_text=CUSTOMER).count() == 1
    assert "Amount: 480.00" in card.inner_text()
    snap("kanban")

    # -- a quotation: the stock available on each line, then submitted -----------------------
    navigate(page, "Quotations")
    page.get_by_role("link", name="New quotation").click()
    choose(page, "Search for customer", "analy", CUSTOMER)
    choose(page, "Search for opportunity", "analy", CUSTOMER)
    choose(page, "Search for item, line 1", "cha", "Chair")
    page.get_by_label("Quantity, line 1").fill("12")
    save(page)
    assert badge(page) == "Status: Draft"
    assert shown(page, "total") == "480.00"
    submit(page, "quotation")
    line = cells(page)
    assert (line["Item"], line["Quantity"], line["Rate"]) == ("Chair", "12.000", "40.00")
    assert line["Available"] == "20.000"  # on hand, none reserved yet
    quotation = (page.locator("h1").text_content() or "").split()[0]
    assert re.fullmatch(r"QTN-\d{4}-00001", quotation), quotation
    show(page, "#f-lines", 690)
    snap("quotation")

    # -- won: the kanban's move makes a draft sales order with the opportunity's lines -------
    navigate(page, "Opportunities")
    page.get_by_role("link", name="Kanban").click()
    card.get_by_label(f"Move {CUSTOMER} to").select_option("closed_won")
    card.get_by_role("button", name="Move").click()
    page.wait_for_url(re.compile(r".*/kanban\?by=stage$"))
    column = page.locator('.kanban-column[data-value="closed_won"]')
    assert column.locator(".kanban-card", has_text=CUSTOMER).count() == 1
    assert "Probability: 100" in card.inner_text()
    column.evaluate("el => el.scrollIntoView({block: 'nearest', inline: 'end'})")
    snap("won")

    navigate(page, "Sales orders")
    row = page.locator("table.records tbody tr", has_text=CUSTOMER)
    assert row.count() == 1
    assert row.locator(".badge").text_content() == "Status: Draft"
    row.get_by_role("link").first.click()
    assert badge(page) == "Status: Draft"
    assert page.get_by_label("Quantity, line 1").input_value() == "12.000"
    assert page.get_by_label("Rate, line 1").input_value() == "40.00"
    assert shown(page, "total") == "480.00"
    show(page, "#f-lines", 160)
    snap("sales-order")
    submit(page, "sales order")
    order = (page.locator("h1").text_content() or "").split()[0]
    assert re.fullmatch(r"SO-\d{4}-00001", order), order
    assert shown(page, "status") == "To deliver and bill"  # to_deliver_and_bill
    assert shown(page, "submitted_qty") == "12.000"
    navigate(page, "Bins")
    bin_row = list_row(page, "Main")
    assert (bin_row["Actual qty"], bin_row["Reserved qty"]) == ("20.000", "12.000")

    # -- a delivery of the twelve chairs: the stock leaves, the order is delivered -----------
    navigate(page, "Deliveries")
    page.get_by_role("link", name="New delivery").click()
    choose(page, "Search for sales order", "SO-", order)
    page.get_by_label("Carrier").fill("DHL")
    choose(page, "Search for item, line 1", "cha", "Chair")
    page.get_by_label("Quantity, line 1").fill("12")
    choose(page, "Search for warehouse, line 1", "mai", "Main")
    save(page)
    assert shown(page, "account") == CUSTOMER  # from the order
    submit(page, "delivery")
    assert re.fullmatch(r"DN-\d{4}-00001", shown(page, "number"))
    snap("delivery")

    navigate(page, "Bins")
    bin_row = list_row(page, "Main")  # 20 received, 12 delivered, nothing left to ship
    assert (bin_row["Actual qty"], bin_row["Reserved qty"]) == ("8.000", "0.000")
    navigate(page, "Sales orders")
    page.locator("table.records tbody tr", has_text=order).get_by_role("link").first.click()
    assert shown(page, "status") == "To bill"
    assert shown(page, "per_delivered") == "100.00"
    assert cells(page)["Delivered qty"] == "12.000"

    # -- the invoice -------------------------------------------------------------------------
    navigate(page, "Sales invoices")
    page.get_by_role("link", name="New sales invoice").click()
    choose(page, "Search for customer", "analy", CUSTOMER)
    choose(page, "Search for sales order", "SO-", order)
    choose(page, "Search for item, line 1", "cha", "Chair")
    page.get_by_label("Quantity, line 1").fill("12")
    save(page)
    assert page.get_by_label("Rate, line 1").input_value() == "40.00"  # the item's rate
    submit(page, "sales invoice")
    invoice = (page.locator("h1").text_content() or "").split()[0]
    assert re.fullmatch(r"SINV-\d{4}-00001", invoice), invoice
    assert shown(page, "grand_total") == "€480.00"  # a money field: the invoice's currency
    assert shown(page, "outstanding") == "€480.00"
    assert shown(page, "status") == "Unpaid"
    assert cells(page)["Sales order line"]  # the order's line of the chair, filled for it
    show(page, "#f-net_total", 220)
    snap("invoice")

    # -- a payment allocated to it -----------------------------------------------------------
    navigate(page, "Payments")
    page.get_by_role("link", name="New payment").click()
    page.get_by_label("Payment type").select_option("receive")
    choose(page, "Search for party", "analy", CUSTOMER)
    page.locator("#f-amount").fill("480")
    choose(page, "Search for invoice, line 1", "SINV", invoice)
    page.get_by_label("Amount, line 1").fill("480")
    save(page)
    assert shown(page, "unallocated_amount") == "0.00"
    submit(page, "payment")
    assert shown(page, "allocated_amount") == "480.00"
    assert cells(page)["Invoice"] == invoice
    show(page, "#f-allocations", 380)
    snap("payment")

    navigate(page, "Sales invoices")
    page.locator("table.records tbody tr", has_text=invoice).get_by_role("link").first.click()
    assert shown(page, "outstanding") == "€0.00"
    assert shown(page, "status") == "Paid"

    # -- the customer: lifetime value and outstanding; the opportunity: paid -----------------
    navigate(page, "Accounts")
    page.locator("table.records tbody tr", has_text=CUSTOMER).get_by_role("link").first.click()
    assert shown(page, "lifetime_value") == "480.00"
    assert shown(page, "outstanding") == "0.00"
    assert re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}, \d{4}", shown(page, "last_order_date"))
    show(page, "#f-lifetime_value", 300)
    snap("account")

    navigate(page, "Opportunities")
    page.locator("table.records tbody tr", has_text=CUSTOMER).get_by_role("link").first.click()
    assert shown(page, "payment_status") == "Paid"
    assert shown(page, "invoiced_amount") == "480.00"
    assert shown(page, "outstanding_amount") == "0.00"
    assert shown(page, "sales_order") == order

    navigate(page, "Sales orders")  # delivered and billed in full
    page.locator("table.records tbody tr", has_text=order).get_by_role("link").first.click()
    assert shown(page, "status") == "Completed"
    assert shown(page, "per_billed") == "100.00"

    # -- each pack's dashboard ---------------------------------------------------------------
    def tile(label: str) -> str:
        heading = page.get_by_role("heading", name=label, exact=True)
        return page.locator(".tile", has=heading).text_content() or ""

    navigate(page, "Sales forecast")
    assert "Closed won" in tile("Pipeline by stage")
    assert "480.00" in tile("Pipeline by stage")
    snap("dashboard-sales")
    navigate(page, "Stock")
    assert "200.00" in tile("Stock value")  # 8 chairs at 25.00
    assert "Main" in tile("Stock value by warehouse")  # the warehouse's name, not its id
    snap("dashboard-stock")
    navigate(page, "Orders overview")
    assert CUSTOMER in tile("Order value by customer")
    snap("dashboard-orders")
    navigate(page, "Finance overview")
    assert "480.00" in tile("Bank and cash (debit - credit)")
    assert CUSTOMER in tile("Top customers by lifetime value")
    show(page, 'h2:text-is("Invoices by status")', 200)
    snap("dashboard-finance")
