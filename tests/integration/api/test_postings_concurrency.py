"""Postings under concurrency, through a real server (parallel HTTP requests): a balance
with ``min: 0`` never goes below zero and loses no update, and documents that move the same
balance rows in opposite line order never deadlock (rows are locked in one fixed order,
engine/postings/voucher.py). PostgreSQL runs the full sizes; SQLite, whose writes are
serialized, a smaller run of the same checks."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import pack_instance
from tests.support.identity import bearer
from tests.support.ledger_packs import API, FILES
from tests.support.server import serving

if TYPE_CHECKING:
    from pathlib import Path


async def _submit_all(base: str, token: str, paths: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    async with httpx.AsyncClient(
        base_url=base, headers=bearer(token), limits=limits, timeout=120
    ) as client:
        return list(await asyncio.gather(*(client.post(path) for path in paths)))


def _made(api: httpx.Client, base: str, entity: str, body: dict[str, Any]) -> str:
    response = api.post(f"{base}{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _entry(purpose: str, lines: list[tuple[str, str, str]]) -> dict[str, Any]:
    return {
        "purpose": purpose,
        "posting_date": "2026-12-01",
        "lines": [{"item": i, "warehouse": w, "quantity": q} for i, w, q in lines],
    }


def _bin(api: httpx.Client, base: str, item: str, warehouse: str) -> Decimal:
    rows = api.get(f"{base}{API}/bin", params={"item": item, "warehouse": warehouse}).json()
    return Decimal(rows["data"][0]["actual_qty"])


def _ledger_sum(api: httpx.Client, base: str, item: str) -> Decimal:
    params = {"item": item, "measures": "qty_change__sum"}
    groups = api.get(f"{base}{API}/stock_ledger_entry/_aggregate", params=params).json()
    return Decimal(groups["data"][0]["qty_change__sum"])


@pytest.mark.slow  # a real server and dozens of parallel submits
def test_parallel_issues_never_take_a_balance_below_zero(
    backend: str, db_url: str, tmp_path: Path
) -> None:
    stock, racers = (20, 50) if backend == "postgresql" else (4, 10)
    instance = pack_instance(tmp_path, db_url, "stock", FILES, pool_size=20)
    token = instance.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(instance.path) as base:
        item = _made(api, base, "item", {"sku": "A"})
        warehouse = _made(api, base, "warehouse", {"name": "Main"})
        receipt = _made(
            api, base, "stock_entry", _entry("receipt", [(item, warehouse, str(stock))])
        )
        assert api.post(f"{base}{API}/stock_entry/{receipt}/_submit").status_code == 200
        issues = [
            _made(api, base, "stock_entry", _entry("issue", [(item, warehouse, "1")]))
            for _ in range(racers)
        ]
        paths = [f"{API}/stock_entry/{i}/_submit" for i in issues]
        responses = asyncio.run(_submit_all(base, token, paths))
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 409}, [r.text for r in responses if r.status_code >= 500]
        assert statuses.count(200) == stock, statuses
        refused = [r.json() for r in responses if r.status_code == 409]
        assert {p["code"] for p in refused} == {"insufficient_stock"}
        assert {p["errors"][0]["field"] for p in refused} == {"lines[0].quantity"}
        assert _bin(api, base, item, warehouse) == 0
        assert _ledger_sum(api, base, item) == 0
        drafts = api.get(f"{base}{API}/stock_entry", params={"docstatus": "draft"}).json()
        assert len(drafts["data"]) == racers - stock


@pytest.mark.slow  # a real server, 100 parallel submits and cancels
def test_opposite_line_orders_in_parallel_never_deadlock(
    backend: str, db_url: str, tmp_path: Path
) -> None:
    racers = 100 if backend == "postgresql" else 20
    instance = pack_instance(tmp_path, db_url, "stock", FILES, pool_size=20)
    token = instance.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(instance.path) as base:
        a = _made(api, base, "item", {"sku": "A"})
        b = _made(api, base, "item", {"sku": "B"})
        w = _made(api, base, "warehouse", {"name": "Main"})
        receipt = _made(
            api, base, "stock_entry", _entry("receipt", [(a, w, "1000"), (b, w, "1000")])
        )
        assert api.post(f"{base}{API}/stock_entry/{receipt}/_submit").status_code == 200
        issues = [
            _made(
                api,
                base,
                "stock_entry",
                _entry(
                    "issue", [(a, w, "1"), (b, w, "2")] if n % 2 else [(b, w, "2"), (a, w, "1")]
                ),
            )
            for n in range(racers)
        ]
        paths = [f"{API}/stock_entry/{i}/_submit" for i in issues]
        responses = asyncio.run(_submit_all(base, token, paths))
        failures = [r.text for r in responses if r.status_code != 200]
        assert not failures, failures[:3]
        assert _bin(api, base, a, w) == 1000 - racers
        assert _bin(api, base, b, w) == 1000 - 2 * racers
        assert _ledger_sum(api, base, a) == 1000 - racers
        assert _ledger_sum(api, base, b) == 1000 - 2 * racers
        # and cancelling them all in parallel takes every move back
        paths = [f"{API}/stock_entry/{i}/_cancel" for i in issues]
        responses = asyncio.run(_submit_all(base, token, paths))
        failures = [r.text for r in responses if r.status_code != 200]
        assert not failures, failures[:3]
        assert _bin(api, base, a, w) == 1000
        assert _bin(api, base, b, w) == 1000
