"""An instance of the finance pack (with contacts, inventory and orders) from the repository's
modules/, migrated with its fixtures (the chart of accounts) on the suite's database, and a
helper that drives it through the HTTP API as an accountant would."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, Instance, write_instance
from tests.support.fixture_records import migrate_with_fixtures
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FINANCE = "/api/v1/finance"
CONTACTS = "/api/v1/contacts"
INVENTORY = "/api/v1/inventory"
ORDERS = "/api/v1/orders"


@pytest.fixture
def finance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "i", db_url, ["finance"], [REPO / "modules"])
    migrate_with_fixtures(instance)
    return instance


class Books:
    """The finance API of an instance."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self._accounts: dict[str, str] = {}

    def made(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def get(self, path: str) -> Any:
        response = self.client.get(path)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def move(self, entity: str, record_id: str, action: str = "submit") -> Any:
        response = self.client.post(f"{FINANCE}/{entity}/{record_id}/_{action}")
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def refused(self, entity: str, record_id: str, action: str = "submit") -> Any:
        """The problem a refused move answers (its status in ``status``)."""
        response = self.client.post(f"{FINANCE}/{entity}/{record_id}/_{action}")
        assert response.status_code >= 400, response.text
        problem: dict[str, Any] = response.json()
        return problem

    def invoice_of(self, record_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"{FINANCE}/sales_invoice/{record_id}")
        return data

    def customer_of(self, record_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.get(f"{CONTACTS}/account/{record_id}")
        return data

    def account(self, code: str) -> str:
        """The id of the ledger account with ``code``."""
        if code not in self._accounts:
            rows = self.get(f"{FINANCE}/account?code={code}")
            assert len(rows) == 1, code
            self._accounts[code] = rows[0]["id"]
        return self._accounts[code]

    def customer(self, name: str, **fields: Any) -> str:
        body = {"name": name, "type": "customer", **fields}
        return str(self.made(f"{CONTACTS}/account", body)["id"])

    def item(self, sku: str, rate: str = "10.00") -> str:
        body = {"sku": sku, "name": sku.title(), "standard_rate": rate}
        return str(self.made(f"{INVENTORY}/item", body)["id"])

    def invoice(
        self, customer: str, lines: list[tuple[str, str, str]], **fields: Any
    ) -> dict[str, Any]:
        body = {
            "account": customer,
            "posting_date": "2026-03-02",
            "lines": [{"item": i, "quantity": q, "rate": r} for i, q, r in lines],
            **fields,
        }
        return self.made(f"{FINANCE}/sales_invoice", body)

    def payment(
        self, customer: str, amount: str, allocations: dict[str, str], **fields: Any
    ) -> dict[str, Any]:
        body = {
            "account": customer,
            "posting_date": "2026-03-10",
            "amount": amount,
            "allocations": [{"invoice": i, "amount": a} for i, a in allocations.items()],
            **fields,
        }
        return self.made(f"{FINANCE}/payment", body)

    def gl(self, **filters: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        return list(self.get(f"{FINANCE}/gl_entry?limit=1000&sort=id&{query}"))

    def aggregate(self, query: str) -> list[dict[str, Any]]:
        return list(self.get(f"{FINANCE}/gl_entry/_aggregate?{query}"))

    def trial_balance(self, until: str = "2999-12-31") -> dict[str, tuple[Decimal, Decimal]]:
        """Debit and credit per account code, from the ledger; asserts that it balances."""
        rows = self.aggregate(
            f"group_by=account&measures=debit__sum,credit__sum&posting_date__lte={until}"
        )
        codes = {a["id"]: a["code"] for a in self.get(f"{FINANCE}/account?limit=500")}
        debit = sum((Decimal(r["debit__sum"]) for r in rows), Decimal(0))
        credit = sum((Decimal(r["credit__sum"]) for r in rows), Decimal(0))
        assert debit == credit, (debit, credit)
        return {
            codes[r["account"]]: (Decimal(r["debit__sum"]), Decimal(r["credit__sum"])) for r in rows
        }

    def balance_of(self, code: str) -> Decimal:
        """Debit minus credit of the account."""
        return sum((Decimal(r["balance"]) for r in self.gl(account=self.account(code))), Decimal(0))


@pytest.fixture
def books(finance: Instance) -> Iterator[Books]:
    with finance.client() as client:
        yield Books(client)
    assert_no_drift(finance.settings)
