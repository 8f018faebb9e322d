"""The web UI over HTTP, on SQLite and PostgreSQL: sign-in with a session cookie and CSRF
tokens, navigation and screens limited by roles, list, form, validation errors, deletes
and the CSV export. The browser tests (tests/browser) drive the same screens in Chromium."""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from runtime.app import build_app
from tests.conftest import Instance, pack_instance
from tests.support.identity import issue_token
from tests.support.web import csrf_of, sign_in, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from httpx import Response

FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\nlabel: CRM\n",
    "entities/account.yaml": """\
title: name
fields:
  name:   {type: string, required: true, unique: true}
  secret: {type: text}
""",
    "entities/deal.yaml": """\
title: name
fields:
  name:       {type: string, required: true, max_length: 80}
  amount:     {type: decimal, scale: 2, min: 0}
  status:     {type: enum, values: [open, won, lost], default: open}
  close_date: {type: date}
  account:    {type: reference, to: account}
  margin:     {type: decimal, scale: 2}
  notes:      {type: text}
""",
    "rules/deal.yaml": """\
- name: won_needs_amount
  assert: "status != 'won' or amount"
  field: amount
  message: "A won deal needs an amount"
""",
    "dashboards/pipeline.yaml": """\
label: Pipeline
tiles:
  - {label: Open deals, entity: deal, type: number, filter: {status: open}}
  - {label: Amount by status, entity: deal, type: bar, group_by: status, measure: amount__sum}
  - {label: Deals closing per month, entity: deal, type: line, group_by: close_date__month}
  - {label: Margin by status, entity: deal, type: bar, group_by: status, measure: margin__sum}
  - {label: Accounts, entity: account, type: number}
""",
    "roles.yaml": """\
roles:
  viewer:
    grants:
      - {entity: deal, actions: [read], where: "status != 'lost'", hidden_fields: [margin]}
  nobody: {}
""",
}
PASSWORD = "correct horse battery"


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(tmp_path, db_url, "crm", FILES)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    issue_token(instance.settings.database_url, "vic", ("viewer",), password=PASSWORD)
    issue_token(instance.settings.database_url, "nod", ("nobody",), password=PASSWORD)
    return instance


@pytest.fixture
def browser(crm: Instance) -> Iterator[TestClient]:
    """A client that keeps cookies, signed in as the admin ada."""
    with signed_in(crm, "ada", PASSWORD) as client:
        yield client


