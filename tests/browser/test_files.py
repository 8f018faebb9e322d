"""Files in a real headless Chromium against a real ``tessera serve``, on SQLite and
PostgreSQL: a clerk uploads a receipt into a file field from the form, downloads it by its
name, attaches a second file in the Attachments section, downloads and deletes it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_web import PASSWORD, open_page, served, sign_in
from tests.integration.files.conftest import PDF, papers_instance
from tests.support.identity import issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from playwright.sync_api import Browser

    from tests.conftest import Instance

pytestmark = pytest.mark.browser
SAVED = re.compile(r".*/app/papers/claim/(\d+)\?saved=1(#attachments)?$")


def _instance(db_url: str, tmp_path: Path) -> Instance:
    instance = papers_instance(db_url, tmp_path)
    issue_token(instance.settings.database_url, "carla", ("clerk",), password=PASSWORD)
    return instance


@pytest.fixture
def papers_site(db_url: str, tmp_path: Path) -> Iterator[str]:
    with served(_instance, db_url, tmp_path) as base:
        yield base


def test_upload_download_attach_and_delete(
    chromium: Browser, papers_site: str, tmp_path: Path, screenshots: Path
) -> None:
    site = papers_site
    receipt = tmp_path / "taxi receipt.pdf"
    receipt.write_bytes(PDF)
    notes = tmp_path / "notes.txt"
    notes.write_text("kilometres: 12\n", encoding="utf-8")
    page = open_page(chromium)
    sign_in(page, site, "carla")
    page.goto(f"{site}/app/papers/claim/new")
    page.get_by_label("Title").fill("Taxi to the airport")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(SAVED)

    page.get_by_label("Upload a file to Receipt").set_input_files(receipt)
    page.locator("[data-field=receipt]").get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(SAVED)
    link = page.get_by_role("link", name="taxi receipt.pdf")
    assert link.is_visible()
    with page.expect_download() as downloading:
        link.click()
    got = downloading.value
    assert got.suggested_filename == "taxi receipt.pdf"
    assert got.path().read_bytes() == PDF

    page.get_by_label("File to attach").set_input_files(notes)
    page.get_by_role("button", name="Attach", exact=True).click()
    page.wait_for_url(SAVED)
    section = page.locator("#attachments")
    assert section.get_by_role("heading", name="Attachments (1)").is_visible()
    page.screenshot(path=screenshots / "files-form.png", full_page=True)
    with page.expect_download() as downloading:
        section.get_by_role("link", name="notes.txt").click()
    assert downloading.value.path().read_text(encoding="utf-8") == "kilometres: 12\n"
    page.once("dialog", lambda dialog: dialog.accept())
    section.get_by_role("button", name="Delete").click()
    page.wait_for_url(SAVED)
    assert page.locator("#attachments").get_by_text("No attachments.").is_visible()

    # a file of a type the field does not take: an error page says why, nothing changes
    page.get_by_label("Upload a file to Receipt").set_input_files(notes)
    page.locator("[data-field=receipt]").get_by_role("button", name="Upload", exact=True).click()
    assert "text/plain" in (page.text_content("main") or "")
