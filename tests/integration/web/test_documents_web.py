"""Business documents on the web UI, over HTTP on SQLite and PostgreSQL: the status badge,
Submit / Cancel / Amend for the roles that may, each through a confirmation page (a
CSRF-checked POST on the version the user saw), submitted forms frozen but for their
``allow_on_submit`` fields, a refused submit's messages on the form, the amendment chain,
and cancelled documents struck through in the list."""

from __future__ import annotations

import contextlib
import html
import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.integration.api.test_documents import FILES as API_FILES
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient
    from httpx import Response

PASSWORD = "correct horse battery"
URL = "/app/buying/purchase_request"
FILES = {
    **API_FILES,
    "roles.yaml": """\
roles:
  clerk:
    grants:
      - {entity: purchase_request, actions: [read, create, update, delete]}
      - {entity: approval_log, actions: [read]}
  manager:
    grants:
      - {entity: purchase_request, actions: [read, submit, cancel]}
      - {entity: approval_log, actions: [read]}
  viewer:
    grants:
      - {entity: purchase_request, actions: [read]}
""",
}
USERS = {"ada": "admin", "carl": "clerk", "mia": "manager", "vic": "viewer"}


@pytest.fixture
def buying(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(tmp_path, db_url, "buying", FILES)
    for name, role in USERS.items():
        issue_token(instance.settings.database_url, name, (role,), password=PASSWORD)
    return instance


@pytest.fixture
def users(buying: Instance) -> Iterator[dict[str, TestClient]]:
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(signed_in(buying, name, PASSWORD)) for name in USERS}


def draft(client: TestClient, **fields: str) -> str:
    """A purchase request made on the web form (two lines unless ``lines=""``); its id."""
    body = {
        "csrf_token": csrf_of(client.get(f"{URL}/new")),
        "title": "Laptops",
        "needed_by": "2026-12-31",
        "note": "for the new hires",
        "lines[0].item": "laptop",
        "lines[0].quantity": "2",
        "lines[0].rate": "100.00",
        "lines[1].item": "dock",
        "lines[1].quantity": "2",
        "lines[1].rate": "50.00",
    }
    if fields.pop("lines", None) == "":
        body = {k: v for k, v in body.items() if not k.startswith("lines[")}
    body.update(fields)
    made = client.post(f"{URL}/new", data=body, follow_redirects=False)
    assert made.status_code == 303, made.text
    return str(made.headers["location"]).split("/")[-1].split("?")[0]


def version_of(page: Response) -> str:
    found = re.search(r'name="version" value="(\d+)"', page.text)
    assert found, page.text[:3000]
    return found.group(1)


def move(client: TestClient, record: str, name: str, version: str | None = None) -> Response:
    """Open the move's confirmation page from the form's link, then confirm it."""
    form = client.get(f"{URL}/{record}")
    link = re.search(rf'href="({re.escape(URL)}/{record}/{name}\?version=\d+)"', form.text)
    assert link, f"no {name} button on the form"
    confirm = client.get(link.group(1))
    assert confirm.status_code == 200
    assert f'action="{URL}/{record}/{name}"' in confirm.text, confirm.text
    return client.post(
        f"{URL}/{record}/{name}",
        data={"csrf_token": csrf_of(confirm), "version": version or version_of(confirm)},
        follow_redirects=False,
    )


def form_values(page: Response) -> dict[str, str]:
    """What the record's form would send as it is (its inputs and text areas)."""
    form = page.text.split('class="record-form"', 1)[1].split("</form>", 1)[0]
    inputs = re.findall(r"<input\b[^>]*>", form)
    values = {}
    for tag in inputs:
        name = re.search(r'\bname="([^"]+)"', tag)
        value = re.search(r'\bvalue="([^"]*)"', tag)
        if name and value and 'type="checkbox"' not in tag and 'type="search"' not in tag:
            values[name.group(1)] = value.group(1)
    values.update(re.findall(r'<textarea name="([^"]+)"[^>]*>([^<]*)</textarea>', form))
    return {k: html.unescape(v) for k, v in values.items()}


def buttons(page: Response) -> set[str]:
    """The document moves and the Save and Delete buttons the form offers."""
    shown = set(re.findall(r'data-document-move="(\w+)"', page.text))
    if re.search(r'<button type="submit" class="button">Save</button>', page.text):
        shown.add("save")
    if ">Delete</button>" in page.text:
        shown.add("delete")
    return shown


