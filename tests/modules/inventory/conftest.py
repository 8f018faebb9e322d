"""An instance of the inventory pack (with contacts) from the repository's modules/, on the
suite's database, and a helper that drives it through the HTTP API as a warehouse clerk
would; every test ends with the books of stock checked (each bin equals its ledger rows,
in quantity and value) and no rollup drift."""

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

API = "/api/v1/inventory"
CONTACTS = "/api/v1/contacts"


@pytest.fixture
def inventory(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(tmp_path / "i", db_url, ["inventory"], [REPO / "modules"])
    instance.migrate()
    return instance


class Stock:
    """The inventory API of an instance, with the checks every test ends with."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def made(self, entity: str, body: dict[str, Any], base: str = API) -> str:
        response = self.client.post(f"{base}/{entity}", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["data"]["id"])

    def item(self, sku: str, **more: Any) -> str:
        return self.made("item", {"sku": sku, "name": sku.title(), **more})

    def warehouse(self, name: str, parent: str | None = None, *, group: bool = False) -> str:
        return self.made("warehouse", {"name": name, "parent": parent, "is_group": group})

    def entry(self, purpose: str, *lines: dict[str, Any], **more: Any) -> str:
        body = {"purpose": purpose, "posting_date": "2026-12-01", "lines": list(lines), **more}
        return self.made("stock_entry", body)

    def act(self, record_id: str, action: str = "submit") -> Any:
        return self.client.post(f"{API}/stock_entry/{record_id}/_{action}")

    def submitted(self, purpose: str, *lines: dict[str, Any], **more: Any) -> str:
        record_id = self.entry(purpose, *lines, **more)
        response = self.act(record_id)
        assert response.status_code == 200, response.text
        return record_id

    def bin(self, item: str, warehouse: str) -> dict[str, Any]:
        rows = self.client.get(f"{API}/bin", params={"item": item, "warehouse": warehouse})
        data = rows.json()["data"]
        assert len(data) == 1, data
        return dict(data[0])

    def qty_value_rate(self, item: str, warehouse: str) -> tuple[Decimal, Decimal, Decimal]:
        row = self.bin(item, warehouse)
        return (
            Decimal(row["actual_qty"]),
            Decimal(row["stock_value"]),
            Decimal(row["valuation_rate"]),
        )

    def get(self, entity: str, record_id: str, base: str = API) -> dict[str, Any]:
        response = self.client.get(f"{base}/{entity}/{record_id}")
        assert response.status_code == 200, response.text
        return dict(response.json()["data"])

    def rows(self, entity: str, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get(f"{API}/{entity}", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return list(response.json()["data"])

    def check_books(self) -> None:
        """Every bin holds exactly what its ledger rows add up to (quantity and value), and
        its computed fields agree with it."""
        sums: dict[tuple[str, str], list[Decimal]] = {}
        for row in self.rows("stock_ledger_entry"):
            key = (row["item"], row["warehouse"])
            total = sums.setdefault(key, [Decimal(0), Decimal(0)])
            total[0] += Decimal(row["qty_change"])
            total[1] += Decimal(row["stock_value_difference"])
        for row in self.rows("bin"):
            qty, value = sums.pop((row["item"], row["warehouse"]), [Decimal(0), Decimal(0)])
            assert Decimal(row["actual_qty"]) == qty, row
            assert Decimal(row["stock_value"]) == value, row
            assert Decimal(row["actual_qty"]) >= 0, row
            projected = (
                Decimal(row["actual_qty"])
                - Decimal(row["reserved_qty"])
                + Decimal(row["ordered_qty"])
            )
            assert Decimal(row["projected_qty"]) == projected, row
        assert not sums, f"ledger rows without a bin: {sums}"


@pytest.fixture
def stock(inventory: Instance) -> Iterator[Stock]:
    with inventory.client() as client:
        helper = Stock(client)
        yield helper
        helper.check_books()
    assert_no_drift(inventory.settings)
