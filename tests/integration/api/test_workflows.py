"""Workflows: transitions enforced on every write path (create, PATCH, bulk, upsert,
import, rule actions), ``when`` and ``roles`` checked, and the allowed next states served
for a UI's buttons; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from engine import EngineModel, ValidationFailed, WriteContext, open_database
from engine.expressions import Actor
from runtime.app import load_definitions
from tests.conftest import Instance, write_instance
from tests.support.cli import tessera
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: support\nversion: 1.0.0\n",
    "entities/ticket.yaml": """\
title: subject
fields:
  subject:    {type: string, required: true}
  code:       {type: string, unique: true}
  status:     {type: enum, values: [new, open, pending, resolved, closed], default: new}
  resolution: {type: text}
""",
    "entities/note.yaml": "fields:\n  text: {type: string}\n",
    "workflows/ticket.yaml": """\
field: status
initial: new
transitions:
  - {from: new, to: open}
  - {from: open, to: pending}
  - {from: pending, to: open}
  - {from: [open, pending], to: resolved, roles: [agent], when: "resolution"}
  - {from: resolved, to: closed, label: Close for good}
""",
    "roles.yaml": """\
roles:
  agent:
    grants:
      - {entity: ticket, actions: [read, create, update]}
  sales:
    grants:
      - {entity: ticket, actions: [read, create, update]}
  senior_agent:
    inherits: [agent]
""",
    "rules/ticket.yaml": """\
- name: auto_close
  on: update
  when: "changed('subject') and subject == 'auto-close'"
  actions:
    - update: {values: {status: closed}}
