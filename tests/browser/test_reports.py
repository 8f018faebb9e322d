"""A report in a real headless Chromium against a real ``tessera serve`` with the finance
pack: from the finance dashboard to profit and loss, a period picked with the date inputs
and the figures changing with it; the balance sheet on a date. The screenshot is the user
guide's (docs/user-guide-quote-to-cash.md, "See your profit")."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_quote_to_cash import choose
from tests.browser.test_web import open_page, served, sign_in
from tests.conftest import REPO, Instance, write_instance
from tests.integration.web.test_screens import PASSWORD
from tests.modules.finance.conftest import Books
from tests.modules.finance.test_reports import post_ledger
from tests.support.fixture_records import migrate_with_fixtures
from tests.support.identity import issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser


def _instance(db_url: str, tmp_path: Path) -> Instance:
    """The finance pack, its chart of accounts, the small ledger of the HTTP tests and a
    finance viewer."""
    instance = write_instance(tmp_path / "i", db_url, ["finance"], [REPO / "modules"])
    migrate_with_fixtures(instance)
    with instance.client() as client:
        post_ledger(Books(client))
    issue_token(instance.settings.database_url, "vic", ("finance_viewer",), password=PASSWORD)
    return instance


@pytest.fixture
def books_site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_instance, db_url, tmp_path) as base:
        yield base


def figure(page: Page, row: str) -> str:
    """The first figure of the report's row headed ``row``."""
    line = page.locator("table.report tr", has=page.locator("th", has_text=row)).first
    return (line.locator("td.num").first.text_content() or "").strip()


def show_period(page: Page, start: str, end: str) -> None:
    page.get_by_label("From").fill(start)
    page.get_by_label("To").fill(end)
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**from={start}&to={end}")


def test_pick_a_period_and_see_the_profit(
    chromium: Browser, books_site: str, screenshots: Path
) -> None:
    page = open_page(chromium, 1200, 800)
    sign_in(page, books_site, "vic")
    page.goto(f"{books_site}/app/_dashboards/finance/finance")
    page.get_by_role("navigation", name="Reports").get_by_role(
        "link", name="Profit and loss"
    ).click()
    page.wait_for_url("**/app/_reports/finance/profit_and_loss")
    assert page.get_by_label("To").input_value()  # today, filled in

    show_period(page, "2026-03-01", "2026-03-31")
    assert figure(page, "Sales") == "1,000.00" or figure(page, "Sales") == "1000.00"
    assert figure(page, "Rent").endswith("300.00")
    assert figure(page, "Net profit").endswith("300.00")
    page.screenshot(path=screenshots / "report-profit-and-loss.png")

    show_period(page, "2026-04-01", "2026-04-30")
    assert figure(page, "Sales").endswith("70.00")
    assert figure(page, "Net profit").endswith("70.00")
    assert page.get_by_text("Nothing in this period.").count() == 1

    page.get_by_role("navigation", name="Packs and entities").get_by_role(
        "link", name="Balance sheet"
    ).click()
    page.wait_for_url("**/app/_reports/finance/balance_sheet")
    page.get_by_label("As of").fill("2026-03-31")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**as_of=2026-03-31")
    assert figure(page, "Total assets") == figure(page, "Total liabilities and equity")
    assert figure(page, "Difference").endswith("0.00")


def _kitchen(db_url: str, tmp_path: Path) -> Instance:
    """The kitchen pack's stock report (a reference parameter to a category), two
    categories, an item of each due today (inside the report's default period)."""
    instance = write_instance(tmp_path / "k", db_url, ["kitchen"])
    instance.migrate()
    today = dt.datetime.now(dt.UTC).date().isoformat()
    with instance.client() as client:
        for number, name in enumerate(["Tools", "Parts"], start=1):
            category = client.post("/api/v1/kitchen/category", json={"name": name})
            item = {"name": f"{name} item", "quantity": number, "due": today}
            item["category"] = category.json()["data"]["id"]
            assert client.post("/api/v1/kitchen/item", json=item).status_code == 201
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    return instance


def test_a_reference_parameter_is_picked_by_title(
    chromium: Browser, db_url: str, tmp_path: Path
) -> None:
    """The picker of a record form on a report's form: typing searches the categories,
    the one chosen narrows the report, and the search box's text is not sent with it."""
    with served(_kitchen, db_url, tmp_path) as base:
        page = open_page(chromium, 1200, 800)
        sign_in(page, base, "ada")
        page.goto(f"{base}/app/_reports/kitchen/stock")
        assert figure(page, "Parts") == "2"
        choose(page, "Search for category", "too", "Tools")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url("**category=*")
        assert "q=" not in page.url.split("?", 1)[1]
        assert (
            page.get_by_label("Category", exact=True).locator("option:checked").inner_text()
            == "Tools"
        )
        assert figure(page, "Tools") == "1"
        assert page.locator("table.report th", has_text="Parts").count() == 0
