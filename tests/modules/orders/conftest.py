"""An instance of the orders pack (with contacts and inventory) from /work/main/modules,
migrated on the suite's database, and helpers to drive it through the HTTP API."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, Instance, write_instance
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

ORDERS = "/api/v1/orders"
INVENTORY = "/api/v1/inventory"
CONTACTS = "/api/v1/contacts"


@pytest.fixture
def orders(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "i", db_url, ["orders"], [REPO / "modules"])
    instance.migrate()
    return instance


class Shop:
    """The API of an orders instance, as a clerk would use it."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

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
        response = self.client.post(f"{ORDERS}/{entity}/{record_id}/_{action}")
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def refused(self, entity: str, record_id: str, action: str = "submit") -> Any:
        response = self.client.post(f"{ORDERS}/{entity}/{record_id}/_{action}")
        assert response.status_code >= 400, response.text
        return response

    def bin(self, item: str, warehouse: str) -> dict[str, Decimal]:
        rows = self.get(f"{INVENTORY}/bin?item={item}&warehouse={warehouse}")
        if not rows:
            return {"actual_qty": Decimal(0), "reserved_qty": Decimal(0), "ordered_qty": Decimal(0)}
        return {k: Decimal(rows[0][k]) for k in ("actual_qty", "reserved_qty", "ordered_qty")}

    def stock_in(self, item: str, warehouse: str, quantity: str) -> None:
        entry = self.made(
            f"{INVENTORY}/stock_entry",
            {
                "purpose": "receipt",
                "posting_date": "2026-01-05",
                "lines": [
                    {
                        "item": item,
                        "target_warehouse": warehouse,
                        "quantity": quantity,
                        "rate": "10.00",
                    }
                ],
            },
        )
        response = self.client.post(f"{INVENTORY}/stock_entry/{entry['id']}/_submit")
        assert response.status_code == 200, response.text

    def ledger_sum(self, item: str, warehouse: str) -> Decimal:
        rows = self.get(
            f"{INVENTORY}/stock_ledger_entry?item={item}&warehouse={warehouse}&limit=500"
        )
        return sum((Decimal(r["qty_change"]) for r in rows), Decimal(0))


@pytest.fixture
def shop(orders: Instance) -> Iterator[Shop]:
    with orders.client() as client:
        yield Shop(client)
    assert_no_drift(orders.settings)
