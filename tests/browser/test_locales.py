"""Numbers, money and dates as people read them, in a real headless Chromium against a real
``tessera serve`` (docs/locales.md): a de_DE user types ``1.450.000,50`` and reads it back,
amounts are right-aligned (their header too), and a list squeezed to a narrow window never
cuts a word ("Transportation", not "Transportat / ion")."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_web import open_page, served, sign_in
from tests.conftest import REPO, Instance, write_instance
from tests.integration.web.test_screens import PASSWORD
from tests.support.cli import tessera
from tests.support.identity import issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

PACKS = REPO / "docs" / "examples" / "locales" / "packs"
NBSP = "\u00a0"


def _instance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "i", db_url, ["deals"], [PACKS], company={"currency": "EUR"}
    )
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    done = tessera(
        "user",
        "preferences",
        "ada",
        "--locale",
        "de_DE",
        "--timezone",
        "Europe/Berlin",
        cwd=instance.path,
    )
    assert done.returncode == 0, done.stderr
    return instance


@pytest.fixture
def deals_site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_instance, db_url, tmp_path) as base:
        yield base


def add_deal(page: Page, base: str, name: str, industry: str, amount: str) -> None:
    page.goto(f"{base}/app/deals/deal/new")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Industry").select_option(label=industry)
    page.get_by_label("Amount").fill(amount)
    page.get_by_label("Quantity").fill("12.000")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/app/deals/deal/\d+\?saved=1"))


def lines_of(page: Page, selector: str) -> list[int]:
    """How many lines the text of each element takes (a word cut in two takes two)."""
    counted: list[int] = page.eval_on_selector_all(
        selector,
        """cells => cells.map(cell => {
            const range = document.createRange();
            range.selectNodeContents(cell);
            const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
            return tops.size;
        })""",
    )
    return counted


def test_a_german_reader_types_and_reads_german_numbers(
    chromium: Browser, deals_site: str, screenshots: Path
) -> None:
    page = open_page(chromium, 1200, 800)
    sign_in(page, deals_site, "ada")
    add_deal(page, deals_site, "Northwind", "Financial services", "1.450.000,50")
    assert page.get_by_label("Amount").input_value() == "1.450.000,50"
    assert page.get_by_label("Quantity").input_value() == "12.000"
    amount_style = page.get_by_label("Amount").evaluate("e => getComputedStyle(e).textAlign")
    assert amount_style == "right"

    page.get_by_label("Amount").fill("1450.50")  # not how de_DE writes it: refused
    page.get_by_role("button", name="Save").click()
    assert "is not a number as written in German (Germany)" in (
        page.locator("#f-amount-error").text_content() or ""
    )
    assert page.get_by_label("Amount").input_value() == "1450.50"  # kept as typed

    for name, industry in [("Harbour freight", "Transportation"), ("Corner shop", "Retail")]:
        add_deal(page, deals_site, name, industry, "-99,5")
    page.goto(f"{deals_site}/app/deals/deal")
    amount = page.locator('td[data-label="Amount"]').first
    assert (amount.text_content() or "").strip() in {
        f"1.450.000,50{NBSP}€",
        f"-99,50{NBSP}€",
    }
    cell_align = amount.evaluate("e => getComputedStyle(e).textAlign")
    header_align = page.locator("th.num").first.evaluate("e => getComputedStyle(e).textAlign")
    name_align = page.locator('td[data-label="Name"]').first.evaluate(
        "e => getComputedStyle(e).textAlign"
    )
    assert (cell_align, header_align, name_align) == ("right", "right", "left")
    page.screenshot(path=screenshots / "locales-list-de.png")


def test_a_narrow_list_never_cuts_a_word(chromium: Browser, deals_site: str) -> None:
    page = open_page(chromium, 1200, 800)
    sign_in(page, deals_site, "ada")
    add_deal(page, deals_site, "Harbour freight and warehousing", "Transportation", "1,5")
    for width in (1024, 760, 640):  # the table layout (below 600 px each row is a card)
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{deals_site}/app/deals/deal")
        industry = page.locator('td[data-label="Industry"]').first
        assert (industry.text_content() or "").strip() == "Transportation"
        assert lines_of(page, 'td[data-label="Industry"]') == [1], width
        assert lines_of(page, 'td[data-label="Amount"]') == [1], width
        styles = industry.evaluate(
            "e => [getComputedStyle(e).overflowWrap, getComputedStyle(e).wordBreak,"
            " getComputedStyle(e).hyphens]"
        )
        assert styles == ["break-word", "normal", "manual"]


def test_a_lines_total_is_in_its_deals_currency(chromium: Browser, deals_site: str) -> None:
    """A line typed on the deal's form (docs/locales.md "Money on lines"): its computed
    total reads ``1.450,00 €`` in the lines table of the EUR deal, ``1.450,00 $`` once the
    deal is in dollars; the price input keeps the number alone."""
    page = open_page(chromium, 1200, 800)
    sign_in(page, deals_site, "ada")
    page.goto(f"{deals_site}/app/deals/deal/new")
    page.get_by_label("Name").fill("Consulting for Northwind")
    page.get_by_label("Product, line 1").fill("Consulting")
    page.get_by_label("Hours, line 1").fill("2")
    page.get_by_label("Price, line 1").fill("725")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/app/deals/deal/\d+\?saved=1"))
    total = page.locator('table.lines td[data-label="Total"]').first
    assert (total.text_content() or "").strip() == f"1.450,00{NBSP}€"
    assert total.evaluate("e => getComputedStyle(e).textAlign") == "right"
    assert page.get_by_label("Price, line 1").input_value() == "725,00"
    page.get_by_label("Currency").fill("USD")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/app/deals/deal/\d+\?saved=1"))
    total = page.locator('table.lines td[data-label="Total"]').first
    assert (total.text_content() or "").strip() == f"1.450,00{NBSP}$"
