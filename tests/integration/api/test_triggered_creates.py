"""A create whose trigger creates a record of another entity: the same answers, records and
audit trail whichever way it is written. On PostgreSQL, when the trigger's ``when`` is
judged before the INSERT and its actions are plain creates, the record and the ones its
triggers create are one statement after the new id is drawn (two round trips, no
transaction), or without drawing it first when they read it only as a reference to the new
record (one round trip); a value the target refuses, or a constraint, still answers exactly as
before and leaves nothing behind. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: sales\nversion: 1.0.0\n",
    "entities/deal.yaml": """\
fields:
  name:   {type: string, required: true}
  stage:  {type: enum, values: [open, won, lost], default: open}
  amount: {type: decimal, scale: 2}
  ref:    {type: string}
""",
    "entities/order.yaml": """\
fields:
  deal:   {type: reference, to: deal, required: true}
  amount: {type: decimal, scale: 2, required: true}
  note:   {type: string}
  ref:    {type: string, unique: true}
""",
    "entities/deal_note.yaml": """\
fields:
  deal: {type: reference, to: deal, required: true}
  text: {type: text}
""",
    "rules/deal.yaml": """\
- name: won_creates_order
  on: create
  when: "stage == 'won'"
  actions:
    - create:
        entity: order
        values: {deal: "{{ id }}", amount: "{{ amount }}", note: "Deal {{ id }}: {{ name }}",
                 ref: "{{ ref }}"}
    - create: {entity: deal_note, values: {deal: "{{ id }}", text: "won {{ amount }}"}}
""",
}
ONE_TRIP_RULES = """\
- name: won_creates_order
  on: create
  when: "stage == 'won'"
  actions:
    - create:
        entity: order
        values: {deal: "{{ id }}", amount: "{{ amount }}", note: "Deal {{ name }}",
                 ref: "{{ ref }}"}
    - create: {entity: deal_note, values: {deal: "{{id}}", text: "won {{ amount }}"}}
