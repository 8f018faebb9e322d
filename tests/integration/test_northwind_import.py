"""Real-world data: the Northwind sample database imported through ``tessera import``.

The SQL dump is read from ``../shared/data/northwind`` (never copied into this repository),
converted to JSON lines, and imported entity by entity with the CLI, references by their
original keys, order lines nested in their orders. Accents and phone numbers must come
back exactly as they are in the dump; a second import must update, not duplicate.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from tests.conftest import write_instance
from tests.support import northwind_sql
from tests.support.cli import tessera

if TYPE_CHECKING:
    from pathlib import Path

SQL = northwind_sql.default_sql_path()
pytestmark = pytest.mark.skipif(
    not SQL.is_file() and os.environ.get("CI", "").lower() not in {"1", "true"},
    reason=f"Northwind dump not found at {SQL}",
)


def _import_all(instance_dir: Path, files: dict[str, Path]) -> list[str]:
    summaries = []
    for entity, path in files.items():
        key = northwind_sql.IMPORT_KEYS[entity]
        result = tessera("import", f"northwind.{entity}", str(path), "--key", key, cwd=instance_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        summaries.append(result.stdout.strip().splitlines()[-1])
    return summaries


def test_northwind_imports_completely_and_exactly(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "nw", db_url, ["northwind"])
    instance.migrate()
    files = northwind_sql.write_jsonl(tmp_path / "jsonl", sql_path=SQL)
    expected = northwind_sql.expected_counts(SQL)

    first = _import_all(instance.path, files)
    assert first == [f"northwind.{e}: {expected[e]} created, 0 updated, 0 rejected" for e in files]
    again = _import_all(instance.path, files)
    assert again == [f"northwind.{e}: 0 created, {expected[e]} updated, 0 rejected" for e in files]

    with instance.client() as client:

        def count(entity: str, **params: str) -> int:
            body = client.get(
                f"/api/v1/northwind/{entity}", params={"count": "true", "limit": 1, **params}
            ).json()
            return int(body["meta"]["count"])

        for entity, total in expected.items():
            assert count(entity) == total, entity

        bolido = client.get("/api/v1/northwind/customer", params={"code": "BOLID"}).json()["data"][
            0
        ]
        assert bolido["company_name"] == "Bólido Comidas preparadas"
        assert bolido["contact_name"] == "Martín Sommer"
        assert bolido["phone"] == "(91) 555 22 82"
        assert count("customer", company_name__icontains="KÖNIGLICH") == 1

        order = client.get(
            "/api/v1/northwind/order", params={"northwind_id": "10323", "expand": "customer"}
        ).json()
        (record,) = order["data"]
        assert record["customer"]["code"] == "KOENE"
        assert record["freight"] == "4.88"
        lines = record["lines"]
        # order_details rows 10323/15, /25, /39 of the dump, in their order
        assert [(line["quantity"], line["unit_price"]) for line in lines] == [
            (5, "12.40"),
            (4, "11.20"),
            (4, "14.40"),
        ]

        total_lines = 0
        page: dict[str, str] = {"limit": "1000", "fields": "lines"}
        while True:
            body = client.get("/api/v1/northwind/order", params=page).json()
            total_lines += sum(len(r["lines"]) for r in body["data"])
            if body["meta"]["next_cursor"] is None:
                break
            page = {"limit": "1000", "fields": "lines", "cursor": body["meta"]["next_cursor"]}
        assert total_lines == northwind_sql.expected_child_counts(SQL)["order_line"]

        products = client.get(
            "/api/v1/northwind/product",
            params={"category__name": "Beverages", "sort": "-unit_price", "limit": 3},
        ).json()["data"]
        prices = [Decimal(p["unit_price"]) for p in products]
        assert prices == sorted(prices, reverse=True)
        assert products[0]["name"] == "Côte de Blaye"
