"""Kanban boards, workflow buttons, a record's history and the 360° page over HTTP, on
SQLite and PostgreSQL. Moves go through the same validation and workflow as any save."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: desk\nversion: 1.0.0\nlabel: Service desk\n",
    "entities/customer.yaml": """\
title: name
fields:
  name: {type: string, required: true}
""",
    "entities/ticket.yaml": """\
title: subject
fields:
  subject:    {type: string, required: true}
  status:     {type: enum, values: [new, open, resolved, closed], default: new}
  priority:   {type: enum, values: [low, high]}
  resolution: {type: text}
  customer:   {type: reference, to: customer}
  secret:     {type: string}
""",
    "entities/visit.yaml": """\
title: note
fields:
  note:     {type: string, required: true}
  customer: {type: reference, to: customer}
""",
    "workflows/ticket.yaml": """\
field: status
initial: new
transitions:
  - {from: new, to: open}
  - {from: open, to: resolved, when: "resolution", label: Resolve}
  - {from: resolved, to: closed}
""",
    "roles.yaml": """\
roles:
  agent:
    grants:
      - {entity: ticket, actions: [read, update], hidden_fields: [secret]}
      - {entity: customer, actions: [read]}
  triage:
    grants:
      - {entity: ticket, actions: [read, create, update], where: "priority == 'high'"}
      - {entity: customer, actions: [read], where: "name != 'Secret Corp'"}
""",
}
PASSWORD = "correct horse battery"


@pytest.fixture
def desk(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(tmp_path, db_url, "desk", FILES)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    issue_token(instance.settings.database_url, "max", ("agent",), password=PASSWORD)
    return instance


@pytest.fixture
def browser(desk: Instance) -> Iterator[TestClient]:
    with signed_in(desk, "ada", PASSWORD) as client:
        yield client


def create(client: TestClient, entity: str, **values: str) -> str:
    token = csrf_of(client.get(f"/app/desk/{entity}/new"))
    made = client.post(
        f"/app/desk/{entity}/new", data={"csrf_token": token, **values}, follow_redirects=False
    )
    assert made.status_code == 303, made.text
    return made.headers["location"].split("/")[-1].split("?")[0]


def columns(page_text: str) -> dict[str, list[str]]:
    found = {}
    for section in re.findall(
        r'<section class="kanban-column" data-value="([^"]*)"(.*?)</section>', page_text, re.S
    ):
        value, body = section
        found[value] = re.findall(r'<a href="/app/desk/ticket/\d+">([^<]+)</a>', body)
    return found


def linked(page_text: str) -> list[tuple[str, str]]:
    """(entity, title) of the records in the 360° page's tables."""
    return re.findall(r'data-label="[^"]*"><a href="/app/desk/(\w+)/\d+">([^<]+)</a>', page_text)


def test_kanban_groups_by_the_workflow_and_moves_are_checked(browser: TestClient) -> None:
    first = create(browser, "ticket", subject="Printer", priority="high")
    create(browser, "ticket", subject="Mail", priority="low")
    board = browser.get("/app/desk/ticket/kanban")
    assert board.status_code == 200
    assert columns(board.text) == {
        "new": ["Mail", "Printer"],
        "open": [],
        "resolved": [],
        "closed": [],
    }
    assert '<option value="priority">Priority</option>' in board.text
    by_priority = browser.get("/app/desk/ticket/kanban", params={"by": "priority"})
    assert columns(by_priority.text) == {"low": ["Mail"], "high": ["Printer"]}
    create(browser, "ticket", subject="Unsorted")
    by_priority = browser.get("/app/desk/ticket/kanban", params={"by": "priority"})
    assert columns(by_priority.text)[""] == ["Unsorted"]  # an empty column only when needed
    token = csrf_of(board)

    def move(to: str, version: str) -> dict[str, object]:
        response = browser.post(
            f"/app/desk/ticket/{first}/move",
            data={"csrf_token": token, "field": "status", "to": to, "version": version},
            headers={"accept": "application/json"},
        )
        return {"status": response.status_code, **response.json()}

    assert move("open", "1") == {"status": 200, "ok": True, "version": 2}
    refused = move("closed", "2")  # open -> closed is no transition
    assert refused["status"] == 422
    assert refused["ok"] is False
    assert "closed" in str(refused["message"])
    needs = move("resolved", "2")  # allowed only with a resolution
    assert needs["status"] == 422
    stale = move("open", "1")
    assert stale["status"] == 409
    assert columns(browser.get("/app/desk/ticket/kanban").text)["open"] == ["Printer"]
    # without JavaScript: the card's own form, and the board again with the reason
    plain = browser.post(
        f"/app/desk/ticket/{first}/move",
        data={
            "csrf_token": token,
            "field": "status",
            "to": "closed",
            "version": "2",
            "back": "kanban?by=status",
        },
    )
    assert plain.status_code == 422
    assert "Not moved:" in plain.text
    no_csrf = browser.post(f"/app/desk/ticket/{first}/move", data={"field": "status", "to": "new"})
    assert no_csrf.status_code == 403
    bad_field = browser.post(
        f"/app/desk/ticket/{first}/move", data={"csrf_token": token, "field": "subject", "to": "x"}
    )
    assert bad_field.status_code == 400


