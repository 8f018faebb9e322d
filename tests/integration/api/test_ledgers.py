"""Ledgers and balances (``ledger:``, ``balance:``) over the API, on SQLite and PostgreSQL:
their system fields, and that no client writes them (405 with ``Allow``), only postings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.cli import tessera
from tests.support.ledger_packs import API, FILES

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "stock", FILES)


@pytest.fixture
def api(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def test_a_ledger_has_voucher_fields_and_refuses_every_write(api: TestClient) -> None:
    meta = api.get("/api/v1/_meta/entities")
    assert meta.status_code == 200, meta.text
    described = {e["name"]: e for e in meta.json()["data"]}
    ledger = described["stock.stock_ledger_entry"]
    assert ledger["ledger"] is True
    assert described["stock.bin"]["balance"] == ["item", "warehouse"]
    fields = {f["name"]: f for f in ledger["fields"]}
    for name in ("voucher_type", "voucher_id", "is_reversal"):
        assert fields[name]["read_only"] is True
    body = {"item": "1", "warehouse": "1", "qty_change": "5"}
    url = f"{API}/stock_ledger_entry"
    for method, path in (
        ("POST", url),
        ("PATCH", f"{url}/1"),
        ("DELETE", f"{url}/1"),
        ("PUT", f"{url}/by/id/1"),
        ("POST", f"{url}/_bulk"),
    ):
        refused = api.request(method, path, json=body)
        assert refused.status_code == 405, (method, path, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert "POST" not in refused.headers["allow"]
    assert api.get(url).status_code == 200
    assert api.get(f"{url}/_aggregate", params={"measures": "qty_change__sum"}).status_code == 200
    assert api.get(f"{url}/_export", params={"format": "csv"}).status_code == 200


def test_a_balance_is_read_only_to_clients(api: TestClient) -> None:
    url = f"{API}/bin"
    refused = api.post(url, json={"item": "1", "warehouse": "1"})
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, HEAD"
    assert api.patch(f"{url}/1", json={"actual_qty": "100"}).status_code == 405
    assert api.delete(f"{url}/1").status_code == 405
    assert api.get(url).json()["data"] == []


def test_an_import_cannot_write_a_ledger_or_a_balance(instance: Instance, api: TestClient) -> None:
    rows = instance.path / "bins.jsonl"
    rows.write_text('{"item": "1", "warehouse": "1", "actual_qty": "-5"}\n', encoding="utf-8")
    for entity in ("stock.bin", "stock.stock_ledger_entry"):
        done = tessera("import", entity, str(rows), cwd=instance.path)
        assert done.returncode != 0
        assert "written only by the postings of documents" in done.stdout + done.stderr
    assert api.get(f"{API}/bin").json()["data"] == []


def test_the_openapi_document_offers_no_write_of_a_ledger_or_a_balance(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for entity in ("stock_ledger_entry", "bin"):
        base = f"{API}/{entity}"
        assert set(paths[base]) - {"parameters"} == {"get"}
        assert set(paths[f"{base}/{{id}}"]) - {"parameters"} == {"get"}
        assert f"{base}/_bulk" not in paths
    assert "post" in paths[f"{API}/stock_entry"]
