"""Assignment rules through HTTP, on SQLite and PostgreSQL: round robin over the users of a
role (30 creates, 10 each, in turn; 20 parallel creates through a served process share
evenly), least load over a list of users counting only open records, the first record an
expression selects, an assignment on update when its condition comes to hold, and a value
the writer gives kept."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import pack_instance
from tests.support.identity import bearer
from tests.support.server import serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

FILES = {
    "module.yaml": 'name: desk\nversion: "1.0.0"\n',
    "roles.yaml": """\
roles:
  rep:
    grants: [{entity: lead, actions: [read], where: "owner == user"}]
  manager:
    grants: [{entity: lead, actions: [read]}]
""",
    "entities/employee.yaml": """\
fields:
  name: {type: string, required: true}
  region: {type: string}
  active: {type: boolean, default: true}
""",
    "entities/lead.yaml": "fields:\n  name: {type: string, unique: true}\n  owner: {type: user}\n",
    "entities/ticket.yaml": """\
fields:
  title: {type: string}
  status: {type: enum, values: [open, closed], default: open}
  assignee: {type: user}
""",
    "entities/case.yaml": """\
fields:
  title: {type: string}
  region: {type: string}
  agent: {type: reference, to: employee}
""",
    "rules/lead.yaml": """\
- name: to_reps
  assign: {field: owner, strategy: round_robin, candidates: {role: rep}}
""",
    "rules/ticket.yaml": """\
- name: to_least_busy
  on: [create, update]
  when: "status == 'open'"
  assign:
    field: assignee
    strategy: least_load
    candidates: {users: [ann, bob, cy]}
    load: "status == 'open'"
""",
    "rules/case.yaml": """\
- name: to_regional_agent
  assign:
    field: agent
    strategy: first
    candidates: {records: "active"}
    select: "candidate.region == region"
