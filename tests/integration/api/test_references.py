"""Reference traversal in expressions (``account.name``): in computed fields, asserts,
action values and templates; loaded once per target entity for a whole bulk request or
import batch, never once per record; on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, write_instance
from tests.support.cli import tessera

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator, Sequence
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: crm\nversion: 1.0.0\n",
    "entities/account.yaml": """\
title: name
fields:
  name:         {type: string, required: true, unique: true}
  active:       {type: boolean, default: true}
  credit_limit: {type: decimal, scale: 2}
""",
    "entities/opportunity.yaml": """\
title: name
fields:
  name:         {type: string, required: true}
  account:      {type: reference, to: account, required: true}
  amount:       {type: decimal, scale: 2}
  stage:        {type: enum, values: [open, won], default: open}
  account_name: {type: string, computed: "account.name"}
""",
    "entities/order.yaml": """\
fields:
  customer: {type: reference, to: account, required: true}
  note:     {type: string}
""",
    "rules/opportunity.yaml": """\
- name: account_is_active
  assert: "account.active"
  field: account
  message: The account is inactive
- name: within_credit_limit
  assert: "amount is none or account.credit_limit is none or amount <= account.credit_limit"
  field: amount
  message: Over the account's credit limit
- name: won_creates_order
  on: update
  when: "changed('stage') and stage == 'won' and old.account.active"
  actions:
    - create:
        entity: order
        values: {customer: "{{ account }}", note: "Won {{ name }} for {{ account.name }}"}
""",
}
URL = "/api/v1/crm"


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    pack = tmp_path / "packs" / "crm"
    for relative, text in FILES.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text)
    instance = write_instance(
        tmp_path / "acme", db_url, ["crm"], [tmp_path / "packs"], reload_interval=0
    )
    instance.migrate()
    return instance


class StatementLog:
    """Every SQL statement the app runs, through a wrapper around its database."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def reading(self, table: str) -> int:
        return sum(1 for s in self.statements if f"FROM {table}" in s and "SELECT" in s)


class _LoggingConnection:
    def __init__(self, conn: Any, log: StatementLog) -> None:
        self._conn = conn
        self._log = log

    async def fetch(self, sql: str, args: Sequence[Any]) -> Any:
        self._log.statements.append(sql)
        return await self._conn.fetch(sql, args)

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> Any:
        self._log.statements.append(sql)
        return await self._conn.fetchrow(sql, args)

    async def execute(self, sql: str, args: Sequence[Any]) -> Any:
        self._log.statements.append(sql)
        return await self._conn.execute(sql, args)

    def savepoint(self) -> Any:
        return self._conn.savepoint()

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn.in_transaction)


class _LoggingDatabase:
    def __init__(self, database: Any, log: StatementLog) -> None:
        self._database = database
        self._log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[_LoggingConnection]:
        async with self._database.connection() as conn:
            yield _LoggingConnection(conn, self._log)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_LoggingConnection]:
        async with self._database.transaction() as conn:
            yield _LoggingConnection(conn, self._log)


@pytest.fixture
def logged(instance: Instance) -> Iterator[tuple[TestClient, StatementLog]]:
    log = StatementLog()
    with instance.client() as client:
        holder = client.app.state.database  # type: ignore[attr-defined]
        real = holder.database
        holder.database = _LoggingDatabase(real, log)
        try:
            yield client, log
        finally:
            holder.database = real


def account(client: TestClient, name: str, **values: Any) -> str:
    response = client.post(f"{URL}/account", json={"name": name, **values})
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def test_computed_fields_and_asserts_read_the_referenced_record(
    logged: tuple[TestClient, StatementLog],
) -> None:
    client, _ = logged
    acme = account(client, "Acme", credit_limit="1000.00")
    dormant = account(client, "Dormant", active=False)
    created = client.post(
        f"{URL}/opportunity", json={"name": "Fleet", "account": acme, "amount": "900"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["account_name"] == "Acme"
    listed = client.get(f"{URL}/opportunity", params={"account_name": "Acme"}).json()["data"]
    assert [o["name"] for o in listed] == ["Fleet"]

    refused = client.post(
        f"{URL}/opportunity", json={"name": "Big", "account": acme, "amount": "1000.01"}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["message"] == "Over the account's credit limit"
    inactive = client.post(f"{URL}/opportunity", json={"name": "Old", "account": dormant})
    assert [(e["field"], e["message"]) for e in inactive.json()["errors"]] == [
        ("account", "The account is inactive")
    ]
    by_name = client.post(
        f"{URL}/opportunity", json={"name": "Lookup", "account": {"name": "Acme"}}
    )
    assert by_name.status_code == 201, by_name.text
    assert by_name.json()["data"]["account_name"] == "Acme"


def test_an_update_recomputes_over_the_new_reference(
    logged: tuple[TestClient, StatementLog],
) -> None:
    client, _ = logged
    acme, globex = account(client, "Acme"), account(client, "Globex")
    deal = client.post(f"{URL}/opportunity", json={"name": "Fleet", "account": acme}).json()
    moved = client.patch(f"{URL}/opportunity/{deal['data']['id']}", json={"account": globex})
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["account_name"] == "Globex"


def test_action_values_traverse_references(logged: tuple[TestClient, StatementLog]) -> None:
    client, _ = logged
    acme = account(client, "Acme")
    deal = client.post(f"{URL}/opportunity", json={"name": "Fleet", "account": acme}).json()
    won = client.patch(f"{URL}/opportunity/{deal['data']['id']}", json={"stage": "won"})
    assert won.status_code == 200, won.text
    (order,) = client.get(f"{URL}/order").json()["data"]
    assert (order["customer"], order["note"]) == (acme, "Won Fleet for Acme")


def test_a_bulk_request_loads_each_referenced_entity_once(
    logged: tuple[TestClient, StatementLog],
) -> None:
    client, log = logged
    accounts = [account(client, f"Account {n}", credit_limit="500") for n in range(5)]
    items = [{"name": f"Deal {n}", "account": accounts[n % 5], "amount": str(n)} for n in range(60)]
    log.statements.clear()
    created = client.post(f"{URL}/opportunity/_bulk", json=items)
    assert created.status_code == 201, created.text
    names = [r["account_name"] for r in created.json()["data"]]
    assert names == [f"Account {n % 5}" for n in range(60)]
    assert log.reading("crm_account") == 1  # one batch for 60 records and 5 accounts


def test_an_import_batch_loads_each_referenced_entity_once(
    logged: tuple[TestClient, StatementLog], instance: Instance
) -> None:
    client, _ = logged
    accounts = [account(client, f"Account {n}") for n in range(3)]
    path = instance.path / "deals.jsonl"
    path.write_text(
        "".join(f'{{"name": "Deal {n}", "account": {accounts[n % 3]}}}\n' for n in range(30))
    )
    result = tessera("import", "crm.opportunity", str(path), cwd=instance.path)
    assert result.returncode == 0, result.stderr
    deals = client.get(f"{URL}/opportunity", params={"limit": "100"}).json()["data"]
    assert sorted({d["account_name"] for d in deals}) == ["Account 0", "Account 1", "Account 2"]
