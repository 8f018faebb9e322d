"""The inventory pack under parallel submits, through a real server: stock never goes
below zero and no update is lost (50 issues of 1 against 20 on PostgreSQL), and transfers
between two warehouses in both directions, submitted then cancelled in parallel, never
deadlock and leave every bin equal to its ledger rows, in quantity and in value. SQLite,
whose writes are serialized, runs smaller sizes of the same checks."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import REPO, write_instance
from tests.modules.inventory.conftest import API
from tests.support.identity import bearer
from tests.support.rollups import assert_no_drift
from tests.support.server import serving

if TYPE_CHECKING:
    from pathlib import Path


async def _post_all(base: str, token: str, paths: list[str]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(paths), max_keepalive_connections=len(paths))
    async with httpx.AsyncClient(
        base_url=base, headers=bearer(token), limits=limits, timeout=120
    ) as client:
        return list(await asyncio.gather(*(client.post(path) for path in paths)))


def _made(api: httpx.Client, entity: str, body: dict[str, Any]) -> str:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _entry(purpose: str, item: str, quantity: str, **more: Any) -> dict[str, Any]:
    line = {"item": item, "quantity": quantity, **({"rate": "3"} if purpose == "receipt" else {})}
    return {"purpose": purpose, "posting_date": "2026-12-01", "lines": [line], **more}


def _check_books(api: httpx.Client) -> None:
    ledger = api.get(f"{API}/stock_ledger_entry", params={"limit": 1000}).json()["data"]
    sums: dict[tuple[str, str], list[Decimal]] = {}
    for row in ledger:
        total = sums.setdefault((row["item"], row["warehouse"]), [Decimal(0), Decimal(0)])
        total[0] += Decimal(row["qty_change"])
        total[1] += Decimal(row["stock_value_difference"])
    for row in api.get(f"{API}/bin").json()["data"]:
        qty, value = sums[(row["item"], row["warehouse"])]
        assert (Decimal(row["actual_qty"]), Decimal(row["stock_value"])) == (qty, value), row
        assert Decimal(row["actual_qty"]) >= 0


@pytest.mark.slow  # a real server and dozens of parallel submits
def test_stock_never_goes_negative_under_parallel_issues(
    backend: str, db_url: str, tmp_path: Path
) -> None:
    stock, racers = (20, 50) if backend == "postgresql" else (4, 10)
    instance = write_instance(
        tmp_path / "i", db_url, ["inventory"], [REPO / "modules"], pool_size=20
    )
    instance.migrate()
    token = instance.token()
    with (
        serving(instance.path) as base,
        httpx.Client(base_url=base, headers=bearer(token), timeout=60) as api,
    ):
        item = _made(api, "item", {"sku": "A", "name": "A"})
        main = _made(api, "warehouse", {"name": "Main"})
        receipt = _made(
            api, "stock_entry", _entry("receipt", item, str(stock), target_warehouse=main)
        )
        assert api.post(f"{API}/stock_entry/{receipt}/_submit").status_code == 200
        issues = [
            _made(api, "stock_entry", _entry("issue", item, "1", source_warehouse=main))
            for _ in range(racers)
        ]
        responses = asyncio.run(
            _post_all(base, token, [f"{API}/stock_entry/{i}/_submit" for i in issues])
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 409}, [r.text for r in responses if r.status_code >= 500]
        assert statuses.count(200) == stock, statuses
        refused = [r.json() for r in responses if r.status_code == 409]
        assert {p["code"] for p in refused} == {"insufficient_stock"}
        assert {p["errors"][0]["field"] for p in refused} == {"lines[0].quantity"}
        row = api.get(f"{API}/bin", params={"item": item}).json()["data"][0]
        assert (row["actual_qty"], row["stock_value"]) == ("0.000", "0.00")
        _check_books(api)
    assert_no_drift(instance.settings)


@pytest.mark.slow  # a real server, parallel transfers both ways, then their cancels
def test_transfers_both_ways_in_parallel_never_deadlock(
    backend: str, db_url: str, tmp_path: Path
) -> None:
    racers = 40 if backend == "postgresql" else 10
    instance = write_instance(
        tmp_path / "i", db_url, ["inventory"], [REPO / "modules"], pool_size=20
    )
    instance.migrate()
    token = instance.token()
    with (
        serving(instance.path) as base,
        httpx.Client(base_url=base, headers=bearer(token), timeout=60) as api,
    ):
        item = _made(api, "item", {"sku": "A", "name": "A"})
        a, b = _made(api, "warehouse", {"name": "A"}), _made(api, "warehouse", {"name": "B"})
        for warehouse in (a, b):
            receipt = _made(
                api, "stock_entry", _entry("receipt", item, "1000", target_warehouse=warehouse)
            )
            assert api.post(f"{API}/stock_entry/{receipt}/_submit").status_code == 200
        transfers = [
            _made(
                api,
                "stock_entry",
                _entry(
                    "transfer",
                    item,
                    str(n % 3 + 1),
                    source_warehouse=a if n % 2 else b,
                    target_warehouse=b if n % 2 else a,
                ),
            )
            for n in range(racers)
        ]
        for action in ("submit", "cancel"):
            paths = [f"{API}/stock_entry/{t}/_{action}" for t in transfers]
            responses = asyncio.run(_post_all(base, token, paths))
            failures = [r.text for r in responses if r.status_code != 200]
            assert not failures, failures[:3]
            _check_books(api)
        rows = api.get(f"{API}/bin", params={"item": item}).json()["data"]
        assert [(r["actual_qty"], r["stock_value"]) for r in rows] == [("1000.000", "3000.00")] * 2
    assert_no_drift(instance.settings)
