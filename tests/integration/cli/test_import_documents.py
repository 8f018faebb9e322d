"""Imports and demo data may bring documents in submitted (``docstatus: submitted``): each
is written as a draft, then submitted, so its rules and postings run as a ``_submit``'s
do; a refused submit is reported at its row and leaves nothing; a keyed document that is
no longer a draft is left as it is when loaded again (``tessera demo`` twice)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from engine import EngineModel, open_database
from runtime.app import load_definitions
from runtime.dataio import ImportReport, SourceRow, import_rows
from tests.conftest import pack_instance
from tests.support.ledger_packs import API, FILES

if TYPE_CHECKING:
    from pathlib import Path

PACK = {
    **FILES,
    "entities/stock_entry.yaml": FILES["entities/stock_entry.yaml"]
    + "  reference: {type: string, unique: true}\n",
}


def test_documents_imported_submitted_post_once(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "stock", PACK)
    with instance.client() as api:
        item = api.post(f"{API}/item", json={"sku": "BOLT"}).json()["data"]["id"]
        main = api.post(f"{API}/warehouse", json={"name": "main"}).json()["data"]["id"]
    settings = instance.settings
    project = load_definitions(settings)
    store = EngineModel.for_url(project, settings.database_url).store_for("stock.stock_entry")

    def entry(reference: str, purpose: str, quantity: str, status: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "reference": reference,
            "purpose": purpose,
            "posting_date": "2026-12-01",
            "lines": [{"item": item, "warehouse": main, "quantity": quantity}],
        }
        if status is not None:
            body["docstatus"] = status
        return body

    rows = [
        entry("R1", "receipt", "10", "submitted"),
        entry("I1", "issue", "4", "submitted"),
        entry("I2", "issue", "7", "submitted"),  # 6 left: refused, reported, nothing kept
        entry("D1", "receipt", "1", "draft"),
        entry("X1", "receipt", "1", "cancelled"),
    ]

    def load(key: str | None) -> ImportReport:
        async def run() -> ImportReport:
            database = await open_database(settings.database_url, pool_size=1)
            try:
                source = (SourceRow(i + 1, r) for i, r in enumerate(rows))
                return await import_rows(database, store, source, key=key, source="demo.yaml")
            finally:
                await database.close()

        return asyncio.run(run())

    first = load("reference")
    assert (first.created, first.updated) == (3, 0)
    assert len(first.errors) == 2, first.errors
    assert first.errors[0].startswith("demo.yaml:3: ")
    assert "not enough stock" in first.errors[0]
    assert first.errors[1].startswith("demo.yaml:5: ")
    assert "not 'cancelled'" in first.errors[1]
    again = load("reference")  # the submitted ones are left alone, the draft is updated
    assert (again.created, again.updated, len(again.errors)) == (0, 1, 2)
    with instance.client() as api:
        entries = api.get(f"{API}/stock_entry?sort=id").json()["data"]
        assert [(e["reference"], e["docstatus"]) for e in entries] == [
            ("R1", "submitted"),
            ("I1", "submitted"),
            ("D1", "draft"),
        ]
        bins = api.get(f"{API}/bin").json()["data"]
        assert [b["actual_qty"] for b in bins] == ["6.000"]
        ledger = api.get(f"{API}/stock_ledger_entry").json()["data"]
        assert len(ledger) == 2
