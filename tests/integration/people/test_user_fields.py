"""The ``user`` field type through HTTP, on SQLite and PostgreSQL: written as a user's name
or id, read as the id, refused (422) when the user is unknown or inactive or the input is
no user at all, filtered by name, compared with ``user`` in a grant; and added by a
migration to an entity that has rows."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from engine import open_database
from tests.conftest import pack_instance
from tests.support.identity import bearer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

TASK = """\
title: title
fields:
  title: {type: string, required: true}
  assigned_to: {type: user}
  reviewer: {type: user, default: "{{ user }}"}
"""
ROLES = """\
roles:
  worker:
    grants:
      - {entity: task, actions: [read, update], where: "assigned_to == user"}
      - {entity: task, actions: [read], where: "reviewer == user.username"}
"""
FILES = {
    "module.yaml": 'name: work\nversion: "1.0.0"\n',
    "entities/task.yaml": TASK,
    "roles.yaml": ROLES,
}
URL = "/api/v1/work/task"


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "work", FILES)


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def _user_id(instance: Instance, username: str, roles: tuple[str, ...] = ("worker",)) -> str:
    """Create ``username`` (through a token) and return its id."""
    instance.token(username, roles)
    return _query(instance, "SELECT id FROM tessera_user WHERE username = 'NAME'", username)


def _query(instance: Instance, sql: str, username: str) -> str:
    async def run() -> str:
        database = await open_database(instance.settings.database_url, pool_size=1)
        try:
            async with database.transaction() as conn:
                row = await conn.fetchrow(sql.replace("NAME", username), [])
                return "" if row is None else str(row[0])
        finally:
            await database.close()

    return asyncio.run(run())


def _deactivate(instance: Instance, username: str) -> None:
    _query(instance, "UPDATE tessera_user SET active = 0 WHERE username = 'NAME'", username)


def test_written_by_name_or_id_read_as_id(instance: Instance, client: TestClient) -> None:
    ann = _user_id(instance, "ann")
    by_name = client.post(URL, json={"title": "A", "assigned_to": "ann"})
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["data"]["assigned_to"] == ann
    by_id = client.post(URL, json={"title": "B", "assigned_to": int(ann)})
    assert by_id.json()["data"]["assigned_to"] == ann
    as_text = client.post(URL, json={"title": "C", "assigned_to": {"username": "ann"}})
    assert as_text.json()["data"]["assigned_to"] == ann
    # the default {{ user }} is the writer (the admin "tests")
    tests_id = _query(instance, "SELECT id FROM tessera_user WHERE username = 'NAME'", "tests")
    assert by_name.json()["data"]["reviewer"] == tests_id
    # list filters by name and by id; an unknown name matches nothing
    assert len(client.get(URL, params={"assigned_to": "ann"}).json()["data"]) == 3
    assert len(client.get(URL, params={"assigned_to": ann}).json()["data"]) == 3
    assert client.get(URL, params={"assigned_to": "nobody"}).json()["data"] == []
    listed = client.get(URL, params={"assigned_to__in": "ann,tests"})
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["data"]) == 3


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("nobody", "user"),
        (999999, "user"),
        ("999999", "user"),
        ("an\x00n", "format"),
        ("\ud800", "format"),
        ({"username": "ann", "x": 1}, "user"),
        (True, "type"),
        (1.5, "type"),
        (2**70, "user"),
        ([1], "type"),
    ],
)
def test_what_is_no_user_is_refused(
    instance: Instance, client: TestClient, value: object, code: str
) -> None:
    _user_id(instance, "ann")
    body = json.dumps({"title": "X", "assigned_to": value})  # \ud800 escaped, as JSON has it
    response = client.post(URL, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("assigned_to", code)], errors


def test_an_inactive_user_is_refused_but_kept(instance: Instance, client: TestClient) -> None:
    ann = _user_id(instance, "ann")
    task = client.post(URL, json={"title": "A", "assigned_to": "ann"}).json()["data"]
    _deactivate(instance, "ann")
    refused = client.post(URL, json={"title": "B", "assigned_to": "ann"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["message"] == "no active user named 'ann'"
    assert client.post(URL, json={"title": "C", "assigned_to": ann}).status_code == 422
    # a record keeps the user it holds: resending it unchanged is no new choice
    kept = client.patch(f"{URL}/{task['id']}", json={"title": "A2", "assigned_to": ann})
    assert kept.status_code == 200, kept.text


def test_a_grant_compares_the_field_with_the_user(instance: Instance, client: TestClient) -> None:
    _user_id(instance, "ann")
    _user_id(instance, "bob")
    for title, who in [("a1", "ann"), ("a2", "ann"), ("b1", "bob"), ("none", None)]:
        assert client.post(URL, json={"title": title, "assigned_to": who}).status_code == 201
    ann = bearer(instance.token("ann", ("worker",)))
    mine = client.get(URL, headers=ann).json()["data"]
    assert sorted(t["title"] for t in mine) == ["a1", "a2"]
    bobs = client.get(URL, params={"title": "b1"}).json()["data"][0]
    assert client.get(f"{URL}/{bobs['id']}", headers=ann).status_code == 404
    # user.username compares a user field with the same user
    reviewed = client.post(URL, json={"title": "r", "reviewer": "ann"}).json()["data"]
    assert client.get(f"{URL}/{reviewed['id']}", headers=ann).status_code == 200
    # an update may not hand one's own task to somebody else's reach
    own = mine[0]
    moved = client.patch(f"{URL}/{own['id']}", json={"assigned_to": "bob"}, headers=ann)
    assert moved.status_code == 403, moved.text


def test_a_migration_adds_a_user_field_to_rows(db_url: str, tmp_path: Path) -> None:
    plain = TASK.replace("  assigned_to: {type: user}\n", "").replace(
        '  reviewer: {type: user, default: "{{ user }}"}\n', ""
    )
    files = {**FILES, "entities/task.yaml": plain, "roles.yaml": "roles: {}\n"}
    instance = pack_instance(tmp_path, db_url, "work", files)
    with instance.client() as client:
        old = client.post(URL, json={"title": "old"}).json()["data"]
    (tmp_path / "packs/work/entities/task.yaml").write_text(TASK, encoding="utf-8")
    (tmp_path / "packs/work/roles.yaml").write_text(ROLES, encoding="utf-8")
    instance.migrate()
    _user_id(instance, "ann")
    with instance.client() as client:
        kept = client.get(f"{URL}/{old['id']}").json()["data"]
        assert kept["assigned_to"] is None
        assert kept["reviewer"] is None
        patched = client.patch(f"{URL}/{old['id']}", json={"assigned_to": "ann"})
        assert patched.status_code == 200, patched.text
        assert client.get(URL, params={"assigned_to": "ann"}).json()["data"][0]["title"] == "old"


def test_bulk_and_upsert_resolve_names_all_or_nothing(
    instance: Instance, client: TestClient
) -> None:
    ann = _user_id(instance, "ann")
    bad = client.post(
        f"{URL}/_bulk",
        json=[{"title": "ok", "assigned_to": "ann"}, {"title": "no", "assigned_to": "zed"}],
    )
    assert bad.status_code == 422, bad.text
    assert [(e["index"], e["field"], e["code"]) for e in bad.json()["errors"]] == [
        (1, "assigned_to", "user")
    ]
    assert client.get(URL).json()["data"] == []
    good = client.post(f"{URL}/_bulk", json=[{"title": "a", "assigned_to": "ann"}])
    assert good.status_code in {200, 201}, good.text
    assert client.get(URL, params={"assigned_to": "ann"}).json()["data"][0]["assigned_to"] == ann
