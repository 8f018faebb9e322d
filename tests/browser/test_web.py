"""The web UI in a real headless Chromium against a real ``tessera serve``, on SQLite and
PostgreSQL: sign in, create and edit with validation errors, the reference picker's live
search, delete, what a user without rights sees, keyboard access and a phone's width."""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, pack_instance, write_instance
from tests.integration.web.test_conditions import conditions_instance
from tests.integration.web.test_lines import SHOP
from tests.integration.web.test_screens import FILES, PASSWORD
from tests.support.identity import issue_token
from tests.support.server import serving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
LONG_NAME = "Überlange-Bezeichnung-ohne-Leerzeichen-" * 2


def _instance(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(
        tmp_path,
        db_url,
        "crm",
        FILES,
        customizations=str(tmp_path / "custom"),
        meta_api_writes=True,
    )
    for name, role in [("ada", "admin"), ("vic", "viewer")]:
        issue_token(instance.settings.database_url, name, (role,), password=PASSWORD)
    return instance


@contextlib.contextmanager
def served(build: Callable[[str, Path], Instance], db_url: str, tmp_path: Path) -> Iterator[str]:
    """Build an instance and serve it. The instance is built in another thread: Playwright's
    synchronous API keeps an event loop running in this one, which ``asyncio.run`` refuses."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        instance = pool.submit(build, db_url, tmp_path).result()
    with serving(instance.path) as base:
        yield base


@pytest.fixture
def site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_instance, db_url, tmp_path) as base:
        yield base


def open_page(chromium: Browser, width: int = 1280, height: int = 900) -> Page:
    page = chromium.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(10_000)
    return page


def navigate(page: Page, entities: str) -> None:
    page.get_by_role("navigation", name="Packs and entities").get_by_role(
        "link", name=entities
    ).click()


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/app")
    assert page.url.startswith(f"{base}/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/app")


def test_create_edit_and_delete_a_record(chromium: Browser, site: str, screenshots: Path) -> None:
    page = open_page(chromium)
    page.goto(f"{site}/login")
    page.screenshot(path=screenshots / "sign-in.png")
    sign_in(page, site, "ada")
    assert page.evaluate("typeof htmx") == "object"  # the npm-installed asset is served
    for name in ["Acme Corporation", "Globex", "Initech"]:
        page.goto(f"{site}/app/crm/account/new")
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r".*/app/crm/account/\d+\?saved=1"))
    page.screenshot(path=screenshots / "home.png")

    # a form sent empty: the errors show at their fields, focus goes to the summary
    navigate(page, "Deals")
    page.get_by_role("link", name="New deal").click()
    page.get_by_label("Amount").fill("-3")
    page.get_by_role("button", name="Save").click()
    assert page.locator("#f-name-error").is_visible()
    assert "must be at least 0" in page.locator("#f-amount-error").inner_text()
    assert page.evaluate("document.activeElement.id") == "form-errors"
    page.screenshot(path=screenshots / "form-errors.png", full_page=True)

    # fixed, with the account found by typing into the picker
    page.get_by_label("Name").fill(LONG_NAME)
    page.get_by_label("Amount").fill("1250.50")
    page.get_by_label("Status").select_option("won")
    page.get_by_label("Close date").fill("2026-12-15")
    page.get_by_label("Search for account").fill("glo")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#f-account option')]"
        ".map(o => o.text).join('|') === '—|Globex'"
    )
    page.locator("#f-account").select_option(label="Globex")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/app/crm/deal/\d+\?saved=1"))
    assert page.get_by_role("status").inner_text() == "Saved."
    assert page.locator("#f-account option:checked").inner_text() == "Globex"
    page.screenshot(path=screenshots / "form.png", full_page=True)

    # edited: a rule's refusal, then a valid change
    page.get_by_label("Amount").fill("")
    page.get_by_role("button", name="Save").click()
    assert "A won deal needs an amount" in page.locator("#f-amount-error").inner_text()
    page.get_by_label("Amount").fill("99")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*\?saved=1"))
    assert page.get_by_label("Amount").input_value() == "99.00"

    # listed, searched live, then deleted after confirming
    navigate(page, "Deals")
    page.get_by_label("Search deals").fill("ohne")
    page.wait_for_url(re.compile(r".*q=ohne"))
    assert page.locator("table.records tbody tr").count() == 1
    page.screenshot(path=screenshots / "list.png", full_page=True)
    page.locator("table.records tbody a").first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r".*/app/crm/deal\?deleted=1"))
    assert "No deals match." in page.locator("table.records").inner_text()


def test_a_user_without_rights_does_not_see_the_entity(chromium: Browser, site: str) -> None:
    page = open_page(chromium)
    sign_in(page, site, "vic")
    navigation = page.get_by_role("navigation", name="Packs and entities")
    assert navigation.get_by_role("link", name="Deals").is_visible()
    assert navigation.get_by_role("link", name="Accounts").count() == 0
    page.goto(f"{site}/app/crm/account")
    assert page.get_by_role("heading", name="Not allowed").is_visible()
    page.goto(f"{site}/app/crm/deal")
    assert page.get_by_role("link", name="New deal").count() == 0


def test_keyboard_and_a_phones_width(chromium: Browser, site: str, screenshots: Path) -> None:
    page = open_page(chromium, width=375, height=740)
    sign_in(page, site, "ada")
    page.goto(f"{site}/app/crm/deal/new")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-name"
    page.keyboard.type(LONG_NAME)
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
              .map(el => el.name)"""
    )
    assert unlabeled == []
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*\?saved=1"))
    for path in ["/app", "/app/crm/deal", page.url.removeprefix(site)]:
        page.goto(f"{site}{path}")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)
    page.goto(f"{site}/app/crm/deal")
    page.screenshot(path=screenshots / "list-phone.png", full_page=True)