def badge(page: Response) -> str:
    found = re.search(r'<h1>.*?class="badge status-(\w+)"', page.text, re.S)
    assert found, page.text[:3000]
    return found.group(1)


def stored(buying: Instance, record: str) -> dict[str, Any]:
    with buying.client() as api:
        data: dict[str, Any] = api.get(f"/api/v1/buying/purchase_request/{record}").json()["data"]
        return data


def test_buttons_follow_the_roles_and_the_status(users: dict[str, TestClient]) -> None:
    record = draft(users["carl"])
    pages = {name: client.get(f"{URL}/{record}") for name, client in users.items()}
    assert {name: badge(page) for name, page in pages.items()} == dict.fromkeys(USERS, "draft")
    assert "Status: </span>Draft</span>" in pages["vic"].text  # the badge's words, for all
    assert {name: buttons(page) for name, page in pages.items()} == {
        "ada": {"submit", "save", "delete"},
        "carl": {"save", "delete"},  # a clerk drafts, but may not submit
        "mia": {"submit"},  # an approver submits, but may not edit
        "vic": set(),
    }

    assert move(users["mia"], record, "submit").status_code == 303
    pages = {name: client.get(f"{URL}/{record}") for name, client in users.items()}
    assert {badge(page) for page in pages.values()} == {"submitted"}
    assert {name: buttons(page) for name, page in pages.items()} == {
        "ada": {"cancel", "save"},  # save: the note, allow_on_submit
        "carl": {"save"},
        "mia": {"cancel"},
        "vic": set(),
    }

    assert move(users["mia"], record, "cancel").status_code == 303
    pages = {name: client.get(f"{URL}/{record}") for name, client in users.items()}
    assert {badge(page) for page in pages.values()} == {"cancelled"}
    assert {name: buttons(page) for name, page in pages.items()} == {
        "ada": {"amend"},
        "carl": {"amend"},  # amending creates a draft: the create grant
        "mia": set(),
        "vic": set(),
    }
    # a move the user's roles do not allow is refused, however it is sent
    token = csrf_of(pages["mia"])
    refused = users["mia"].post(f"{URL}/{record}/amend", data={"csrf_token": token})
    assert refused.status_code == 403
    assert "do not allow you to create" in refused.text
    assert users["vic"].get(f"{URL}/{record}/amend").status_code == 200  # a page, no button
    assert "you cannot amend it now" in users["vic"].get(f"{URL}/{record}/amend").text


def test_submit_asks_first_then_shows_the_new_status(
    buying: Instance, users: dict[str, TestClient]
) -> None:
    ada = users["ada"]
    record = draft(ada)
    form = ada.get(f"{URL}/{record}")
    confirm = ada.get(f"{URL}/{record}/submit?version={version_of(form)}")
    assert confirm.status_code == 200
    assert "Submit Laptops?" in confirm.text
    assert "can no longer be edited (except Note)" in confirm.text
    assert stored(buying, record)["docstatus"] == "draft"  # asking changes nothing

    done = move(ada, record, "submit")
    assert done.status_code == 303
    assert done.headers["location"] == f"{URL}/{record}?done=submit"
    page = ada.get(done.headers["location"])
    assert '<p class="alert success" role="status">Submitted.</p>' in page.text
    assert badge(page) == "submitted"
    assert "only Note can still change" in page.text
    assert "<strong>submit</strong> by ada" in page.text  # the history's entry
    # submitting again (an old tab's confirmation page) is refused on the form, not a 500
    again = ada.post(
        f"{URL}/{record}/submit", data={"csrf_token": csrf_of(page), "version": version_of(page)}
    )
    assert again.status_code == 409
    assert "was not submitted" in again.text
    assert "only a draft buying.purchase_request can be submitted" in again.text


def test_a_refused_submit_shows_every_message_on_the_form(users: dict[str, TestClient]) -> None:
    record = draft(users["carl"], lines="", needed_by="")
    refused = move(users["mia"], record, "submit")
    assert refused.status_code == 422
    assert "The purchase request was not submitted:" in refused.text
    assert 'id="f-lines-error"' in refused.text
    assert "a request needs at least one line to be submitted" in refused.text
    assert 'id="f-needed_by-error"' in refused.text
    assert "set the date the items are needed by" in refused.text
    assert badge(refused) == "draft"
    assert 'data-document-move="submit"' in refused.text  # try again once fixed
    after = users["carl"].get(f"{URL}/{record}")
    assert badge(after) == "draft"
    assert version_of(after) == "1"  # nothing written