def seed(client: TestClient) -> dict[str, str]:
    page = client.get("/app/crm/deal/new")
    token = csrf_of(page)
    ids = {}
    for name, status, amount in [
        ("Alpha", "open", "10"),
        ("Beta", "lost", "20"),
        ("Gamma", "won", "30"),
    ]:
        made = client.post(
            "/app/crm/deal/new",
            data={"csrf_token": token, "name": name, "status": status, "amount": amount},
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
        ids[name] = made.headers["location"].split("/")[-1].split("?")[0]
    return ids


def names(page: Response) -> list[str]:
    """The titles of the records a list screen shows, in order."""
    assert page.status_code == 200, page.text[:500]
    return re.findall(r'href="/app/crm/deal/\d+">([^<]+)</a>', page.text)


def test_screens_need_a_session(crm: Instance) -> None:
    with TestClient(build_app(crm.settings), raise_server_exceptions=False) as client:
        for path in ["/app", "/app/crm/deal", "/app/crm/deal/1", "/app/crm/deal/export.csv"]:
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/login?next=")
        assert client.get("/", follow_redirects=False).headers["location"] == "/app"
        # a bearer token is for the API, not for the screens
        headers = {"authorization": f"Bearer {crm.token()}"}
        assert client.get("/app", headers=headers, follow_redirects=False).status_code == 303


def test_sign_in_sets_a_protected_cookie_and_sign_out_revokes_it(crm: Instance) -> None:
    with TestClient(build_app(crm.settings), raise_server_exceptions=False) as client:
        wrong = sign_in(client, "ada", "nope")
        assert wrong.status_code == 401
        assert "Wrong user name or password." in wrong.text
        assert "tessera_session" not in client.cookies
        done = sign_in(client, "ada", PASSWORD, next_page="/app/crm/deal")
        assert done.status_code == 303
        assert done.headers["location"] == "/app/crm/deal"
        cookie = done.headers["set-cookie"]
        assert "tessera_session=tm_" in cookie or "tessera_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
        home = client.get("/app")
        assert home.status_code == 200
        assert "Welcome, ada" in home.text
        assert "default-src 'self'" in home.headers["content-security-policy"]
        session = client.cookies["tessera_session"]
        # the session token is an API token too: revocable, listed, and gone after sign-out
        assert (
            client.get(
                "/api/v1/auth/me", headers={"authorization": f"Bearer {session}"}
            ).status_code
            == 200
        )
        refused = client.post("/logout", data={"csrf_token": "forged"}, follow_redirects=False)
        assert refused.status_code == 403
        out = client.post("/logout", data={"csrf_token": csrf_of(home)}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/app", follow_redirects=False).status_code == 303
        client.cookies.set("tessera_session", session)
        assert client.get("/app", follow_redirects=False).status_code == 303


def test_no_open_redirect_and_no_login_without_the_forms_nonce(crm: Instance) -> None:
    with TestClient(build_app(crm.settings), raise_server_exceptions=False) as client:
        away = sign_in(client, "ada", PASSWORD, next_page="https://evil.example/app")
        assert away.headers["location"] == "/app"
    with TestClient(build_app(crm.settings), raise_server_exceptions=False) as client:
        forged = client.post(
            "/login",
            data={"nonce": "x", "username": "ada", "password": PASSWORD},
            follow_redirects=False,
        )
        assert forged.status_code == 400
        assert "tessera_session" not in client.cookies


def test_list_search_filter_sort_and_pages(browser: TestClient) -> None:
    seed(browser)
    listed = browser.get("/app/crm/deal")
    assert listed.status_code == 200
    assert "Deals" in listed.text
    assert "(3)" in listed.text
    rows = names(listed)
    assert rows == ["Alpha", "Beta", "Gamma"]
    searched = browser.get("/app/crm/deal", params={"q": "amm"})
    assert names(searched) == ["Gamma"]
    filtered = browser.get("/app/crm/deal", params={"status": "lost"})
    assert names(filtered) == ["Beta"]
    ranged = browser.get("/app/crm/deal", params={"amount__gte": "15", "sort": "-amount"})
    assert names(ranged) == ["Gamma", "Beta"]
    assert 'aria-sort="descending"' in ranged.text
    bad = browser.get("/app/crm/deal", params={"amount__gte": "lots"})
    assert bad.status_code == 400
    assert "amount__gte" in bad.text


def test_create_shows_errors_at_their_fields_and_keeps_the_input(browser: TestClient) -> None:
    empty = browser.get("/app/crm/deal/new")
    assert '<option value="open" selected>Open</option>' in empty.text  # the default
    token = csrf_of(empty)
    refused = browser.post(
        "/app/crm/deal/new",
        data={
            "csrf_token": token,
            "name": "",
            "amount": "-5",
            "status": "won",
            "close_date": "soon",
        },
    )
    assert refused.status_code == 422
    text = refused.text
    assert 'id="f-name-error"' in text
    assert 'id="f-amount-error"' in text
    assert 'id="f-close_date-error"' in text
    assert 'aria-invalid="true"' in text
    assert 'value="soon"' in text  # what the user typed is kept
    assert names(browser.get("/app/crm/deal")) == []
    made = browser.post(
        "/app/crm/deal/new",
        data={
            "csrf_token": token,
            "name": "Delta",
            "amount": "5.50",
            "status": "won",
            "close_date": "2026-12-01",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    record = browser.get(made.headers["location"])
    assert "Saved." in record.text
    assert 'value="5.50"' in record.text
    assert 'value="2026-12-01"' in record.text


def test_edit_with_a_rule_error_then_delete(browser: TestClient) -> None:
    ids = seed(browser)
    page = browser.get(f"/app/crm/deal/{ids['Alpha']}")
    token = csrf_of(page)
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version
    refused = browser.post(
        f"/app/crm/deal/{ids['Alpha']}",
        data={"csrf_token": token, "version": version.group(1), "status": "won", "amount": ""},
    )
    assert refused.status_code == 422
    assert "A won deal needs an amount" in refused.text
    saved = browser.post(
        f"/app/crm/deal/{ids['Alpha']}",
        data={"csrf_token": token, "version": version.group(1), "status": "won", "amount": "99"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    stale = browser.post(
        f"/app/crm/deal/{ids['Alpha']}",
        data={"csrf_token": token, "version": version.group(1), "name": "Old"},
    )
    assert stale.status_code == 409  # someone saved in between: nothing is overwritten
    no_csrf = browser.post(f"/app/crm/deal/{ids['Alpha']}/delete", follow_redirects=False)
    assert no_csrf.status_code == 403
    deleted = browser.post(
        f"/app/crm/deal/{ids['Alpha']}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert browser.get(f"/app/crm/deal/{ids['Alpha']}").status_code == 404


def test_bulk_delete_is_all_or_nothing(browser: TestClient) -> None:
    ids = seed(browser)
    token = csrf_of(browser.get("/app/crm/deal"))
    gone = browser.post(
        "/app/crm/deal/_delete",
        data={"csrf_token": token, "ids": [ids["Alpha"], ids["Beta"]]},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    listed = browser.get("/app/crm/deal")
    assert names(listed) == ["Gamma"]


def test_a_viewer_sees_only_what_the_roles_allow(crm: Instance, browser: TestClient) -> None:
    ids = seed(browser)
    with signed_in(crm, "vic", PASSWORD) as viewer:
        home = viewer.get("/app")
        assert 'href="/app/crm/deal"' in home.text
        assert 'href="/app/crm/account"' not in home.text  # no grant: not in the navigation
        assert viewer.get("/app/crm/account").status_code == 403
        listed = viewer.get("/app/crm/deal")
        assert names(listed) == [
            "Alpha",
            "Gamma",
        ]
        assert "New deal" not in listed.text
        assert "Delete selected" not in listed.text
        assert viewer.get(f"/app/crm/deal/{ids['Beta']}").status_code == 404
        form = viewer.get(f"/app/crm/deal/{ids['Alpha']}")
        assert form.status_code == 200
        assert 'name="margin"' not in form.text
        assert "Margin" not in form.text
        assert '<button type="submit" class="button">Save</button>' not in form.text
        exported = list(csv.DictReader(io.StringIO(viewer.get("/app/crm/deal/export.csv").text)))
        assert [r["name"] for r in exported] == ["Alpha", "Gamma"]
        assert "margin" not in exported[0]
        assert viewer.get("/app/crm/deal/new").status_code == 403
        token = csrf_of(form)
        refused = viewer.post(
            f"/app/crm/deal/{ids['Alpha']}", data={"csrf_token": token, "name": "Mine"}
        )
        assert refused.status_code == 403
    with signed_in(crm, "nod", PASSWORD) as nobody:
        assert "do not let you read any records" in nobody.get("/app").text


def test_reference_picker_options_and_titles(browser: TestClient) -> None:
    token = csrf_of(browser.get("/app/crm/account/new"))
    for name in ["Acme", "Globex", "Initech"]:
        browser.post("/app/crm/account/new", data={"csrf_token": token, "name": name})
    options = browser.get("/app/crm/account/_options", params={"q": "glo"})
    assert re.findall(r">([^<]+)</option>", options.text) == ["—", "Globex"]
    acme = re.search(r'<option value="(\d+)">Acme', browser.get("/app/crm/account/_options").text)
    assert acme
    made = browser.post(
        "/app/crm/deal/new",
        data={"csrf_token": token, "name": "Linked", "account": acme.group(1)},
        follow_redirects=False,
    )
    page = browser.get(made.headers["location"])
    assert f'<option value="{acme.group(1)}" selected>Acme</option>' in page.text
    listed = browser.get("/app/crm/deal")
    assert (
        '<td data-label="Account">\n          Acme' in listed.text
        or ">Acme<" in listed.text
        or "Acme" in listed.text
    )
    # searching keeps the current choice selectable
    kept = browser.get("/app/crm/account/_options", params={"q": "ini", "selected": acme.group(1)})
    assert re.findall(r">([^<]+)</option>", kept.text) == ["—", "Acme", "Initech"]


def test_unknown_pages_are_404_pages_not_tracebacks(browser: TestClient) -> None:
    for path in [
        "/app/crm/nothing",
        "/app/crm/deal/abc",
        "/app/crm/deal/999999",
        "/app/x/y/export.csv",
    ]:
        response = browser.get(path)
        assert response.status_code == 404, path
        assert "text/html" in response.headers["content-type"]
        assert "Traceback" not in response.text


def test_a_dashboard_computes_each_tile_for_its_viewer(crm: Instance, browser: TestClient) -> None:
    seed(browser)
    page = browser.get("/app/_dashboards/crm/pipeline")
    assert page.status_code == 200
    assert 'href="/app/_dashboards/crm/pipeline"' in browser.get("/app").text
    figures = re.findall(r'<p class="figure"><a href="([^"]+)">([^<]+)</a></p>', page.text)
    assert figures == [("/app/crm/deal?status=open", "1"), ("/app/crm/account?", "0")]
    data = re.findall(r'<tr><td>(\w+)</td><td class="num">([\d.]+)</td></tr>', page.text)
    assert ("Won", "30.00") in data
    assert ("Lost", "20.00") in data
    assert page.text.count('class="chart-bar"') == 6  # two bar tiles of three statuses
    with signed_in(crm, "vic", PASSWORD) as viewer:
        seen = viewer.get("/app/_dashboards/crm/pipeline")
        assert seen.status_code == 200
        shown = re.findall(r'<tr><td>(\w+)</td><td class="num">([\d.]+)</td></tr>', seen.text)
        assert ("Lost", "20.00") not in shown  # the viewer's where: status != 'lost'
        assert ("Won", "30.00") in shown
        assert seen.text.count("Not available with your roles.") == 2  # margin, accounts
    assert browser.get("/app/_dashboards/crm/nothing").status_code == 404


def test_views_set_the_list_columns_sort_and_board(db_url: str, tmp_path: Path) -> None:
    files = {
        **FILES,
        "views/deal.yaml": (
            "list: {columns: [status, name, amount], sort: -amount}\n"
            "kanban: {group_by: status, card: [amount]}\n"
        ),
    }
    instance = pack_instance(tmp_path, db_url, "crm", files)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(instance, "ada", PASSWORD) as client:
        seed(client)
        listed = client.get("/app/crm/deal")
        headers = re.findall(r'<th scope="col"[^>]*>\s*<a [^>]*>([^<▲▼]+)', listed.text)
        assert [h.strip() for h in headers] == ["Status", "Name", "Amount"]
        assert 'aria-sort="descending"' in listed.text  # the view's sort: -amount
        firsts = re.findall(r'href="/app/crm/deal/\d+">([^<]+)</a>', listed.text)
        assert firsts == ["Won", "Lost", "Open"]  # the first column links to the record
        board = client.get("/app/crm/deal/kanban")
        assert "Amount: 30.00" in board.text


def test_oversized_and_odd_input_gets_pages_not_errors(crm: Instance, browser: TestClient) -> None:
    ids = seed(browser)
    token = csrf_of(browser.get("/app/crm/deal"))
    big = browser.post(
        f"/app/crm/deal/{ids['Alpha']}", data={"csrf_token": token, "notes": "x" * 2_000_000}
    )
    assert big.status_code == 413
    assert "text/html" in big.headers["content-type"]
    for version in ["²", "9" * 30, "-1"]:
        odd = browser.post(
            f"/app/crm/deal/{ids['Alpha']}",
            data={"csrf_token": token, "version": version, "name": "Alpha"},
            follow_redirects=False,
        )
        assert odd.status_code in {303, 409}, (version, odd.status_code)
    with TestClient(build_app(crm.settings), raise_server_exceptions=False) as anonymous:
        huge = anonymous.post("/login", data={"username": "a" * 20_000, "password": "p"})
        assert huge.status_code == 413


def test_a_sort_on_a_hidden_field_is_dropped_for_that_role(db_url: str, tmp_path: Path) -> None:
    files = {**FILES, "views/deal.yaml": "list: {columns: [name, margin], sort: -margin}\n"}
    instance = pack_instance(tmp_path, db_url, "crm", files)
    for name, role in [("ada", "admin"), ("vic", "viewer")]:
        issue_token(instance.settings.database_url, name, (role,), password=PASSWORD)
    with signed_in(instance, "vic", PASSWORD) as client:
        listed = client.get("/app/crm/deal")
        assert listed.status_code == 200
        assert "Margin" not in listed.text


def test_history_lists_the_newest_change_first(browser: TestClient) -> None:
    ids = seed(browser)
    page = browser.get(f"/app/crm/deal/{ids['Alpha']}")
    token = csrf_of(page)
    browser.post(
        f"/app/crm/deal/{ids['Alpha']}",
        data={"csrf_token": token, "name": "Alpha two"},
        follow_redirects=False,
    )
    page = browser.get(f"/app/crm/deal/{ids['Alpha']}")
    actions = re.findall(r"<p><strong>(\w+)</strong> by ada", page.text)
    assert actions == ["update", "create"]