""",
}
API = "/api/v1/desk"


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "desk", FILES, pool_size=12)


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def _users(instance: Instance, names: list[str], role: str) -> None:
    for name in names:
        instance.token(name, (role,))


def _owner_names(client: TestClient, entity: str, field: str) -> list[str | None]:
    """The user each record holds, by name, in the order of creation (ids)."""
    params = {"limit": 200, "sort": "id"}
    held = [r[field] for r in client.get(f"{API}/{entity}", params=params).json()["data"]]
    by_id = _user_names(client, {v for v in held if v is not None})
    return [by_id.get(v) if v else None for v in held]


def _user_names(client: TestClient, ids: set[str]) -> dict[str, str]:
    """Each user id by name, asking the list filter which name selects it."""
    result = {}
    for name in ["ann", "bob", "cy", "dan", "mia"]:
        for record in client.get(f"{API}/lead", params={"owner": name}).json()["data"]:
            result[record["owner"]] = name
        for record in client.get(f"{API}/ticket", params={"assignee": name}).json()["data"]:
            result[record["assignee"]] = name
    return {i: result[i] for i in ids if i in result}


def test_round_robin_gives_each_rep_a_turn(instance: Instance, client: TestClient) -> None:
    _users(instance, ["ann", "bob", "cy"], "rep")
    _users(instance, ["mia"], "manager")  # not a rep: never picked
    for n in range(30):
        created = client.post(f"{API}/lead", json={"name": f"L{n}"})
        assert created.status_code == 201, created.text
    owners = _owner_names(client, "lead", "owner")
    assert Counter(owners) == {"ann": 10, "bob": 10, "cy": 10}
    assert owners[:6] == ["ann", "bob", "cy", "ann", "bob", "cy"]
    # a rep sees the leads assigned to them (the grant compares owner with user)
    ann = bearer(instance.token("ann", ("rep",)))
    mine = client.get(f"{API}/lead", params={"limit": 100}, headers=ann).json()["data"]
    assert len(mine) == 10
    # a value the writer gives is kept, and the turn does not move
    bob_id = client.get(f"{API}/lead", params={"owner": "bob"}).json()["data"][0]["owner"]
    given = client.post(f"{API}/lead", json={"name": "given", "owner": "bob"}).json()["data"]
    assert given["owner"] == bob_id
    after = client.post(f"{API}/lead", json={"name": "next"}).json()["data"]
    assert _user_names(client, {after["owner"]}) == {after["owner"]: "ann"}


def test_an_upsert_that_updates_takes_no_turn(instance: Instance, client: TestClient) -> None:
    _users(instance, ["ann", "bob"], "rep")
    first = client.put(f"{API}/lead/by/name/one", json={"name": "one"})
    assert first.status_code in {200, 201}, first.text
    again = client.put(f"{API}/lead/by/name/one", json={"name": "one"})
    assert again.status_code == 200, again.text
    assert again.json()["data"]["owner"] == first.json()["data"]["owner"]
    second = client.post(f"{API}/lead", json={"name": "two"}).json()["data"]
    assert _owner_names(client, "lead", "owner") == ["ann", "bob"]
    assert second["owner"] != first.json()["data"]["owner"]


def test_least_load_counts_only_open_records(instance: Instance, client: TestClient) -> None:
    _users(instance, ["ann", "bob", "cy"], "rep")
    for title, who, status in [
        ("a1", "ann", "open"),
        ("a2", "ann", "open"),
        ("b1", "bob", "open"),
        ("b2", "bob", "closed"),
        ("b3", "bob", "closed"),
        ("b4", "bob", "closed"),
    ]:
        body = {"title": title, "assignee": who, "status": status}
        assert client.post(f"{API}/ticket", json=body).status_code == 201
    picked = []
    for n in range(4):
        record = client.post(f"{API}/ticket", json={"title": f"new{n}"}).json()["data"]
        picked.append(_user_names(client, {record["assignee"]})[record["assignee"]])
    # loads ann 2, bob 1, cy 0 -> cy; bob 1 = cy 1 -> bob (in turn after cy); cy; ann
    assert picked == ["cy", "bob", "cy", "ann"]
    # a closed ticket is not assigned; reopening it is
    closed = client.post(f"{API}/ticket", json={"title": "later", "status": "closed"})
    assert closed.json()["data"]["assignee"] is None
    reopened = client.patch(f"{API}/ticket/{closed.json()['data']['id']}", json={"status": "open"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["data"]["assignee"] is not None


def test_first_takes_the_first_candidate_the_expression_selects(client: TestClient) -> None:
    ids = {}
    for name, region, active in [
        ("Nora", "north", True),
        ("Sam", "south", False),
        ("Sue", "south", True),
        ("Sid", "south", True),
    ]:
        body = {"name": name, "region": region, "active": active}
        ids[name] = client.post(f"{API}/employee", json=body).json()["data"]["id"]
    for _ in range(2):  # always the first that fits, not in turn
        south = client.post(f"{API}/case", json={"title": "S", "region": "south"}).json()["data"]
        assert south["agent"] == ids["Sue"]
    north = client.post(f"{API}/case", json={"title": "N", "region": "north"}).json()["data"]
    assert north["agent"] == ids["Nora"]
    west = client.post(f"{API}/case", json={"title": "W", "region": "west"})
    assert west.status_code == 201, west.text
    assert west.json()["data"]["agent"] is None


async def _race(base: str, token: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, headers=bearer(token), timeout=60) as client:
        return list(
            await asyncio.gather(
                *(client.post(f"{API}/lead", json={"name": f"R{n}"}) for n in range(count))
            )
        )


@pytest.mark.only_on("postgresql")  # SQLite serialises writes: the race is PostgreSQL's
def test_parallel_creates_share_the_turns(instance: Instance, backend: str) -> None:
    _users(instance, ["ann", "bob", "cy", "dan"], "rep")
    token = instance.token()
    with serving(instance.path) as base:
        responses = asyncio.run(_race(base, token, 20))
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    with instance.client() as client:
        owners = _owner_names(client, "lead", "owner")
    assert Counter(owners) == {"ann": 5, "bob": 5, "cy": 5, "dan": 5}
    # in the order the creates committed (their ids), the reps took their turns in order
    assert owners == ["ann", "bob", "cy", "dan"] * 5
