"""An instance of the sales pack (with contacts and inventory) from modules/, migrated on
the suite's database, and helpers to drive it through the HTTP API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

SALES = "/api/v1/sales"
INVENTORY = "/api/v1/inventory"
CONTACTS = "/api/v1/contacts"


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "i", db_url, ["sales"], [REPO / "modules"])
    instance.migrate()
    return instance


class Api:
    """The HTTP API of an instance, for one signed-in user."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def made(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def changed(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.patch(path, json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def item(self, sku: str, rate: str = "10.00", **more: Any) -> dict[str, Any]:
        return self.made(
            f"{INVENTORY}/item", {"sku": sku, "name": sku.title(), "standard_rate": rate, **more}
        )

    def warehouse(self, name: str) -> dict[str, Any]:
        return self.made(f"{INVENTORY}/warehouse", {"name": name})

    def stock_in(self, item: str, warehouse: str, quantity: str) -> None:
        entry = self.made(
            f"{INVENTORY}/stock_entry",
            {
                "purpose": "receipt",
                "posting_date": "2026-01-05",
                "lines": [
                    {"item": item, "target_warehouse": warehouse, "quantity": quantity, "rate": "5"}
                ],
            },
        )
        response = self.client.post(f"{INVENTORY}/stock_entry/{entry['id']}/_submit")
        assert response.status_code == 200, response.text

    def account(self, name: str) -> dict[str, Any]:
        return self.made(f"{CONTACTS}/account", {"name": name})


@pytest.fixture
def api(sales: Instance) -> Iterator[Api]:
    with sales.client() as client:
        yield Api(client)
