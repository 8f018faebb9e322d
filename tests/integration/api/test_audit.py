"""The audit trail: every create, update and delete leaves one row (who, when, which
record, the changed fields' old and new values) in the write's own transaction, served by
``GET .../{id}/_history`` without the fields the caller may not see. SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from engine import EngineModel, WriteContext, open_database
from runtime.app import load_definitions
from tests.conftest import Instance, pack_instance
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\n",
    "entities/deal.yaml": """\
fields:
  name:   {type: string, required: true}
  code:   {type: string, unique: true}
  amount: {type: decimal, scale: 2}
  margin: {type: decimal, scale: 2}
  stage:  {type: enum, values: [open, won, lost], default: open}
  lines:  {type: children, entity: deal_line}
""",
    "entities/deal_line.yaml": "fields:\n  text: {type: string, required: true}\n",
    "rules/deal.yaml": """\
- name: no_negative_amounts
  assert: "amount is none or amount >= 0"
  field: amount
  message: The amount cannot be negative
""",
    "roles.yaml": """\
roles:
  viewer:
    grants:
      - {entity: deal, actions: [read], hidden_fields: [margin]}
""",
}


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "crm", FILES)


@pytest.fixture
def api(crm: Instance) -> Iterator[TestClient]:
    with crm.client() as client:
        yield client


def audit_rows(crm: Instance) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        database = await open_database(crm.settings.database_url, pool_size=1)
        try:
            async with database.connection() as conn:
                sql = "SELECT entity, record_id, action, user_id FROM tessera_audit ORDER BY id"
                return [tuple(r) for r in await conn.fetch(sql, [])]
        finally:
            await database.close()

    return asyncio.run(run())


def history(api: TestClient, record_id: str, **headers: Any) -> list[dict[str, Any]]:
    response = api.get(f"/api/v1/crm/deal/{record_id}/_history", headers=headers or None)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def test_every_write_is_in_the_history(api: TestClient, crm: Instance) -> None:
    me = api.get("/api/v1/auth/me").json()["data"]["id"]
    response = api.post(
        "/api/v1/crm/deal",
        json={"name": "Big", "code": "B-1", "amount": "100.00", "margin": "20.00"},
    )
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    url = f"/api/v1/crm/deal/{created['id']}"
    assert api.patch(url, json={"amount": "120.00", "stage": "won"}).status_code == 200
    assert api.patch(url, json={"lines": [{"text": "setup"}]}).status_code == 200
    assert api.patch(url, json={"amount": "120.00"}).status_code == 200  # changes nothing

    entries = history(api, created["id"])
    assert [e["action"] for e in entries] == ["create", "update", "update"]
    assert all(e["user_id"] == me for e in entries)
    assert entries[0]["changes"] == {
        "name": [None, "Big"],
        "code": [None, "B-1"],
        "amount": [None, "100.00"],
        "margin": [None, "20.00"],
        "stage": [None, "open"],
    }
    assert entries[1]["changes"] == {"amount": ["100.00", "120.00"], "stage": ["open", "won"]}
    (lines,) = entries[2]["changes"].values()
    assert lines[0] == []
    assert [line["text"] for line in lines[1]] == ["setup"]
    assert entries[0]["at"] <= entries[1]["at"]

    assert api.delete(url).status_code == 204
    assert audit_rows(crm)[-1] == ("crm.deal", created["id"], "delete", me)
    after_delete = history(api, created["id"])  # an admin still reads a deleted record's trail
    assert after_delete[-1]["action"] == "delete"
    assert after_delete[-1]["changes"]["name"] == ["Big", None]


def test_a_write_that_fails_leaves_no_audit_row(api: TestClient, crm: Instance) -> None:
    created = api.post("/api/v1/crm/deal", json={"name": "A", "code": "A-1"}).json()["data"]
    before = audit_rows(crm)
    url = f"/api/v1/crm/deal/{created['id']}"
    assert api.patch(url, json={"amount": "-5"}).status_code == 422  # the rule, after the UPDATE
    duplicate = api.post(
        "/api/v1/crm/deal/_bulk", json=[{"name": "B", "code": "B-9"}, {"name": "C", "code": "A-1"}]
    )
    assert duplicate.status_code == 409
    assert api.post("/api/v1/crm/deal", json={"name": "D", "amount": "-1"}).status_code == 422
    assert audit_rows(crm) == before


def test_the_history_hides_what_the_caller_may_not_see(api: TestClient, crm: Instance) -> None:
    created = api.post(
        "/api/v1/crm/deal", json={"name": "Big", "code": "B-1", "margin": "20.00"}
    ).json()["data"]
    url = f"/api/v1/crm/deal/{created['id']}"
    patched = api.patch(url, json={"margin": "25.00"})
    assert patched.status_code == 200, patched.text
    viewer = bearer(issue_token(crm.settings.database_url, "vic", ("viewer",)))
    entries = history(api, created["id"], **viewer)
    assert [e["action"] for e in entries] == ["create", "update"]
    assert "margin" not in entries[0]["changes"]
    assert entries[1]["changes"] == {}
    outsider = bearer(issue_token(crm.settings.database_url, "out", ()))
    assert api.get(f"{url}/_history", headers=outsider).status_code == 403
    api.delete(url)
    assert api.get(f"{url}/_history", headers=viewer).status_code == 404
    assert api.get(f"{url}/_history?limit=x").status_code == 400
    page = api.get(f"{url}/_history?limit=1").json()
    assert len(page["data"]) == 1
    rest = api.get(f"{url}/_history?after={page['meta']['next_after']}").json()
    assert [e["action"] for e in rest["data"]] == ["update", "delete"]


def test_the_history_names_the_writers(api: TestClient, crm: Instance) -> None:
    """Each entry gives the writer's user name with its id; both are null for the system's
    writes, and a user deleted since keeps their id without a name."""
    me = api.get("/api/v1/auth/me").json()["data"]["id"]
    created = api.post("/api/v1/crm/deal", json={"name": "Big", "code": "B-1"}).json()["data"]
    url = f"/api/v1/crm/deal/{created['id']}"
    rita = bearer(issue_token(crm.settings.database_url, "rita", ("admin",)))
    rita_id = api.get("/api/v1/auth/me", headers=rita).json()["data"]["id"]
    assert api.patch(url, json={"amount": "5.00"}, headers=rita).status_code == 200
    vic = bearer(issue_token(crm.settings.database_url, "vic", ("admin",)))
    assert api.patch(url, json={"amount": "6.00"}, headers=vic).status_code == 200

    async def system_write_and_user_deletion() -> None:
        project = load_definitions(crm.settings)
        model = EngineModel.for_url(project, crm.settings.database_url)
        database = await open_database(crm.settings.database_url, pool_size=1)
        try:
            async with database.transaction() as conn:
                store = model.store("crm", "deal")
                await store.update(conn, int(created["id"]), {"stage": "won"}, WriteContext())
                await conn.execute(f"DELETE FROM tessera_user WHERE id = {int(rita_id)}", [])
        finally:
            await database.close()

    asyncio.run(system_write_and_user_deletion())
    entries = history(api, created["id"])
    assert [(e["user_id"], e["username"]) for e in entries] == [
        (me, "tests"),
        (rita_id, None),
        (api.get("/api/v1/auth/me", headers=vic).json()["data"]["id"], "vic"),
        (None, None),
    ]
    newest = api.get(f"{url}/_history?after={entries[1]['id']}&limit=1").json()["data"]
    assert [e["username"] for e in newest] == ["vic"]


def security_events(crm: Instance) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        database = await open_database(crm.settings.database_url, pool_size=1)
        try:
            async with database.connection() as conn:
                sql = (
                    "SELECT action, entity, record_id, user_id, changes FROM tessera_audit "
                    "WHERE action IN ('login_failed', 'denied') ORDER BY id"
                )
                return [tuple(r) for r in await conn.fetch(sql, [])]
        finally:
            await database.close()

    return asyncio.run(run())


def test_refused_sign_ins_and_denials_are_in_the_audit_trail(
    api: TestClient, crm: Instance
) -> None:
    viewer = bearer(issue_token(crm.settings.database_url, "vic", ("viewer",)))
    vic = api.get("/api/v1/auth/me", headers=viewer).json()["data"]["id"]
    wrong = {"username": "vic", "password": "not the password"}
    assert api.post("/api/v1/auth/token", json=wrong).status_code == 401
    refused = api.post("/api/v1/crm/deal", json={"name": "x"}, headers=viewer)
    assert refused.status_code == 403
    assert api.get("/api/v1/_outbox", headers=viewer).status_code == 403
    events = security_events(crm)
    assert [(e[0], e[1], e[2], e[3]) for e in events] == [
        ("login_failed", "auth", "vic", None),
        ("denied", "crm.deal", "", vic),
        ("denied", "admin", "", vic),
    ]
    assert '"address"' in events[0][4]
    assert "your roles do not allow you to create crm.deal" in events[1][4]
    assert "GET /api/v1/_outbox" in events[2][4]
    assert audit_rows(crm)[-1][2] == "denied"  # and the write itself left nothing
