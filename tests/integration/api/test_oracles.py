"""No existence oracles, and no update that leaves the updater's grant, on SQLite and
PostgreSQL.

A reference to a record the writer may not read is answered exactly like a reference to a
missing record, on every write path (create, PATCH, upsert, ``_bulk``, lines); a unique
conflict reads the same whether or not the caller may read the record holding the value;
an update is checked against the update grant on the record as it will be stored, and a
refused one leaves no trace (no change, no audit row, no outbox event).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from engine import open_database
from tests.conftest import Instance, pack_instance
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\n",
    "entities/account.yaml": """\
title: name
fields:
  name:    {type: string, required: true, unique: true}
  country: {type: string}
  vat:     {type: string, unique: true}
""",
    "entities/deal.yaml": """\
title: name
fields:
  name:    {type: string, required: true}
  code:    {type: string, unique: true}
  account: {type: reference, to: account}
  lines:   {type: children, entity: deal_line}
""",
    "entities/deal_line.yaml": """\
fields:
  text:    {type: string, required: true}
  account: {type: reference, to: account}
""",
    "entities/customer.yaml": """\
title: name
fields:
  name:    {type: string, required: true, unique: true}
  country: {type: string}
  status:  {type: enum, values: [active, moving]}
  dach:    {type: boolean, computed: "country in ['Germany', 'Austria', 'Switzerland']"}
""",
    "rules/customer.yaml": """\
- name: announce
  on: update
  when: "changed('status')"
  actions: [{webhook: {url: "https://hooks.example.com/crm"}}]
- name: relocate
  on: update
  when: "changed('status') and status == 'moving'"
  run_as: user
  actions: [{update: {values: {country: France}}}]
""",
    "roles.yaml": """\
roles:
  german_rep:
    grants:
      - entity: account
        actions: [read, create, update]
        where: "country == 'Germany'"
        hidden_fields: [vat]
      - {entity: deal, actions: [read, create, update]}
      - {entity: customer, actions: [read, create, update], where: "country == 'Germany'"}
  dach_rep:
    grants:
      - {entity: customer, actions: [read, update], where: "dach == true"}
  blind_rep:
    grants:
      - {entity: deal, actions: [read, create, update]}
