"""Business documents in a real headless Chromium against a real ``tessera serve``, on
SQLite and PostgreSQL: a clerk drafts a purchase request, a manager submits it after
confirming (the badge changes, the form freezes but for its note), cancels it, the clerk
amends it into a new draft; the list strikes the cancelled one through."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_web import open_page, served, sign_in
from tests.conftest import Instance, pack_instance
from tests.integration.web.test_documents_web import FILES, PASSWORD, USERS
from tests.support.identity import issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
FORM = re.compile(r".*/app/buying/purchase_request/(\d+)\?(saved=1|done=\w+)$")


def _instance(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(tmp_path, db_url, "buying", FILES)
    for name, role in USERS.items():
        issue_token(instance.settings.database_url, name, (role,), password=PASSWORD)
    return instance


@pytest.fixture
def buying_site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_instance, db_url, tmp_path) as base:
        yield base


def status_of(page: Page) -> str:
    """The form's status badge as a screen reader reads it."""
    return page.locator("h1 .badge").text_content() or ""


def record_id(page: Page) -> str:
    found = FORM.match(page.url)
    assert found, page.url
    return found.group(1)


def test_submit_cancel_and_amend_a_document(
    chromium: Browser, buying_site: str, screenshots: Path
) -> None:
    site = buying_site
    clerk = open_page(chromium)
    sign_in(clerk, site, "carl")
    clerk.goto(f"{site}/app/buying/purchase_request/new")
    clerk.get_by_label("Title").fill("Laptops")
    clerk.get_by_label("Needed by").fill("2026-12-31")
    clerk.get_by_label("Item, line 1").fill("laptop")
    clerk.get_by_label("Quantity, line 1").fill("2")
    clerk.get_by_label("Rate, line 1").fill("100")
    clerk.get_by_role("button", name="Save").click()
    clerk.wait_for_url(FORM)
    first = record_id(clerk)
    assert status_of(clerk) == "Status: Draft"
    assert clerk.get_by_role("link", name="Submit…").count() == 0  # a clerk may not submit

    manager = open_page(chromium)
    sign_in(manager, site, "mia")
    manager.goto(f"{site}/app/buying/purchase_request/{first}")
    manager.get_by_role("link", name="Submit…").click()
    assert manager.get_by_role("heading", name="Submit Laptops?").is_visible()
    manager.screenshot(path=screenshots / "document-confirm.png", full_page=True)
    manager.get_by_role("link", name="Go back").click()  # changed her mind: nothing moved
    assert status_of(manager) == "Status: Draft"
    manager.get_by_role("link", name="Submit…").click()
    manager.get_by_role("button", name="Submit purchase request").click()
    manager.wait_for_url(re.compile(r".*\?done=submit$"))
    assert manager.locator("p[role=status]").inner_text() == "Submitted."
    assert status_of(manager) == "Status: Submitted"

    # the clerk's form is frozen now, but for the note (allow_on_submit)
    clerk.reload()
    assert status_of(clerk) == "Status: Submitted"
    assert clerk.locator("#f-title").evaluate("el => el.tagName") == "OUTPUT"
    assert clerk.locator("table.lines input").count() == 0
    clerk.get_by_label("Note").fill("ordered from the usual supplier")
    clerk.get_by_role("button", name="Save").click()
    clerk.wait_for_url(re.compile(r".*\?saved=1$"))
    assert clerk.get_by_label("Note").input_value() == "ordered from the usual supplier"
    clerk.screenshot(path=screenshots / "document-submitted.png", full_page=True)

    manager.reload()
    manager.get_by_role("link", name="Cancel…").click()
    manager.get_by_role("button", name="Cancel purchase request").click()
    manager.wait_for_url(re.compile(r".*\?done=cancel$"))
    assert status_of(manager) == "Status: Cancelled"
    assert manager.get_by_role("link", name="Amend…").count() == 0  # no create grant

    clerk.reload()
    clerk.get_by_role("link", name="Amend…").click()
    clerk.get_by_role("button", name="Amend purchase request").click()
    clerk.wait_for_url(re.compile(r".*\?done=amend$"))
    second = record_id(clerk)
    assert second != first
    assert status_of(clerk) == "Status: Draft"
    assert clerk.get_by_label("Item, line 1").input_value() == "laptop"  # lines copied
    clerk.get_by_role("link", name=f"Laptops (#{first})").click()  # amended from
    clerk.wait_for_url(re.compile(rf".*/purchase_request/{first}$"))
    assert clerk.get_by_role("link", name=f"Laptops (#{second})").is_visible()  # amended by

    clerk.goto(f"{site}/app/buying/purchase_request")
    rows = clerk.locator("table.records tbody tr")
    assert rows.count() == 2
    struck = clerk.locator("table.records tbody tr.cancelled")
    assert struck.count() == 1
    assert struck.locator(".badge").text_content() == "Status: Cancelled"
    assert "line-through" in struck.locator("td").first.evaluate(
        "el => getComputedStyle(el).textDecorationLine"
    )
    # the badge is an inline block, which a line through its row does not cross
    assert struck.locator(".badge").evaluate("el => getComputedStyle(el).display") == (
        "inline-block"
    )
    clerk.screenshot(path=screenshots / "document-list.png", full_page=True)
