"""Ledgers and balances in the web UI: read-only for everyone (no New, no Delete, no
editable form), and a posted form is refused; their rows come from postings only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.identity import issue_token
from tests.support.ledger_packs import API, FILES
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "correct horse battery staple"


@pytest.fixture
def stock(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(tmp_path, db_url, "stock", FILES)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with instance.client() as api:
        item = api.post(f"{API}/item", json={"sku": "A"}).json()["data"]["id"]
        warehouse = api.post(f"{API}/warehouse", json={"name": "Main"}).json()["data"]["id"]
        line = {"item": item, "warehouse": warehouse, "quantity": "3"}
        body = {"purpose": "receipt", "posting_date": "2026-12-01", "lines": [line]}
        entry = api.post(f"{API}/stock_entry", json=body).json()["data"]["id"]
        assert api.post(f"{API}/stock_entry/{entry}/_submit").status_code == 200
    return instance


def test_ledgers_and_balances_are_read_only_screens(stock: Instance) -> None:
    with signed_in(stock, "ada", PASSWORD) as ada:
        for entity in ("stock_ledger_entry", "bin"):
            listed = ada.get(f"/app/stock/{entity}")
            assert listed.status_code == 200, listed.text
            assert f'href="/app/stock/{entity}/new"' not in listed.text
            assert ada.get(f"/app/stock/{entity}/new").status_code in {403, 405}
            form = ada.get(f"/app/stock/{entity}/1")
            assert form.status_code == 200
            assert '<button type="submit" class="button">Save</button>' not in form.text
            token = csrf_of(listed)
            posted = ada.post(f"/app/stock/{entity}/new", data={"csrf_token": token, "item": "1"})
            assert posted.status_code >= 400
            assert "only the postings of documents write it" in posted.text
        assert 'href="/app/stock/stock_entry/new"' in ada.get("/app/stock/stock_entry").text
        draft = ada.get("/app/stock/warehouse/1")  # a plain entity: saved as usual
        assert '<button type="submit" class="button">Save</button>' in draft.text
