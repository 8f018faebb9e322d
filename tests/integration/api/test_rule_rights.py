"""Rule actions run with the rights their rule declares (``run_as``), on SQLite and
PostgreSQL: ``system`` (the default) writes whatever the rule says; ``user`` is limited by
the roles of the user whose write triggered it; a role name by that role's grants. A
refused action rolls the whole write back and names the rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\n",
    "entities/deal.yaml": """\
title: name
fields:
  name:   {type: string, required: true}
  mode:   {type: enum, values: [plain, system, user, clerk, blind, margin]}
  margin: {type: decimal, scale: 2}
""",
    "entities/order.yaml": """\
fields:
  deal: {type: reference, to: deal}
  note: {type: string}
""",
    "rules/deal.yaml": """\
- name: order_as_system
  on: create
  when: "mode == 'system'"
  actions: [{create: {entity: order, values: {deal: "{{ id }}", note: system}}}]
- name: order_as_user
  on: create
  when: "mode == 'user'"
  run_as: user
  actions: [{create: {entity: order, values: {deal: "{{ id }}", note: user}}}]
- name: order_as_clerk
  on: create
  when: "mode == 'clerk'"
  run_as: order_clerk
  actions: [{create: {entity: order, values: {deal: "{{ id }}", note: clerk}}}]
- name: order_as_blind_clerk
  on: create
  when: "mode == 'blind'"
  run_as: blind_clerk
  actions: [{create: {entity: order, values: {deal: "{{ id }}", note: blind}}}]
- name: margin_as_user
  on: create
  when: "mode == 'margin'"
  run_as: user
  actions: [{update: {values: {margin: 10}}}]
""",
    "roles.yaml": """\
roles:
  rep:
    grants:
      - {entity: deal, actions: [read, create, update], hidden_fields: [margin]}
  order_clerk:
    grants:
      - {entity: order, actions: [read, create]}
      - {entity: deal, actions: [read]}
  blind_clerk:
    grants:
      - {entity: order, actions: [read, create]}
""",
}


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "crm", FILES)


@pytest.fixture
def api(crm: Instance) -> Iterator[TestClient]:
    with crm.client() as client:
        yield client


def orders(api: TestClient) -> list[str]:
    return sorted(r["note"] for r in api.get("/api/v1/crm/order").json()["data"])


def deals(api: TestClient) -> list[str]:
    return sorted(r["name"] for r in api.get("/api/v1/crm/deal").json()["data"])


def create(api: TestClient, headers: dict[str, str], mode: str) -> Any:
    return api.post("/api/v1/crm/deal", json={"name": f"by {mode}", "mode": mode}, headers=headers)


def test_each_rule_acts_with_the_rights_it_declares(crm: Instance, api: TestClient) -> None:
    rep = bearer(issue_token(crm.settings.database_url, "rita", ("rep",)))
    # the rep may not create orders, but a system rule may for them
    assert create(api, rep, "system").status_code == 201
    assert orders(api) == ["system"]
    # run_as: user: the rep's own rights; the whole write is rolled back
    refused = create(api, rep, "user")
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["type"] == "/problems/forbidden"
    assert "rule 'order_as_user' (run_as: user)" in problem["detail"]
    assert "by user" not in deals(api)
    assert orders(api) == ["system"]
    # run_as: a role: that role's grants, whoever writes
    assert create(api, rep, "clerk").status_code == 201
    assert orders(api) == ["clerk", "system"]
    # a role that may not read deals may not point an order at one (as if it did not exist)
    blind = create(api, rep, "blind")
    assert blind.status_code == 422, blind.text
    assert blind.json()["errors"] == [
        {"field": "deal", "code": "reference", "message": "refers to a record that does not exist"}
    ]
    assert "by blind" not in deals(api)
    assert orders(api) == ["clerk", "system"]
    # run_as: user cannot write a field hidden from the user
    hidden = create(api, rep, "margin")
    assert hidden.status_code == 403, hidden.text
    assert hidden.json()["errors"][0]["field"] == "margin"
    assert "by margin" not in deals(api)


def test_run_as_user_has_the_rights_of_an_admin_writer(api: TestClient) -> None:
    made = api.post("/api/v1/crm/deal", json={"name": "by admin", "mode": "user"})
    assert made.status_code == 201, made.text
    assert api.post("/api/v1/crm/deal", json={"name": "m", "mode": "margin"}).status_code == 201
    assert orders(api) == ["user"]
    by_margin = api.get("/api/v1/crm/deal", params={"name": "m"}).json()["data"][0]
    assert by_margin["margin"] == "10.00"
