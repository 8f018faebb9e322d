"""The CSV for people (``_export?for=people``, the list's Export CSV button) shows a
reference by its record's title and a user by name, as the list screen does, and only where
the reader may read that record; the default export keeps the ids. On SQLite and
PostgreSQL, through HTTP; the titles of a page are read in one query per referenced entity.
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING, Any

import pytest

from engine import database
from tests.conftest import Instance, pack_instance
from tests.support.identity import bearer, issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\n",
    "entities/account.yaml": """\
title: name
fields:
  name:        {type: string, required: true, unique: true}
  revenue:     {type: decimal, scale: 2}
""",
    "entities/deal.yaml": """\
title: name
fields:
  name:    {type: string, required: true}
  account: {type: reference, to: account}
  owner:   {type: user}
""",
    "roles.yaml": """\
roles:
  regional:
    grants:
      - {entity: account, actions: [read], where: "revenue > 100"}
      - {entity: deal, actions: [read]}
  deals_only:
    grants:
      - {entity: deal, actions: [read]}
  nameless:
    grants:
      - {entity: account, actions: [read], hidden_fields: [name]}
      - {entity: deal, actions: [read]}
""",
}
EXPORT = "/api/v1/crm/deal/_export"
PEOPLE = {"for": "people", "fields": "name,account,owner,created_by"}


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "crm", FILES)


@pytest.fixture
def api(crm: Instance) -> Iterator[TestClient]:
    with crm.client() as client:  # an admin, "tests"
        yield client


@pytest.fixture
def seeded(api: TestClient) -> dict[str, Any]:
    """Two accounts (Small is readable by the regional role, Large is), a deal on each and
    one without, each owned by the admin who made it."""
    small = api.post("/api/v1/crm/account", json={"name": "Small", "revenue": "5"})
    large = api.post("/api/v1/crm/account", json={"name": "Large", "revenue": "500"})
    accounts = {"Small": small.json()["data"]["id"], "Large": large.json()["data"]["id"]}
    me = api.get("/api/v1/auth/me").json()["data"]["id"]
    for name, account in [("S", accounts["Small"]), ("L", accounts["Large"]), ("N", None)]:
        made = api.post("/api/v1/crm/deal", json={"name": name, "account": account, "owner": me})
        assert made.status_code == 201, made.text
    return {"accounts": accounts, "me": me}


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def as_role(crm: Instance, role: str) -> dict[str, str]:
    return bearer(issue_token(crm.settings.database_url, f"u_{role}", (role,)))


def test_people_read_titles_and_names_machines_read_ids(
    api: TestClient, seeded: dict[str, Any]
) -> None:
    people = api.get(EXPORT, params=PEOPLE)
    assert people.status_code == 200, people.text
    assert rows(people.text) == [
        ["Name", "Account", "Owner", "Created by"],
        ["S", "Small", "tests", "tests"],
        ["L", "Large", "tests", "tests"],
        ["N", "", "tests", "tests"],
    ]
    machines = api.get(EXPORT, params={"fields": "name,account,owner,created_by"})
    small, me = seeded["accounts"]["Small"], seeded["me"]
    assert rows(machines.text)[1] == ["S", small, me, me]
    lines = api.get(EXPORT, params={"format": "jsonl", "fields": "name,account"}).text
    assert f'"account":"{small}"' in lines.splitlines()[0]


def test_a_record_the_reader_may_not_read_shows_its_id_as_the_list_does(
    crm: Instance, api: TestClient, seeded: dict[str, Any]
) -> None:
    """The regional role reads accounts with revenue over 100: Large by its name, Small by
    its id (the name is not leaked); the list screen shows the same cells."""
    small = seeded["accounts"]["Small"]
    exported = api.get(EXPORT, params=PEOPLE, headers=as_role(crm, "regional"))
    assert [row[:2] for row in rows(exported.text)[1:]] == [["S", small], ["L", "Large"], ["N", ""]]
    assert "Small" not in exported.text
    issue_token(crm.settings.database_url, "rita", ("regional",), password=PASSWORD)
    with signed_in(crm, "rita", PASSWORD) as web:
        listed = web.get("/app/crm/deal?sort=id").text
        exported = web.get("/app/crm/deal/export.csv", params={"for": "people"})
    cells = re.findall(r'data-label="Account">\s*([^<]*?)\s*<', listed)
    assert cells == [small, "Large", ""]
    header, *lines = rows(exported.text)  # every column: ID, Name, Account...
    assert [line[header.index("Account")] for line in lines] == cells


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        ("deals_only", lambda accounts: [accounts["Small"], accounts["Large"]]),
        ("nameless", lambda accounts: [f"#{accounts['Small']}", f"#{accounts['Large']}"]),
    ],
)
def test_an_unreadable_entity_or_a_hidden_title_is_never_shown(
    crm: Instance, api: TestClient, seeded: dict[str, Any], role: str, shown: Any
) -> None:
    exported = api.get(EXPORT, params=PEOPLE, headers=as_role(crm, role))
    assert exported.status_code == 200, exported.text
    assert [row[1] for row in rows(exported.text)[1:3]] == shown(seeded["accounts"])
    assert "Small" not in exported.text
    assert "Large" not in exported.text


def test_titles_are_read_once_per_page_not_per_row(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = [
        api.post("/api/v1/crm/account", json={"name": f"Account {n}", "revenue": "1"})
        for n in range(30)
    ]
    made = api.post(
        "/api/v1/crm/deal/_bulk",
        json=[{"name": f"D{n}", "account": a.json()["data"]["id"]} for n, a in enumerate(accounts)],
    )
    assert made.status_code == 201, made.text
    sent = _record_reads(monkeypatch)
    exported = api.get(EXPORT, params={"for": "people", "fields": "name,account"})
    assert [row[1] for row in rows(exported.text)[1:]] == [f"Account {n}" for n in range(30)]
    assert len([sql for sql in sent if re.search(r"\bFROM \W?crm_account\b", sql)]) == 1, sent
    assert len([sql for sql in sent if re.search(r"\bFROM \W?crm_deal\b", sql)]) == 1, sent


def _record_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SELECTs the connections send from now on."""
    sent: list[str] = []
    for connection in (database._PostgresConnection, database._SqliteConnection):
        original = connection.fetch

        async def fetch(self: Any, sql: str, args: Any, original: Any = original) -> Any:
            sent.append(sql)
            return await original(self, sql, args)

        monkeypatch.setattr(connection, "fetch", fetch)
    return sent