def test_a_stale_page_is_told_so(buying: Instance, users: dict[str, TestClient]) -> None:
    carl, mia = users["carl"], users["mia"]
    record = draft(carl)
    seen = mia.get(f"{URL}/{record}")
    old = version_of(seen)
    form = carl.get(f"{URL}/{record}")
    saved = carl.post(
        f"{URL}/{record}",
        data={**form_values(form), "title": "Laptops and docks"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, re.findall(r"<li>.*?</li>", saved.text)
    confirm = mia.get(f"{URL}/{record}/submit?version={old}")
    assert "has changed since you opened it" in confirm.text
    assert f'action="{URL}/{record}/submit"' not in confirm.text  # no button to confirm
    refused = mia.post(f"{URL}/{record}/submit", data={"csrf_token": csrf_of(seen), "version": old})
    assert refused.status_code == 412
    assert "was changed by someone else since you opened it" in refused.text
    assert "Laptops and docks" in refused.text  # the form as it is now
    assert badge(refused) == "draft"

    # a draft's form still open when the manager submits: its save is refused, with the
    # changes kept where they still may change (the note)
    stale = carl.get(f"{URL}/{record}")
    assert move(mia, record, "submit").status_code == 303
    late = carl.post(
        f"{URL}/{record}",
        data={**form_values(stale), "title": "Phones", "note": "typed late"},
    )
    assert late.status_code == 409
    assert "your changes were not saved" in late.text
    assert "typed late" in late.text
    assert stored(buying, record)["title"] == "Laptops and docks"


def test_a_submitted_form_saves_only_its_allow_on_submit_fields(
    buying: Instance, users: dict[str, TestClient]
) -> None:
    carl = users["carl"]
    record = draft(carl)
    assert move(users["mia"], record, "submit").status_code == 303
    page = carl.get(f"{URL}/{record}")
    assert '<textarea name="note"' in page.text
    assert 'name="title"' not in page.text  # frozen: shown, not an input
    assert 'name="needed_by"' not in page.text
    assert 'name="lines[' not in page.text  # the lines too
    assert 'id="tpl-lines"' not in page.text
    assert '<output id="f-title" class="readonly">Laptops</output>' in page.text
    assert 'id="f-docstatus"' not in page.text  # the badge shows it
    assert 'id="f-amended_from"' not in page.text  # the chain shows it
    saved = carl.post(
        f"{URL}/{record}",
        data={
            "csrf_token": csrf_of(page),
            "version": version_of(page),
            "title": "Phones",  # not on the form; a crafted post does not change it
            "note": "ordered from the usual supplier",
            "lines[0].item": "phone",
            "lines[0].quantity": "1",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    after = stored(buying, record)
    assert after["note"] == "ordered from the usual supplier"
    assert after["title"] == "Laptops"
    assert after["docstatus"] == "submitted"
    assert [line["item"] for line in after["lines"]] == ["laptop", "dock"]

    assert move(users["mia"], record, "cancel").status_code == 303
    page = carl.get(f"{URL}/{record}")
    assert "<textarea" not in page.text  # a cancelled form is entirely read-only
    assert "it can never change again" in page.text
    refused = carl.post(
        f"{URL}/{record}",
        data={"csrf_token": csrf_of(page), "version": version_of(page), "note": "x"},
    )
    assert refused.status_code == 409
    assert "is cancelled: it can never change again" in refused.text
    token = csrf_of(users["ada"].get(f"{URL}/{record}"))
    deleted = users["ada"].post(f"{URL}/{record}/delete", data={"csrf_token": token})
    assert deleted.status_code == 409  # only drafts are deleted
    assert "only a draft can be deleted" in deleted.text


def test_amend_opens_the_new_draft_and_the_chain_links_both_ways(
    users: dict[str, TestClient],
) -> None:
    carl, mia = users["carl"], users["mia"]
    record = draft(carl)
    assert move(mia, record, "submit").status_code == 303
    assert move(mia, record, "cancel").headers["location"] == f"{URL}/{record}?done=cancel"
    amended = move(carl, record, "amend")
    assert amended.status_code == 303
    location = amended.headers["location"]
    copy = location.split("/")[-1].split("?")[0]
    assert copy != record
    assert location == f"{URL}/{copy}?done=amend"
    page = carl.get(location)
    assert "Amended: this is a new draft of the cancelled purchase request." in page.text
    assert badge(page) == "draft"
    assert f'Amended from <a href="{URL}/{record}" rel="prev">Laptops (#{record})</a>' in page.text
    assert 'value="laptop"' in page.text  # the lines were copied, editable again
    original = carl.get(f"{URL}/{record}")
    assert f'Amended by <a href="{URL}/{copy}" rel="next">Laptops (#{copy})</a>' in original.text
    assert "amend it to make a corrected draft" not in original.text
    assert 'data-document-move="amend"' in original.text  # another copy may still be made


def test_the_list_shows_badges_and_strikes_cancelled_documents_through(
    users: dict[str, TestClient],
) -> None:
    ada = users["ada"]
    kept, dropped = draft(ada, title="Kept"), draft(ada, title="Dropped")
    assert move(ada, kept, "submit").status_code == 303
    assert move(ada, dropped, "submit").status_code == 303
    assert move(ada, dropped, "cancel").status_code == 303
    draft(ada, title="Pending")
    listed = ada.get(URL).text
    rows = re.findall(r"<tr( class=\"cancelled\")?>(.*?)</tr>", listed.split("<tbody>")[1], re.S)
    seen = {}
    for struck, row in rows:
        title = re.search(r'">(\w+)</a>', row)
        state = re.search(r'class="badge status-(\w+)"', row)
        assert title, row
        assert state, row
        seen[title.group(1)] = (bool(struck), state.group(1))
    assert seen == {
        "Kept": (False, "submitted"),
        "Dropped": (True, "cancelled"),
        "Pending": (False, "draft"),
    }
    assert ">Status</a>" in listed.split("<tbody>")[0]
    only = ada.get(URL, params={"docstatus": "cancelled"}).text.split("<tbody>")[1]
    assert "Dropped" in only
    assert "Kept" not in only


def test_moves_refuse_bad_requests_with_pages(users: dict[str, TestClient]) -> None:
    ada = users["ada"]
    record = draft(ada)
    page = ada.get(f"{URL}/{record}")
    missing = ada.post(f"{URL}/{record}/submit", data={"version": version_of(page)})
    assert missing.status_code == 403
    assert "did not come from this site" in missing.text
    forged = ada.post(f"{URL}/{record}/submit", data={"csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert badge(ada.get(f"{URL}/{record}")) == "draft"  # nothing moved
    token = csrf_of(page)
    wrong_state = ada.post(f"{URL}/{record}/cancel", data={"csrf_token": token})
    assert wrong_state.status_code == 409
    assert "was not cancelled" in wrong_state.text
    for path in ["abc", "0", "99999999999999999999", "%00", "1%ED%A0%80"]:
        for name in ["submit", "amend"]:
            answer = ada.post(f"{URL}/{path}/{name}", data={"csrf_token": token})
            assert answer.status_code == 404, (path, answer.text[:300])
            assert ada.get(f"{URL}/{path}/{name}").status_code == 404
    odd_versions = ["", "x", "\uff11", "9" * 40, "\x00", "-1"]
    for version in odd_versions:
        confirm = ada.get(f"{URL}/{record}/submit", params={"version": version})
        assert confirm.status_code == 200
    log = "/app/buying/approval_log"
    assert ada.get(f"{log}/1/submit").status_code == 404  # not a document
    assert ada.post(f"{log}/1/submit", data={"csrf_token": token}).status_code == 404
    stale = ada.post(f"{URL}/{record}/submit", data={"csrf_token": token, "version": "99"})
    assert stale.status_code == 412


def test_the_kanban_strikes_cancelled_cards_and_moves_no_status(
    users: dict[str, TestClient],
) -> None:
    ada = users["ada"]
    kept, dropped = draft(ada, title="Kept"), draft(ada, title="Dropped")
    for record, moves in [(kept, ["submit"]), (dropped, ["submit", "cancel"])]:
        for name in moves:
            assert move(ada, record, name).status_code == 303
    board = ada.get(f"{URL}/kanban", params={"by": "docstatus"})
    assert board.status_code == 200
    cards = dict(re.findall(r'<li class="kanban-card([^"]*)" draggable="(\w+)"', board.text))
    assert cards == {" cancelled": "false", "": "false"}  # the status moves only by its buttons
    assert 'class="card-move"' not in board.text
    refused = ada.post(
        f"{URL}/{kept}/move",
        data={"csrf_token": csrf_of(board), "field": "docstatus", "to": "draft", "back": "kanban"},
    )
    assert refused.status_code == 422
    assert "Not moved" in refused.text
    assert stored_status(ada, kept) == "submitted"


def stored_status(client: TestClient, record: str) -> str:
    return badge(client.get(f"{URL}/{record}"))