def test_kanban_drag_goes_through_the_rules(
    chromium: Browser, site: str, screenshots: Path
) -> None:
    page = open_page(chromium)
    sign_in(page, site, "ada")
    for name, amount in [("Needs amount", ""), ("Has amount", "500")]:
        page.goto(f"{site}/app/crm/deal/new")
        page.get_by_label("Name").fill(name)
        page.get_by_label("Amount").fill(amount)
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r".*\?saved=1"))
    navigate(page, "Deals")
    page.get_by_role("link", name="Kanban").click()
    won = page.locator('.kanban-column[data-value="won"]')
    opened = page.locator('.kanban-column[data-value="open"]')
    status = page.locator("#kanban-status")

    page.locator(".kanban-card", has_text="Needs amount").drag_to(won)
    status.filter(has_text="Not moved").wait_for()
    assert "A won deal needs an amount" in status.inner_text()
    assert opened.locator(".kanban-card", has_text="Needs amount").count() == 1  # snapped back
    page.screenshot(path=screenshots / "kanban.png")

    page.locator(".kanban-card", has_text="Has amount").drag_to(won)
    status.filter(has_text="Moved to won").wait_for()
    page.reload()
    assert won.locator(".kanban-card", has_text="Has amount").count() == 1
    assert opened.locator(".kanban-card").count() == 1
    page.get_by_role("link", name="Pipeline").click()
    page.wait_for_url(re.compile(r".*/app/_dashboards/crm/pipeline"))
    assert page.locator(".chart-bar").count() >= 2
    assert page.locator("svg.chart").first.is_visible()
    page.screenshot(path=screenshots / "dashboard.png", full_page=True)


def test_the_designer_adds_a_field_that_appears_on_the_form(
    chromium: Browser, site: str, screenshots: Path
) -> None:
    page = open_page(chromium)
    sign_in(page, site, "ada")
    page.get_by_role("link", name="Designer").click()
    page.locator("main").get_by_role("link", name="Deals").click()
    page.screenshot(path=screenshots / "designer.png", full_page=True)
    add = page.locator("form[action$='/field']")
    add.get_by_label("Name").fill("loyalty_tier")
    add.get_by_label("Label").fill("Loyalty tier")
    add.get_by_label("Type").select_option("enum")
    add.get_by_label("Values (enum)").fill("bronze, silver, gold")
    add.get_by_role("button", name="Preview").click()
    diff = page.get_by_label("Diff of the customization file")
    assert "loyalty_tier: {type: enum" in diff.inner_text()
    assert "add column crm_deal.loyalty_tier" in page.locator(".plan").inner_text()
    page.screenshot(path=screenshots / "designer-preview.png", full_page=True)
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r".*applied=field"))
    assert "Loyalty tier" in page.locator("table").first.inner_text()
    page.goto(f"{site}/app/crm/deal/new")
    page.get_by_label("Name").fill("Tiered")
    page.get_by_label("Loyalty tier").select_option("gold")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*\?saved=1"))
    assert page.get_by_label("Loyalty tier").input_value() == "gold"


def _kitchen(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "kitchen", db_url, ["kitchen"])
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    return instance


@pytest.fixture
def kitchen_site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_kitchen, db_url, tmp_path) as base:
        yield base


