"""Authorization from roles.yaml on every API path, on SQLite and PostgreSQL.

A permission matrix generated from the pack's roles.yaml (every role, entity and action:
allowed calls succeed, the others get 403), then probes of each way a hidden field or a
record outside a grant's ``where`` could leak: filters, sort, ``fields``, ``expand``,
``ref__field``, ``q``, ``count``, aggregates, exports, single reads, updates, deletes,
bulk and upsert.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.conftest import Instance, pack_instance
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

ROLES_YAML = """\
roles:
  viewer:
    grants:
      - {entity: account, actions: [read], hidden_fields: [secret_note]}
      - {entity: deal, actions: [read], where: "status != 'lost'", hidden_fields: [margin]}
  sales_rep:
    inherits: [viewer]
    grants:
      - entity: deal
        actions: [read, create, update]
        where: "created_by == user.id"
        hidden_fields: [margin]
        readonly_fields: [amount]
  manager:
    inherits: [sales_rep]
    grants:
      - {entity: deal, actions: [read, update, delete]}
      - {entity: account, actions: [read, create, update, delete]}
  regional:
    grants:
      - {entity: account, actions: [read], where: "revenue > 100"}
      - {entity: deal, actions: [read]}
  nobody: {}
"""
FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\n",
    "entities/account.yaml": """\
title: name
fields:
  name:        {type: string, required: true, unique: true}
  revenue:     {type: decimal, scale: 2}
  secret_note: {type: text}
""",
    "entities/deal.yaml": """\
title: name
fields:
  name:    {type: string, required: true}
  code:    {type: string, unique: true}
  amount:  {type: decimal, scale: 2}
  margin:  {type: decimal, scale: 2}
  status:  {type: enum, values: [open, won, lost], default: open}
  account: {type: reference, to: account}