def test_workflow_buttons_and_history_on_the_form(browser: TestClient) -> None:
    ticket = create(browser, "ticket", subject="VPN")
    form = browser.get(f"/app/desk/ticket/{ticket}")
    assert re.findall(r'name="to" value="(\w+)"', form.text) == ["open"]
    token = csrf_of(form)
    moved = browser.post(
        f"/app/desk/ticket/{ticket}/move",
        data={"csrf_token": token, "field": "status", "to": "open", "version": "1"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    form = browser.get(f"/app/desk/ticket/{ticket}")
    assert "Status: open" in form.text
    assert re.search(
        r'value="resolved">\s*<input[^>]*>\s*'
        r'<button type="submit" class="button secondary" disabled',
        form.text,
    )
    refused = browser.post(
        f"/app/desk/ticket/{ticket}/move",
        data={"csrf_token": token, "field": "status", "to": "resolved", "version": "2"},
    )
    assert refused.status_code == 422
    assert "The ticket was not saved" in refused.text
    history = re.search(r"<summary>History \((\d+)\)</summary>", form.text)
    assert history
    assert history.group(1) == "2"
    assert "by ada" in form.text
    assert "<td>Status</td><td>new</td><td>open</td>" in form.text


def test_an_agent_sees_no_hidden_field_in_history_or_on_boards(
    desk: Instance, browser: TestClient
) -> None:
    ticket = create(browser, "ticket", subject="Disk", secret="s3cret")
    with signed_in(desk, "max", PASSWORD) as agent:
        form = agent.get(f"/app/desk/ticket/{ticket}")
        assert "s3cret" not in form.text
        assert "Secret" not in form.text
        board = agent.get("/app/desk/ticket/kanban")
        assert columns(board.text)["new"] == ["Disk"]
        assert agent.get("/app/desk/visit/kanban").status_code == 403


def test_the_360_page_shows_every_record_that_refers_to_it(
    desk: Instance, browser: TestClient
) -> None:
    acme = create(browser, "customer", name="Acme")
    other = create(browser, "customer", name="Other")
    create(browser, "ticket", subject="Printer", customer=acme)
    create(browser, "ticket", subject="Elsewhere", customer=other)
    create(browser, "visit", note="Kick-off", customer=acme)
    page = browser.get(f"/app/desk/customer/{acme}/related")
    assert page.status_code == 200
    assert linked(page.text) == [
        ("ticket", "Printer"),
        ("visit", "Kick-off"),
    ]
    assert 'Tickets <span class="count">(1)</span>' in page.text
    with signed_in(desk, "max", PASSWORD) as agent:
        seen = agent.get(f"/app/desk/customer/{acme}/related")
        assert linked(seen.text) == [("ticket", "Printer")]
    assert browser.get("/app/desk/customer/999999/related").status_code == 404


def test_web_writes_stay_inside_the_grant_and_point_only_at_readable_records(
    desk: Instance, browser: TestClient
) -> None:
    """The kanban move and the form save are checked on the record as they would store
    it (403, nothing written); the form cannot point at a record the user may not read,
    and is told exactly what a missing record would tell it."""
    acme = create(browser, "customer", name="Acme")
    secret = create(browser, "customer", name="Secret Corp")
    ticket = create(browser, "ticket", subject="Printer", priority="high")
    issue_token(desk.settings.database_url, "tia", ("triage",), password=PASSWORD)
    with signed_in(desk, "tia", PASSWORD) as tia:
        token = csrf_of(tia.get("/app/desk/ticket/kanban", params={"by": "priority"}))
        moved = tia.post(
            f"/app/desk/ticket/{ticket}/move",
            data={"csrf_token": token, "field": "priority", "to": "low", "version": "1"},
            headers={"accept": "application/json"},
        )
        assert moved.status_code == 403, moved.text
        assert "desk.ticket records for which priority == 'high'" in moved.json()["message"]
        saved = tia.post(
            f"/app/desk/ticket/{ticket}",
            data={"csrf_token": token, "subject": "Printer", "priority": "low", "version": "1"},
        )
        assert saved.status_code == 403, saved.text
        assert "desk.ticket records for which priority" in saved.text
        with desk.client() as api:
            stored = api.get(f"/api/v1/desk/ticket/{ticket}").json()["data"]
            assert (stored["priority"], stored["version"]) == ("high", 1)
            assert len(api.get(f"/api/v1/desk/ticket/{ticket}/_history").json()["data"]) == 1

        def new_ticket(customer: str) -> Any:
            return tia.post(
                "/app/desk/ticket/new",
                data={
                    "csrf_token": token,
                    "subject": "Jam",
                    "priority": "high",
                    "customer": customer,
                },
                follow_redirects=False,
            )

        unreadable, missing = new_ticket(secret), new_ticket("999999")
        assert unreadable.status_code == missing.status_code == 422
        for page in (unreadable, missing):
            assert "refers to a record that does not exist" in page.text
        assert "Secret Corp" not in unreadable.text
        assert new_ticket(acme).status_code == 303
    with desk.client() as api:
        tickets = api.get("/api/v1/desk/ticket", params={"subject": "Jam"}).json()["data"]
        assert [t["customer"] for t in tickets] == [acme]