def test_child_rows_are_edited_inline(chromium: Browser, kitchen_site: str) -> None:
    page = open_page(chromium)
    sign_in(page, kitchen_site, "ada")
    page.goto(f"{kitchen_site}/app/kitchen/item/new")
    page.locator("#f-name").fill("Kettle")
    page.get_by_label("Description, line 1").fill("Body")
    page.get_by_label("Qty, line 1").fill("1")
    page.get_by_role("button", name="Add a line").click()
    page.get_by_label("Description, line 2").fill("Lid")
    page.get_by_label("Qty, line 2").fill("2")
    page.get_by_role("button", name="Add a line").click()
    page.get_by_label("Description, line 3").fill("Spout")
    page.locator("table.lines tbody tr").nth(2).get_by_role("button", name="Remove").click()
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/app/kitchen/item/\d+\?saved=1"))
    descriptions = page.locator("table.lines input[name$='.description']")
    assert [descriptions.nth(i).input_value() for i in range(descriptions.count())] == [
        "Body",
        "Lid",
        "",
    ]
    page.get_by_label("Remove").first.check()
    page.get_by_label("Qty, line 2").fill("0")
    page.get_by_role("button", name="Save").click()
    # refused: the form comes back with the lines as sent (the removed one gone), the
    # error at the refused line's cell, and nothing saved
    assert "must be at least 1" in page.locator("#f-lines-0-qty-error").inner_text()
    assert page.get_by_label("Description, line 1").input_value() == "Lid"
    page.get_by_label("Qty, line 1").fill("5")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*\?saved=1"))
    assert page.get_by_label("Description, line 1").input_value() == "Lid"
    assert page.get_by_label("Qty, line 1").input_value() == "5"


@pytest.fixture
def leads_site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(conditions_instance, db_url, tmp_path) as base:
        yield base


def test_visible_if_and_required_if_react_as_the_user_types(
    chromium: Browser, leads_site: str
) -> None:
    page = open_page(chromium)
    sign_in(page, leads_site, "ada")
    page.goto(f"{leads_site}/app/sales/lead/new")
    fair = page.locator('[data-field="fair_name"]')
    money = page.locator('[data-section="money"]')
    referrer_mark = page.locator('[data-field="referrer"] .req')
    assert fair.is_hidden()
    assert money.is_visible()
    assert referrer_mark.is_hidden()
    page.get_by_label("Source").select_option("fair")
    fair.wait_for(state="visible")
    page.get_by_label("Source").select_option("referral")
    referrer_mark.wait_for(state="visible")
    assert page.locator("#f-referrer").get_attribute("aria-required") == "true"
    assert fair.is_hidden()
    page.get_by_label("Source").select_option("web")
    money.wait_for(state="hidden")
    assert referrer_mark.is_hidden()


def _shop(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(tmp_path, db_url, "shop", SHOP)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    return instance


@pytest.fixture
def shop_site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_shop, db_url, tmp_path) as base:
        yield base


def test_a_lines_reference_is_picked_by_typing(chromium: Browser, shop_site: str) -> None:
    page = open_page(chromium)
    sign_in(page, shop_site, "ada")
    for name, rate in [("Bolt", "0.25"), ("Nut", "0.10"), ("Washer", "0.05")]:
        page.goto(f"{shop_site}/app/shop/product/new")
        page.locator("#f-name").fill(name)
        page.locator("#f-standard_rate").fill(rate)
        page.get_by_role("button", name="Save").click()
        page.wait_for_url(re.compile(r".*/app/shop/product/\d+\?saved=1"))
    page.goto(f"{shop_site}/app/shop/order/new")
    page.locator("#f-ref").fill("O-1")
    page.get_by_label("Search for product, line 1").fill("nu")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#f-lines-0-product option')]"
        ".map(o => o.text).join('|') === '—|Nut'"
    )
    page.get_by_label("Product, line 1", exact=True).select_option(label="Nut")
    page.get_by_label("Qty, line 1").fill("4")
    marker = page.locator("td[data-required-if='lines[0].reason'] .req")
    assert marker.is_hidden()
    page.get_by_label("Discount, line 1").fill("20")  # the line's required_if, live
    marker.wait_for(state="visible")
    assert page.get_by_label("Reason, line 1").get_attribute("aria-required") == "true"
    page.get_by_label("Discount, line 1").fill("")
    marker.wait_for(state="hidden")
    page.get_by_role("button", name="Add a line").click()  # a new row's picker works too
    page.get_by_label("Search for product, line 2").fill("bol")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#f-lines-1-product option')]"
        ".map(o => o.text).join('|') === '—|Bolt'"
    )
    page.get_by_label("Product, line 2", exact=True).select_option(label="Bolt")
    page.get_by_label("Qty, line 2").fill("2")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/app/shop/order/\d+\?saved=1"))
    assert page.locator("#f-lines-0-product option:checked").inner_text() == "Nut"
    assert page.locator("#f-lines-1-product option:checked").inner_text() == "Bolt"
    assert "0.90" in page.locator("#f-total").inner_text()