""",
    "roles.yaml": ROLES_YAML,
}
ROLES = ("viewer", "sales_rep", "manager", "regional", "nobody", "admin")
ENTITIES = ("account", "deal")
ACTIONS = ("read", "create", "update", "delete")


def expected_actions(role: str, entity: str) -> set[str]:
    """What roles.yaml grants ``role`` on ``entity``, inheritance included."""
    if role == "admin":
        return set(ACTIONS)
    roles = yaml.safe_load(ROLES_YAML)["roles"]
    granted: set[str] = set()
    pending, seen = [role], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        definition = roles.get(name) or {}
        pending.extend(definition.get("inherits", []))
        for grant in definition.get("grants", []):
            if grant["entity"] == entity:
                granted |= set(grant["actions"])
    return granted


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "crm", FILES)


@pytest.fixture
def api(crm: Instance) -> Iterator[TestClient]:
    with crm.client() as client:  # signed in as an admin
        yield client


def headers_for(crm: Instance, role: str, name: str | None = None) -> dict[str, str]:
    roles = (role,) if role != "nobody" else ()
    return bearer(issue_token(crm.settings.database_url, name or f"u_{role}", roles))


def body_for(entity: str, tag: str) -> dict[str, Any]:
    if entity == "account":
        return {"name": f"Account {tag}", "revenue": "10.00"}
    return {"name": f"Deal {tag}", "code": f"D-{tag}", "status": "open"}


def test_the_permission_matrix_of_roles_yaml(crm: Instance, api: TestClient) -> None:
    calls = 0
    for role in ROLES:
        headers = headers_for(crm, role)
        for entity in ENTITIES:
            allowed = expected_actions(role, entity)
            url = f"/api/v1/crm/{entity}"
            listed = api.get(url, headers=headers)
            assert listed.status_code == (200 if "read" in allowed else 403), (role, entity)
            created = api.post(url, json=body_for(entity, f"{role}-c"), headers=headers)
            assert created.status_code == (201 if "create" in allowed else 403), (
                role,
                entity,
                created.text,
            )
            if created.status_code == 201:  # the caller's own record: every where covers it
                target = created.json()["data"]["id"]
            else:
                target = api.post(url, json=body_for(entity, f"{role}-a")).json()["data"]["id"]
            updated = api.patch(
                f"{url}/{target}", json={"name": f"{role} was here"}, headers=headers
            )
            assert updated.status_code == (200 if "update" in allowed else 403), (
                role,
                entity,
                updated.text,
            )
            deleted = api.delete(f"{url}/{target}", headers=headers)
            assert deleted.status_code == (204 if "delete" in allowed else 403), (role, entity)
            if deleted.status_code == 403:
                assert deleted.headers["content-type"] == "application/problem+json"
                assert deleted.json()["type"] == "/problems/forbidden"
            calls += 4
    assert calls == len(ROLES) * len(ENTITIES) * 4


@pytest.fixture
def seeded(crm: Instance, api: TestClient) -> dict[str, Any]:
    """Two accounts, and deals by the admin (open and lost) and by a sales rep."""
    acme = api.post("/api/v1/crm/account", json={"name": "Acme", "secret_note": "pays late"})
    globex = api.post("/api/v1/crm/account", json={"name": "Globex", "secret_note": "x"})
    account_ids = [acme.json()["data"]["id"], globex.json()["data"]["id"]]
    rep = headers_for(crm, "sales_rep", "rita")
    deals = {
        "admin_open": api.post(
            "/api/v1/crm/deal",
            json={"name": "Big", "code": "A-1", "margin": "40", "account": account_ids[0]},
        ),
        "admin_lost": api.post(
            "/api/v1/crm/deal",
            json={"name": "Gone", "code": "A-2", "status": "lost", "margin": "5"},
        ),
        "rep_lost": api.post(
            "/api/v1/crm/deal",
            json={"name": "Mine", "code": "R-1", "status": "lost", "account": account_ids[1]},
            headers=rep,
        ),
    }
    for response in deals.values():
        assert response.status_code == 201, response.text
    return {
        "rep": rep,
        "viewer": headers_for(crm, "viewer"),
        "manager": headers_for(crm, "manager"),
        "deals": {k: v.json()["data"]["id"] for k, v in deals.items()},
        "accounts": account_ids,
    }


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(r["name"] for r in response.json()["data"])


def test_a_where_limits_lists_counts_and_reads(api: TestClient, seeded: dict[str, Any]) -> None:
    deals = seeded["deals"]
    # viewer: status != 'lost'; the rep: that, or their own deals
    assert names(api.get("/api/v1/crm/deal", headers=seeded["viewer"])) == ["Big"]
    assert names(api.get("/api/v1/crm/deal", headers=seeded["rep"])) == ["Big", "Mine"]
    assert names(api.get("/api/v1/crm/deal", headers=seeded["manager"])) == ["Big", "Gone", "Mine"]
    counted = api.get("/api/v1/crm/deal?count=true&limit=1", headers=seeded["rep"]).json()
    assert counted["meta"]["count"] == 2
    hidden = api.get(f"/api/v1/crm/deal/{deals['admin_lost']}", headers=seeded["rep"])
    assert hidden.status_code == 404
    assert hidden.json()["type"] == "/problems/not-found"
    assert (
        api.get(f"/api/v1/crm/deal/{deals['rep_lost']}", headers=seeded["rep"]).status_code == 200
    )
    # filters cannot reach past the where
    assert names(api.get("/api/v1/crm/deal?status=lost", headers=seeded["viewer"])) == []


def test_a_where_limits_writes(api: TestClient, seeded: dict[str, Any]) -> None:
    deals, rep = seeded["deals"], seeded["rep"]
    lost = f"/api/v1/crm/deal/{deals['admin_lost']}"
    assert api.patch(lost, json={"name": "Mine now"}, headers=rep).status_code == 404
    assert api.delete(lost, headers=seeded["manager"]).status_code == 204
    # visible (status open) but not the rep's own: reading yes, changing no
    other = f"/api/v1/crm/deal/{deals['admin_open']}"
    refused = api.patch(other, json={"name": "Mine now"}, headers=rep)
    assert refused.status_code == 403
    assert "created_by == user.id" in refused.json()["detail"]
    assert api.get(other).json()["data"]["name"] == "Big"
    # upsert: an invisible record is not found, a visible one of someone else is refused
    assert (
        api.put("/api/v1/crm/deal/by/code/A-1", json={"name": "x"}, headers=rep).status_code == 403
    )
    made = api.put("/api/v1/crm/deal/by/code/R-2", json={"name": "New"}, headers=rep)
    assert made.status_code == 201, made.text
    assert (
        made.json()["data"]["created_by"]
        == api.get("/api/v1/auth/me", headers=rep).json()["data"]["id"]
    )


def test_hidden_fields_are_never_returned_nor_probed(
    api: TestClient, seeded: dict[str, Any]
) -> None:
    viewer, manager = seeded["viewer"], seeded["manager"]
    listed = api.get("/api/v1/crm/deal", headers=viewer).json()["data"]
    assert all("margin" not in r for r in listed)
    one = api.get(f"/api/v1/crm/deal/{seeded['deals']['admin_open']}", headers=viewer).json()
    assert "margin" not in one["data"]
    assert api.get("/api/v1/crm/deal", headers=manager).json()["data"][0]["margin"] is not None
    for query in [
        "margin=40",
        "margin__gt=1",
        "sort=-margin",
        "fields=name,margin",
        "account__secret_note=pays late",
        "account__secret_note__icontains=late",
    ]:
        response = api.get(f"/api/v1/crm/deal?{query}", headers=viewer)
        assert response.status_code == 400, (query, response.text)
        assert "margin" not in response.text or "unknown" in response.text
    single = api.get(
        f"/api/v1/crm/deal/{seeded['deals']['admin_open']}?fields=margin", headers=viewer
    )
    assert single.status_code == 400
    # q does not search hidden text
    assert api.get("/api/v1/crm/account?q=late", headers=viewer).json()["data"] == []
    assert len(api.get("/api/v1/crm/account?q=late").json()["data"]) == 1
    # expand shows the target without its hidden fields
    expanded = api.get("/api/v1/crm/deal?expand=account", headers=viewer).json()["data"]
    account = next(r["account"] for r in expanded if r["name"] == "Big")
    assert account["name"] == "Acme"
    assert "secret_note" not in account
    single = api.get(
        f"/api/v1/crm/deal/{seeded['deals']['admin_open']}?expand=account", headers=viewer
    ).json()["data"]
    assert "secret_note" not in single["account"]


def test_hidden_and_readonly_fields_cannot_be_written(
    api: TestClient, seeded: dict[str, Any]
) -> None:
    rep = seeded["rep"]
    for body in [{"name": "A", "amount": "5"}, {"name": "B", "margin": "1"}]:
        refused = api.post("/api/v1/crm/deal", json=body, headers=rep)
        assert refused.status_code == 403, refused.text
        (error,) = refused.json()["errors"]
        assert error["code"] == "readonly"
        assert error["field"] in body
    own = f"/api/v1/crm/deal/{seeded['deals']['rep_lost']}"
    assert api.patch(own, json={"amount": "9"}, headers=rep).status_code == 403
    assert api.patch(own, json={"name": "Still mine"}, headers=rep).status_code == 200
    manager = api.patch(own, json={"amount": "9", "margin": "2"}, headers=seeded["manager"])
    assert manager.status_code == 200, manager.text


def test_bulk_is_all_or_nothing_under_grants(api: TestClient, seeded: dict[str, Any]) -> None:
    before = len(api.get("/api/v1/crm/deal").json()["data"])
    refused = api.post(
        "/api/v1/crm/deal/_bulk",
        json=[{"name": "ok", "code": "B-1"}, {"name": "bad", "code": "B-2", "margin": "3"}],
        headers=seeded["rep"],
    )
    assert refused.status_code == 403
    assert len(api.get("/api/v1/crm/deal").json()["data"]) == before
    accounts = api.post(
        "/api/v1/crm/account/_bulk", json=[{"name": "Initech"}], headers=seeded["rep"]
    )
    assert accounts.status_code == 403
    made = api.post(
        "/api/v1/crm/deal/_bulk",
        json=[{"name": "one", "code": "B-3"}, {"name": "two", "code": "B-4"}],
        headers=seeded["rep"],
    )
    assert made.status_code == 201, made.text
    assert all("margin" not in r for r in made.json()["data"])


def test_ref_filters_and_expand_respect_the_targets_where(crm: Instance, api: TestClient) -> None:
    """A ``ref__field`` filter reaches, and ``expand`` shows, only the target records the
    caller may read: the regional role reads accounts with revenue over 100 only."""
    regional, viewer = headers_for(crm, "regional"), headers_for(crm, "viewer")
    small = api.post("/api/v1/crm/account", json={"name": "Small", "revenue": "5"}).json()
    large = api.post("/api/v1/crm/account", json={"name": "Large", "revenue": "500"}).json()
    for name, account in [("S", small), ("L", large)]:
        made = api.post(
            "/api/v1/crm/deal", json={"name": name, "code": name, "account": account["data"]["id"]}
        )
        assert made.status_code == 201
    assert names(api.get("/api/v1/crm/deal?account__name=Small", headers=viewer)) == ["S"]
    assert names(api.get("/api/v1/crm/deal?account__name=Small", headers=regional)) == []
    assert names(api.get("/api/v1/crm/deal?account__revenue__lt=10", headers=regional)) == []
    assert names(api.get("/api/v1/crm/deal?account__name=Large", headers=regional)) == ["L"]
    expanded = api.get("/api/v1/crm/deal?expand=account&sort=name", headers=regional).json()
    by_name = {r["name"]: r["account"] for r in expanded["data"]}
    assert by_name["L"]["name"] == "Large"
    assert by_name["S"] == small["data"]["id"]  # the id only: the account is not readable
    assert names(api.get("/api/v1/crm/account", headers=regional)) == ["Large"]


def test_the_meta_api_shows_what_the_caller_may_read(crm: Instance, api: TestClient) -> None:
    def described(headers: dict[str, str] | None) -> dict[str, Any]:
        response = api.get("/api/v1/_meta/entities", headers=headers)
        assert response.status_code == 200
        return {e["name"]: e for e in response.json()["data"]}

    assert set(described(None)) == {"crm.account", "crm.deal"}
    assert described(headers_for(crm, "nobody")) == {}
    seen = described(headers_for(crm, "viewer"))
    deal = seen["crm.deal"]
    assert "margin" not in [f["name"] for f in deal["fields"]]
    assert "margin" not in deal["schema"]["properties"]
    assert deal["permissions"] == {"actions": ["read"], "readonly_fields": []}
    rep = described(headers_for(crm, "sales_rep"))["crm.deal"]
    assert rep["permissions"]["actions"] == ["create", "read", "update"]
    assert rep["permissions"]["readonly_fields"] == ["amount"]
    assert "secret_note" not in [f["name"] for f in seen["crm.account"]["fields"]]


def test_aggregates_obey_the_where_and_hidden_fields(
    crm: Instance, api: TestClient, seeded: dict[str, Any]
) -> None:
    url = "/api/v1/crm/deal/_aggregate"
    viewer, rep = seeded["viewer"], seeded["rep"]

    def counts(headers: dict[str, str] | None) -> dict[str, int]:
        response = api.get(url, params={"group_by": "status"}, headers=headers)
        assert response.status_code == 200, response.text
        return {r["status"]: r["count"] for r in response.json()["data"]}

    assert counts(None) == {"open": 1, "lost": 2}
    assert counts(viewer) == {"open": 1}  # status != 'lost'
    assert counts(rep) == {"open": 1, "lost": 1}  # or created by the rep
    for params in [
        {"group_by": "margin"},
        {"measures": "margin__sum"},
        {"measures": "margin__max"},
        {"margin__gt": "1"},
        {"account__secret_note": "pays late"},
    ]:
        refused = api.get(url, params=params, headers=viewer)
        assert refused.status_code == 400, (params, refused.text)
    assert api.get(url, params={"measures": "margin__sum"}).status_code == 200
    # a ref__field filter reaches only the accounts the caller may read
    regional = headers_for(crm, "regional")
    by_account = api.get(url, params={"account__name": "Acme"}, headers=regional).json()
    assert by_account["data"] == [{"count": 0}]
    nobody = api.get(url, headers=headers_for(crm, "nobody"))
    assert nobody.status_code == 403
    assert api.get(url).status_code == 200
    assert api.get(url, headers={"authorization": "Bearer nope"}).status_code == 401


def test_exports_obey_the_where_and_hidden_fields(
    crm: Instance, api: TestClient, seeded: dict[str, Any]
) -> None:
    url = "/api/v1/crm/deal/_export"
    viewer = seeded["viewer"]
    as_admin = list(csv.DictReader(io.StringIO(api.get(url).text)))
    assert sorted(r["name"] for r in as_admin) == ["Big", "Gone", "Mine"]
    assert "margin" in as_admin[0]
    exported = api.get(url, headers=viewer)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["name"] for r in rows] == ["Big"]
    assert "margin" not in rows[0]
    lines = api.get(url, params={"format": "jsonl"}, headers=viewer).text.splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["Big"]
    assert all("margin" not in json.loads(line) for line in lines)
    for params in [{"fields": "name,margin"}, {"margin__gt": "1"}, {"sort": "margin"}]:
        refused = api.get(url, params=params, headers=viewer)
        assert refused.status_code == 400, (params, refused.text)
    assert api.get(url, headers=headers_for(crm, "nobody")).status_code == 403