""",
}
MISSING_ID = "999999"


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "crm", FILES)


@pytest.fixture
def api(crm: Instance) -> Iterator[TestClient]:
    with crm.client() as client:  # signed in as an admin
        yield client


def headers_for(crm: Instance, role: str) -> dict[str, str]:
    return bearer(issue_token(crm.settings.database_url, f"u_{role}", (role,)))


def made(response: Any) -> str:
    assert response.status_code in {200, 201}, response.text
    return str(response.json()["data"]["id"])


def count(crm: Instance, sql: str) -> int:
    async def run() -> int:
        database = await open_database(crm.settings.database_url, pool_size=1)
        try:
            async with database.connection() as conn:
                row = await conn.fetchrow(sql, [])
                assert row is not None
                return int(row[0])
        finally:
            await database.close()

    return asyncio.run(run())


@pytest.fixture
def accounts(api: TestClient) -> dict[str, str]:
    """A German account (the German rep reads it) and a French one (they may not)."""
    return {
        "berlin": made(
            api.post("/api/v1/crm/account", json={"name": "Berlin GmbH", "country": "Germany"})
        ),
        "paris": made(
            api.post(
                "/api/v1/crm/account",
                json={"name": "Paris SA", "country": "France", "vat": "FR1"},
            )
        ),
    }


def write_everywhere(api: TestClient, headers: dict[str, str], ref: Any) -> list[tuple[int, str]]:
    """Point a deal (and a deal's line) at ``ref`` through every write path of the API; the
    status and problem body of each answer."""
    own = made(api.post("/api/v1/crm/deal", json={"name": "own", "code": "OWN"}, headers=headers))
    url = "/api/v1/crm/deal"
    calls = [
        api.post(url, json={"name": "d", "account": ref}, headers=headers),
        api.patch(f"{url}/{own}", json={"account": ref}, headers=headers),
        api.put(f"{url}/by/code/NEW", json={"name": "d", "account": ref}, headers=headers),
        api.put(f"{url}/by/code/OWN", json={"account": ref}, headers=headers),
        api.post(
            f"{url}/_bulk", json=[{"name": "ok"}, {"name": "d", "account": ref}], headers=headers
        ),
        api.post(
            url, json={"name": "d", "lines": [{"text": "l", "account": ref}]}, headers=headers
        ),
        api.patch(f"{url}/{own}", json={"lines": [{"text": "l", "account": ref}]}, headers=headers),
    ]
    # as the admin, for the next round
    assert api.delete(f"{url}/{own}").status_code == 204
    if calls[2].status_code == 201:
        assert api.delete(f"{url}/{calls[2].json()['data']['id']}").status_code == 204
    return [(r.status_code, r.text) for r in calls]


def test_a_reference_to_an_unreadable_record_is_answered_like_a_missing_one(
    crm: Instance, api: TestClient, accounts: dict[str, str]
) -> None:
    rep = headers_for(crm, "german_rep")
    deals_before = count(crm, "SELECT COUNT(*) FROM crm_deal")
    lines_before = count(crm, "SELECT COUNT(*) FROM crm_deal_line")
    unreadable = write_everywhere(api, rep, accounts["paris"])
    missing = write_everywhere(api, rep, MISSING_ID)
    assert unreadable == missing
    for status, text in unreadable:
        assert status == 422, text
        problem = json.loads(text)
        assert problem["type"] == "/problems/validation"
        assert [(e["field"], e["code"]) for e in problem["errors"]] in (
            [("account", "reference")],
            [("lines[0].account", "reference")],
        ), text
        assert "refers to a record that does not exist" in text
    # by a unique field: the same, apart from the value looked up
    by_key = write_everywhere(api, rep, {"name": "Paris SA"})
    by_missing_key = write_everywhere(api, rep, {"name": "Nowhere"})
    assert [(s, t.replace("Paris SA", "Nowhere")) for s, t in by_key] == by_missing_key
    assert all(status == 422 for status, _ in by_key)
    assert "no crm.account record with name = 'Nowhere'" in by_missing_key[0][1]
    # a hidden unique field is no key for a lookup: as if it were not a unique field
    by_hidden = write_everywhere(api, rep, {"vat": "FR1"})
    assert by_hidden == write_everywhere(api, rep, {"vat": "nothing"})
    assert "'vat' is not a unique field of crm.account (unique fields: name)" in by_hidden[0][1]
    # nothing of it was written (each round's own deal deleted again)
    assert count(crm, "SELECT COUNT(*) FROM crm_deal") == deals_before
    assert count(crm, "SELECT COUNT(*) FROM crm_deal_line") == lines_before
    # a record the writer may read: every path writes
    readable = write_everywhere(api, rep, accounts["berlin"])
    assert [status for status, _ in readable] == [201, 200, 201, 200, 201, 201, 200], readable
    assert all(s < 300 for s, _ in write_everywhere(api, rep, {"name": "Berlin GmbH"}))
    # no read grant on the target at all: no record may be pointed at
    blind = write_everywhere(api, headers_for(crm, "blind_rep"), accounts["berlin"])
    assert blind == missing
    # the admin (and the system) may point anywhere
    assert all(s < 300 for s, _ in write_everywhere(api, {}, accounts["paris"]))


def test_a_reference_already_stored_may_stay(
    crm: Instance, api: TestClient, accounts: dict[str, str]
) -> None:
    """A record that points at an unreadable record can still be edited, resending that
    reference (as a form does) or a line holding it; only a new pointer is checked."""
    rep = headers_for(crm, "german_rep")
    paris = accounts["paris"]
    deal = api.post(
        "/api/v1/crm/deal",
        json={"name": "Shared", "account": paris, "lines": [{"text": "l", "account": paris}]},
    ).json()["data"]
    url = f"/api/v1/crm/deal/{deal['id']}"
    kept = api.patch(url, json={"name": "Renamed", "account": paris}, headers=rep)
    assert kept.status_code == 200, kept.text
    line = {"id": deal["lines"][0]["id"], "text": "changed", "account": paris}
    lines = api.patch(url, json={"lines": [line]}, headers=rep)
    assert lines.status_code == 200, lines.text
    new_line = api.patch(url, json={"lines": [line, {"text": "x", "account": paris}]}, headers=rep)
    assert new_line.status_code == 422, new_line.text
    assert new_line.json()["errors"][0]["field"].endswith("account")
    moved = api.patch(url, json={"account": accounts["berlin"]}, headers=rep)
    assert moved.status_code == 200
    back = api.patch(url, json={"account": paris}, headers=rep)
    assert back.status_code == 422  # no longer the stored value: a new pointer


def test_a_unique_conflict_reads_the_same_whether_or_not_the_holder_is_readable(
    crm: Instance, api: TestClient, accounts: dict[str, str]
) -> None:
    rep = headers_for(crm, "german_rep")
    url = "/api/v1/crm/account"
    readable = api.post(url, json={"name": "Berlin GmbH", "country": "Germany"}, headers=rep)
    unreadable = api.post(url, json={"name": "Paris SA", "country": "Germany"}, headers=rep)
    assert readable.status_code == unreadable.status_code == 409
    assert readable.json() == unreadable.json()
    problem = unreadable.json()
    assert problem["type"] == "/problems/conflict"
    assert problem["errors"] == [
        {"field": "name", "code": "unique", "message": "is already in use"}
    ]
    assert problem["detail"] == "this name is already in use: it must be unique among all accounts"
    for holder in ("Paris", "France", "FR1", accounts["paris"]):
        assert holder not in unreadable.text
    in_bulk = [
        api.post(f"{url}/_bulk", json=[{"name": n, "country": "Germany"}], headers=rep)
        for n in ("Berlin GmbH", "Paris SA")
    ]
    assert in_bulk[0].status_code == in_bulk[1].status_code == 409
    assert in_bulk[0].json() == in_bulk[1].json()
    # an upsert on a key an unreadable record holds: the same 409 (no 404 naming its id)
    upserted = api.put(f"{url}/by/name/Paris SA", json={"country": "Germany"}, headers=rep)
    assert upserted.status_code == 409, upserted.text
    assert upserted.json() == unreadable.json()
    assert api.get(f"{url}/{accounts['paris']}").json()["data"]["country"] == "France"
    assert count(crm, "SELECT COUNT(*) FROM crm_account") == 2


def test_an_update_cannot_move_a_record_out_of_the_updaters_grant(
    crm: Instance, api: TestClient
) -> None:
    rep = headers_for(crm, "german_rep")
    url = "/api/v1/crm/customer"
    customer = made(api.post(url, json={"name": "Müller", "country": "Germany"}))
    record = f"{url}/{customer}"

    def trace() -> tuple[Any, int, int]:
        stored = api.get(record).json()["data"]
        audit = count(
            crm,
            "SELECT COUNT(*) FROM tessera_audit WHERE entity = 'crm.customer' "
            "AND action IN ('create', 'update', 'delete')",
        )
        return stored, audit, count(crm, "SELECT COUNT(*) FROM tessera_outbox")

    before = trace()
    attempts = [
        api.patch(record, json={"country": "France"}, headers=rep),
        api.put(f"{url}/by/name/Müller", json={"country": "France"}, headers=rep),
        # a rule running as the user moves it: the webhook of the rule before it is undone too
        api.patch(record, json={"status": "moving"}, headers=rep),
    ]
    for refused in attempts:
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"] == "/problems/forbidden"
        assert "update only crm.customer records for which country == 'Germany'" in refused.text
    assert "rule 'relocate' (run_as: user)" in attempts[2].json()["detail"]
    assert trace() == before
    # creates: a _bulk with one record outside the create grant writes nothing
    bulk = api.post(
        f"{url}/_bulk",
        json=[{"name": "A", "country": "Germany"}, {"name": "B", "country": "France"}],
        headers=rep,
    )
    assert bulk.status_code == 403, bulk.text
    assert count(crm, "SELECT COUNT(*) FROM crm_customer") == 1
    # inside the grant: fine
    assert api.patch(record, json={"name": "Müller AG"}, headers=rep).status_code == 200
    # judged after computed fields: dach follows the country
    dach = headers_for(crm, "dach_rep")
    assert api.patch(record, json={"country": "Austria"}, headers=dach).status_code == 200
    left = api.patch(record, json={"country": "France"}, headers=dach)
    assert left.status_code == 403, left.text
    assert "for which dach == true" in left.json()["detail"]
    assert api.get(record).json()["data"]["country"] == "Austria"
    # the admin may; the rules then run (and queue the webhook) as they should
    outbox = count(crm, "SELECT COUNT(*) FROM tessera_outbox")
    moved = api.patch(record, json={"status": "moving"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["country"] == "France"
    assert count(crm, "SELECT COUNT(*) FROM tessera_outbox") == outbox + 1
