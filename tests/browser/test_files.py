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

    from playwright.sync_api import Browser, Page

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

    # a file of a type the field does not take: the form again, the reason at the field
    page.get_by_label("Upload a file to Receipt").set_input_files(notes)
    page.locator("[data-field=receipt]").get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_load_state()
    assert "text/plain" in (page.locator("#f-receipt-error").text_content() or "")
    assert page.get_by_role("link", name="taxi receipt.pdf").is_visible()  # kept


def _upload(page: Page, label: str, path: Path, button: str) -> None:
    page.get_by_label(label).set_input_files(path)
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state()


def test_refused_uploads_and_a_lines_file(
    chromium: Browser, papers_site: str, tmp_path: Path, screenshots: Path
) -> None:
    """A refused upload (a type the field does not take; too large, streamed or declared;
    no file chosen) shows the claim's form again with the reason under the field and
    everything else as it was; a line's file is uploaded, downloaded and refused in its
    row."""
    site = papers_site
    notes = tmp_path / "notes.txt"
    notes.write_text("kilometres: 12\n", encoding="utf-8")
    receipt = tmp_path / "receipt.pdf"
    receipt.write_bytes(PDF)
    streamed = tmp_path / "big.pdf"  # over the field's 2 kB, under what a body may declare
    streamed.write_bytes(PDF + b"0" * 5_000)
    declared = tmp_path / "huge.pdf"  # refused from its Content-Length, before it is read
    declared.write_bytes(PDF + b"0" * 200_000)
    page = open_page(chromium)
    sign_in(page, site, "carla")
    page.goto(f"{site}/app/papers/claim/new")
    page.get_by_label("Title").fill("Hotel in Lyon")
    page.get_by_label("What, line 1").fill("Taxi")
    page.get_by_label("Amount, line 1").fill("12.50")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(SAVED)
    _upload(page, "File to attach", receipt, "Attach")
    page.wait_for_url(SAVED)

    cases = [(notes, "text/plain"), (streamed, "larger than 2000 bytes")]
    cases.append((declared, "larger than 2000 bytes"))
    field = page.locator("[data-field=receipt]")
    for path, reason in cases:
        page.get_by_label("Upload a file to Receipt").set_input_files(path)
        field.get_by_role("button", name="Upload", exact=True).click()
        error = page.locator("[data-field=receipt] .error-text")
        error.wait_for()
        assert reason in (error.text_content() or ""), path
        assert page.locator("[data-field=receipt]").get_attribute("class") == "field invalid"
        summary = page.get_by_role("alert")
        assert "was not changed" in (summary.text_content() or "")
        assert page.get_by_label("Title").input_value() == "Hotel in Lyon"
        assert page.get_by_label("What, line 1").input_value() == "Taxi"
        assert page.locator("#attachments").get_by_role("link", name="receipt.pdf").is_visible()
    page.screenshot(path=screenshots / "files-refused.png", full_page=True)

    # a line's file: uploaded in its row, then a link; a refusal shows in the row
    _upload(page, "Upload a file to Scan, line 1", receipt, "Upload to Scan, line 1")
    page.wait_for_url(SAVED)
    row = page.locator("[data-lines=lines] tr[data-line]").first
    link = row.get_by_role("link", name="receipt.pdf")
    assert link.is_visible()
    with page.expect_download() as downloading:
        link.click()
    assert downloading.value.path().read_bytes() == PDF
    _upload(page, "Upload a file to Stamp, line 1", notes, "Upload to Stamp, line 1")
    page.wait_for_url(SAVED)
    assert row.get_by_role("link", name="notes.txt").is_visible()
    page.get_by_label("Upload a file to Scan, line 1").set_input_files(notes)
    page.get_by_role("button", name="Upload to Scan, line 1", exact=True).click()
    cell_error = page.locator("#f-lines-0-scan-error")
    cell_error.wait_for()
    assert "text/plain" in (cell_error.text_content() or "")
    assert row.get_by_role("link", name="receipt.pdf").is_visible()  # the file it held
    page.get_by_role("button", name="Remove the file of Stamp, line 1").click()
    page.wait_for_url(SAVED)
    assert row.get_by_role("link", name="notes.txt").count() == 0
