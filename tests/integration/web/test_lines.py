"""Child tables on the form, over HTTP on SQLite and PostgreSQL: lines are added, changed
and removed with their parent, in one save; a line's error shows at its cell."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, write_instance
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


@pytest.fixture
def browser(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance: Instance = write_instance(tmp_path / "instance", db_url, ["kitchen"])
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(instance, "ada", PASSWORD) as client:
        yield client


def lines_of(client: TestClient, item: str) -> list[tuple[str, int]]:
    record = client.get(f"/app/kitchen/item/{item}")
    found = re.findall(
        r'name="lines\[(\d+)\]\.description"[^>]*value="([^"]*)".*?name="lines\[\1\]\.qty"[^>]*value="(\d*)"',
        record.text,
        re.S,
    )
    return [(description, int(qty)) for _, description, qty in found if description]


def test_lines_are_added_changed_and_removed_with_their_parent(browser: TestClient) -> None:
    form = browser.get("/app/kitchen/item/new")
    assert 'name="lines[0].description"' in form.text  # the blank row for a first line
    assert 'id="tpl-lines"' in form.text
    token = csrf_of(form)
    made = browser.post(
        "/app/kitchen/item/new",
        data={
            "csrf_token": token,
            "name": "Kettle",
            "lines[0].description": "Body",
            "lines[0].qty": "1",
            "lines[1].description": "Lid",
            "lines[1].qty": "2",
            "lines[2].description": "",
            "lines[2].qty": "",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    item = made.headers["location"].split("/")[-1].split("?")[0]
    assert lines_of(browser, item) == [("Body", 1), ("Lid", 2)]
    page = browser.get(f"/app/kitchen/item/{item}")
    ids = re.findall(r'name="lines\[(\d)\]\.id" value="(\d+)"', page.text)
    assert len(ids) == 2
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version
    changed = browser.post(
        f"/app/kitchen/item/{item}",
        data={
            "csrf_token": token,
            "version": version.group(1),
            "lines[0].id": ids[0][1],
            "lines[0].description": "Body",
            "lines[0].qty": "3",
            "lines[1].id": ids[1][1],
            "lines[1].description": "Lid",
            "lines[1].qty": "2",
            "lines[1]._remove": "true",
            "lines[5].description": "Whistle",
            "lines[5].qty": "1",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text
    assert lines_of(browser, item) == [("Body", 3), ("Whistle", 1)]
    api = browser.get(
        f"/api/v1/kitchen/item/{item}",
    )
    assert api.status_code == 401  # the screens' cookie is not an API credential


def test_a_line_error_shows_at_its_cell_and_nothing_is_saved(browser: TestClient) -> None:
    token = csrf_of(browser.get("/app/kitchen/item/new"))
    refused = browser.post(
        "/app/kitchen/item/new",
        data={
            "csrf_token": token,
            "name": "Pot",
            "lines[0].description": "Handle",
            "lines[0].qty": "0",
        },
    )
    assert refused.status_code == 422
    assert 'id="f-lines-0-qty-error"' in refused.text
    assert "Lines, line 1: qty" in refused.text
    assert 'value="Handle"' in refused.text  # the typed line is kept
    assert "Pot" not in browser.get("/app/kitchen/item").text.split("<tbody>")[1]