""",
}
URL = "/api/v1/support/ticket"


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    pack = tmp_path / "packs" / "support"
    for relative, text in FILES.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text)
    instance = write_instance(
        tmp_path / "desk", db_url, ["support"], [tmp_path / "packs"], reload_interval=0
    )
    instance.migrate()
    return instance


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def ticket(client: TestClient, **values: Any) -> dict[str, Any]:
    response = client.post(URL, json={"subject": "Printer", **values})
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["data"]
    return record


def move(client: TestClient, record: dict[str, Any], **values: Any) -> Any:
    return client.patch(f"{URL}/{record['id']}", json=values)


def error(response: Any) -> tuple[str, str, str]:
    assert response.status_code == 422, response.text
    (only,) = response.json()["errors"]
    return only["field"], only["code"], only["message"]


def test_a_new_record_starts_in_the_initial_state(client: TestClient) -> None:
    assert ticket(client)["status"] == "new"
    assert ticket(client, status="new")["status"] == "new"
    refused = client.post(URL, json={"subject": "Skip ahead", "status": "resolved"})
    assert error(refused) == (
        "status",
        "transition",
        "a new record starts as 'new', not 'resolved'",
    )


def test_patch_follows_the_transitions(client: TestClient) -> None:
    record = ticket(client)
    assert move(client, record, status="open").json()["data"]["status"] == "open"
    assert error(move(client, record, status="closed")) == (
        "status",
        "transition",
        "cannot move from 'open' to 'closed'; from 'open' the workflow allows: "
        "'pending', 'resolved'",
    )
    assert error(move(client, record, status="resolved"))[2] == (
        "cannot move from 'open' to 'resolved': only when resolution"
    )
    resolved = move(client, record, status="resolved", resolution="Replaced the toner")
    assert resolved.status_code == 200, resolved.text
    assert move(client, record, status="closed").status_code == 200
    assert error(move(client, record, status="open"))[2] == (
        "cannot move from 'closed' to 'open'; 'closed' is a final state"
    )
    assert move(client, record, subject="Printer (done)").status_code == 200  # no move
    assert client.get(f"{URL}/{record['id']}").json()["data"]["status"] == "closed"


def test_bulk_and_upsert_follow_the_workflow(client: TestClient) -> None:
    bulk = client.post(
        f"{URL}/_bulk", json=[{"subject": "a"}, {"subject": "b", "status": "closed"}]
    )
    assert bulk.status_code == 422
    assert bulk.json()["errors"][0]["index"] == 1
    assert client.get(URL).json()["data"] == []

    created = client.put(f"{URL}/by/code/T-1", json={"subject": "Upserted", "status": "open"})
    assert error(created)[1] == "transition"
    created = client.put(f"{URL}/by/code/T-1", json={"subject": "Upserted"})
    assert created.status_code == 201, created.text
    jumped = client.put(f"{URL}/by/code/T-1", json={"status": "closed"})
    assert error(jumped)[2].startswith("cannot move from 'new' to 'closed'")
    opened = client.put(f"{URL}/by/code/T-1", json={"status": "open"})
    assert opened.status_code == 200, opened.text


def test_a_rule_action_cannot_bypass_the_workflow(client: TestClient) -> None:
    record = ticket(client)
    move(client, record, status="open")
    refused = move(client, record, subject="auto-close")
    assert error(refused)[2].startswith("cannot move from 'open' to 'closed'")
    assert client.get(f"{URL}/{record['id']}").json()["data"]["subject"] == "Printer"


def test_import_follows_the_workflow(client: TestClient, instance: Instance) -> None:
    ticket(client, code="T-7")
    lines = [
        '{"code": "T-7", "status": "open"}',
        '{"code": "T-7", "status": "closed"}',
        '{"code": "T-8", "subject": "Imported", "status": "resolved"}',
    ]
    path = instance.path / "tickets.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = tessera("import", "support.ticket", str(path), "--key", "code", cwd=instance.path)
    assert result.returncode == 1
    assert "tickets.jsonl:2: status: cannot move from 'open' to 'closed'" in result.stderr
    assert "tickets.jsonl:3: status: a new record starts as 'new', not 'resolved'" in (
        result.stderr
    )
    (stored,) = client.get(URL).json()["data"]
    assert stored["status"] == "open"


def test_the_api_lists_the_moves_a_ui_can_offer(client: TestClient) -> None:
    record = ticket(client)
    move(client, record, status="open")
    answer = client.get(f"{URL}/{record['id']}/_transitions")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "data": [
            {"to": "pending", "label": "Pending", "allowed": True, "reason": None},
            {
                "to": "resolved",
                "label": "Resolved",
                "allowed": False,
                "reason": "only when resolution",
            },
        ],
        "meta": {"field": "status", "state": "open"},
    }
    move(client, record, status="resolved", resolution="done")
    (close,) = client.get(f"{URL}/{record['id']}/_transitions").json()["data"]
    assert (close["to"], close["label"], close["allowed"]) == ("closed", "Close for good", True)
    assert client.get(f"{URL}/999/_transitions").status_code == 404
    no_workflow = client.get("/api/v1/support/note/1/_transitions")
    assert no_workflow.status_code == 404
    assert no_workflow.headers["content-type"] == "application/problem+json"
    meta = client.get("/api/v1/_meta/entities").json()["data"]
    described = next(e for e in meta if e["name"] == "support.ticket")["workflow"]
    assert described["initial"] == "new"
    assert described["transitions"][3] == {
        "from": ["open", "pending"],
        "to": "resolved",
        "label": None,
        "roles": ["agent"],
        "when": "resolution",
    }


def test_roles_limit_a_transition_when_the_writer_is_known(instance: Instance) -> None:
    async def run() -> list[str]:
        project = load_definitions(instance.settings)
        model = EngineModel.for_url(project, instance.settings.database_url)
        store = model.store("support", "ticket")
        database = await open_database(instance.settings.database_url, pool_size=2)
        outcomes = []
        try:
            for roles in ({"sales"}, {"agent"}, {"admin"}, None):
                ctx = WriteContext(
                    user=Actor("1", "u1", frozenset(roles or ())),
                    roles=frozenset(roles) if roles else None,
                )
                async with database.transaction() as conn:
                    record = await store.create(conn, {"subject": "x"}, ctx)
                    await store.update(conn, int(record["id"]), {"status": "open"}, ctx)
                try:
                    async with database.transaction() as conn:
                        await store.update(
                            conn,
                            int(record["id"]),
                            {"status": "resolved", "resolution": "fixed"},
                            ctx,
                        )
                    outcomes.append("resolved")
                except ValidationFailed as failed:
                    outcomes.append(failed.errors[0].message)
                async with database.connection() as conn:
                    moves = await store.workflow_moves(conn, {**record, "status": "open"}, ctx)
                outcomes.append(",".join(f"{m.target}:{m.allowed}" for m in moves))
        finally:
            await database.close()
        return outcomes

    assert asyncio.run(run()) == [
        "cannot move from 'open' to 'resolved': needs the role agent",
        "pending:True,resolved:False",
        "resolved",
        "pending:True,resolved:False",  # resolution is empty in the record looked at
        "resolved",
        "pending:True,resolved:False",
        "resolved",
        "pending:True,resolved:False",
    ]


def test_transition_roles_apply_to_signed_in_users(instance: Instance) -> None:
    """Over HTTP the writer's roles come from their token: a sales user may not resolve,
    an agent may, and each sees that in the allowed moves."""
    url = instance.settings.database_url
    sales = bearer(issue_token(url, "sam", ("sales",)))
    agent = bearer(issue_token(url, "ann", ("agent",)))
    senior = bearer(issue_token(url, "sue", ("senior_agent",)))  # an agent by inheritance
    with instance.client(signed_in=False) as client:
        for headers, allowed in [(sales, False), (agent, True), (senior, True)]:
            record = client.post(URL, json={"subject": "x"}, headers=headers).json()["data"]
            item = f"{URL}/{record['id']}"
            assert client.patch(item, json={"status": "open"}, headers=headers).status_code == 200
            moves = client.get(f"{item}/_transitions", headers=headers).json()["data"]
            resolve = next(m for m in moves if m["to"] == "resolved")
            assert resolve["allowed"] is False  # no resolution yet
            client.patch(item, json={"resolution": "fixed"}, headers=headers)
            moves = client.get(f"{item}/_transitions", headers=headers).json()["data"]
            resolve = next(m for m in moves if m["to"] == "resolved")
            assert resolve["allowed"] is allowed
            moved = client.patch(item, json={"status": "resolved"}, headers=headers)
            assert moved.status_code == (200 if allowed else 422), moved.text
            if not allowed:
                assert "needs the role agent" in moved.text
