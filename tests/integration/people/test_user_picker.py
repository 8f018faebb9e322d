"""The web form's picker of a ``user`` field: the active users by name (``/app/_users/
_options``, filtered by what is typed), the chosen user saved as their id and shown by
name, an unknown name refused at the field. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.conftest import pack_instance
from tests.integration.people.test_user_fields import FILES
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


@pytest.fixture
def browser(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "work", FILES)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    for name in ["ann", "anika", "bob"]:
        issue_token(instance.settings.database_url, name, ("worker",))
    with signed_in(instance, "ada", PASSWORD) as client:
        yield client


def _options(browser: TestClient, **params: str) -> dict[str, str]:
    page = browser.get("/app/_users/_options", params=params)
    assert page.status_code == 200, page.text
    found = re.findall(r'<option value="(\d+)"[^>]*>([^<]+)<', page.text)
    return {name: ident for ident, name in found}


def test_the_picker_offers_users_by_name(browser: TestClient) -> None:
    form = browser.get("/app/work/task/new")
    assert 'hx-get="/app/_users/_options"' in form.text
    everyone = _options(browser)
    assert {"ada", "ann", "anika", "bob"} <= set(everyone)
    assert set(_options(browser, q="AN")) == {"ann", "anika"}
    assert _options(browser, q="%") == {}
    token = csrf_of(form)
    made = browser.post(
        "/app/work/task/new",
        data={"csrf_token": token, "title": "Web", "assigned_to": everyone["ann"]},
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    page = browser.get(made.headers["location"])
    assert re.search(rf'<option value="{everyone["ann"]}" selected>ann</option>', page.text)
    refused = browser.post(
        "/app/work/task/new",
        data={"csrf_token": token, "title": "Web", "assigned_to": "zed"},
        follow_redirects=False,
    )
    assert refused.status_code == 422, refused.text[:500]
    assert "no active user named" in refused.text


def test_the_list_shows_and_filters_users_by_name(browser: TestClient) -> None:
    users = _options(browser)
    token = csrf_of(browser.get("/app/work/task/new"))
    for title, who in [("For Ann", "ann"), ("For Bob", "bob")]:
        made = browser.post(
            "/app/work/task/new",
            data={"csrf_token": token, "title": title, "assigned_to": users[who]},
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
    listed = browser.get("/app/work/task")
    assert 'name="assigned_to"' in listed.text  # the filter takes a user name
    assert re.search(r'data-label="Assigned to">\s*ann\s*<', listed.text), listed.text[-3000:]
    filtered = browser.get("/app/work/task", params={"assigned_to": "bob"})
    assert filtered.status_code == 200
    assert "For Bob" in filtered.text
    assert "For Ann" not in filtered.text