"""
"""The same triggers, reading the new deal's id only as the whole value of a reference:
on PostgreSQL the statement itself hands the id to the triggered records."""
URL = "/api/v1/sales"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(db_url, tmp_path, FILES)


@pytest.fixture
def one_trip(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(db_url, tmp_path, {**FILES, "rules/deal.yaml": ONE_TRIP_RULES})


def _client(db_url: str, tmp_path: Path, files: dict[str, str]) -> Iterator[TestClient]:
    pack = tmp_path / "packs" / "sales"
    for relative, text in files.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text)
    instance: Instance = write_instance(tmp_path / "acme", db_url, ["sales"], [tmp_path / "packs"])
    instance.migrate()
    with instance.client() as client:
        yield client


def _all(client: TestClient, entity: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = client.get(f"{URL}/{entity}?sort=id").json()["data"]
    return data


def test_a_triggered_create_writes_both_records_and_their_history(client: TestClient) -> None:
    won = client.post(f"{URL}/deal", json={"name": "Fleet", "stage": "won", "amount": "12.5"})
    assert won.status_code == 201, won.text
    deal = won.json()["data"]
    assert (deal["version"], deal["amount"], deal["ref"]) == (1, "12.50", None)
    (order,) = _all(client, "order")
    assert (order["deal"], order["amount"]) == (deal["id"], "12.50")
    assert order["note"] == f"Deal {deal['id']}: Fleet"
    (note,) = _all(client, "deal_note")
    assert (note["deal"], note["text"]) == (deal["id"], "won 12.50")
    for entity, record in (("deal", deal), ("order", order), ("deal_note", note)):
        history = client.get(f"{URL}/{entity}/{record['id']}/_history").json()["data"]
        assert [entry["action"] for entry in history] == ["create"], (entity, history)

    opened = client.post(f"{URL}/deal", json={"name": "Later", "amount": "1"})
    assert opened.status_code == 201  # no trigger due: one INSERT
    assert len(_all(client, "order")) == 1
    assert int(opened.json()["data"]["id"]) > int(deal["id"])


def test_a_refused_triggered_create_leaves_nothing(client: TestClient) -> None:
    no_amount = client.post(f"{URL}/deal", json={"name": "Free", "stage": "won"})
    assert no_amount.status_code == 422, no_amount.text
    assert no_amount.json()["errors"][0]["field"] == "amount"  # the order's required amount

    first = client.post(
        f"{URL}/deal", json={"name": "A", "stage": "won", "amount": "1", "ref": "R"}
    )
    assert first.status_code == 201, first.text
    taken = client.post(
        f"{URL}/deal", json={"name": "B", "stage": "won", "amount": "2", "ref": "R"}
    )
    assert taken.status_code == 409, taken.text  # the order's unique ref
    assert taken.json()["errors"] == [
        {"field": "ref", "code": "unique", "message": "is already in use"}
    ]
    assert [d["name"] for d in _all(client, "deal")] == ["A"]
    assert len(_all(client, "order")) == 1
    assert len(_all(client, "deal_note")) == 1


def test_a_one_trip_create_writes_the_same_records_and_history(one_trip: TestClient) -> None:
    """The new id reaches the triggered records and their audit rows as it does when drawn
    first: a reference to the deal, and ``deal: [null, <id>]`` in their history."""
    won = one_trip.post(f"{URL}/deal", json={"name": "Fleet", "stage": "won", "amount": "12.5"})
    assert won.status_code == 201, won.text
    deal = won.json()["data"]
    (order,) = _all(one_trip, "order")
    assert (order["deal"], order["amount"], order["note"]) == (deal["id"], "12.50", "Deal Fleet")
    (note,) = _all(one_trip, "deal_note")
    assert (note["deal"], note["text"]) == (deal["id"], "won 12.50")
    for entity, record in (("order", order), ("deal_note", note)):
        (entry,) = one_trip.get(f"{URL}/{entity}/{record['id']}/_history").json()["data"]
        assert entry["action"] == "create"
        assert entry["changes"]["deal"] == [None, int(deal["id"])], entry
    second = one_trip.post(f"{URL}/deal", json={"name": "Two", "stage": "won", "amount": "1"})
    assert second.status_code == 201, second.text
    assert [o["deal"] for o in _all(one_trip, "order")] == [deal["id"], second.json()["data"]["id"]]

    refused = one_trip.post(f"{URL}/deal", json={"name": "Free", "stage": "won"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "amount"  # the order's required amount
    taken = one_trip.post(
        f"{URL}/deal", json={"name": "B", "stage": "won", "amount": "2", "ref": "R"}
    )
    assert taken.status_code == 201, taken.text
    again = one_trip.post(
        f"{URL}/deal", json={"name": "C", "stage": "won", "amount": "2", "ref": "R"}
    )
    assert again.status_code == 409, again.text  # the order's unique ref
    assert [d["name"] for d in _all(one_trip, "deal")] == ["Fleet", "Two", "B"]
    assert len(_all(one_trip, "order")) == 3
    assert len(_all(one_trip, "deal_note")) == 3


def _record_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the connections send from now on (statements, and ``SAVEPOINT``)."""
    from engine import database

    sent: list[str] = []
    connection = database._PostgresConnection
    fetchrow, execute, savepoint = connection.fetchrow, connection.execute, connection.savepoint

    async def recorded_fetchrow(self: Any, sql: str, args: Any) -> Any:
        sent.append(sql)
        return await fetchrow(self, sql, args)

    async def recorded_execute(self: Any, sql: str, args: Any) -> Any:
        sent.append(sql)
        return await execute(self, sql, args)

    def recorded_savepoint(self: Any) -> Any:
        sent.append("SAVEPOINT")
        return savepoint(self)

    monkeypatch.setattr(connection, "fetchrow", recorded_fetchrow)
    monkeypatch.setattr(connection, "execute", recorded_execute)
    monkeypatch.setattr(connection, "savepoint", recorded_savepoint)
    return sent


@pytest.mark.only_on("postgresql")  # SQLite writes the audit row as a second statement
def test_on_postgresql_the_triggered_records_are_one_statement(
    client: TestClient, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two round trips (the id, then every INSERT and audit row at once) and no transaction,
    seen by recording what the create sends to the database: the order's note reads the
    id as text, so the id is drawn first."""
    sent = _record_statements(monkeypatch)
    won = client.post(f"{URL}/deal", json={"name": "Fleet", "stage": "won", "amount": "3"})
    assert won.status_code == 201, won.text
    writes = [s for s in sent if "tessera_token" not in s]  # the signed-in user
    assert len(writes) == 2, writes
    assert "nextval" in writes[0]
    assert writes[1].count("INSERT INTO") == 6  # deal, order, deal_note and their audit rows
    assert len(_all(client, "order")) == 1


@pytest.mark.only_on("postgresql")  # SQLite writes the audit row as a second statement
def test_on_postgresql_a_reference_to_the_new_record_is_one_round_trip(
    one_trip: TestClient, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the triggers read the id only as ``{{ id }}`` of a reference, no id is drawn
    first: one statement, one round trip."""
    sent = _record_statements(monkeypatch)
    won = one_trip.post(f"{URL}/deal", json={"name": "Fleet", "stage": "won", "amount": "3"})
    assert won.status_code == 201, won.text
    writes = [s for s in sent if "tessera_token" not in s]  # the signed-in user
    assert len(writes) == 1, writes
    assert "nextval" not in writes[0]
    assert writes[0].count("INSERT INTO") == 6  # deal, order, deal_note and their audit rows
    (order,) = _all(one_trip, "order")
    assert order["deal"] == won.json()["data"]["id"]
