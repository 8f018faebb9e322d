"""Deliveries of one order submitted in parallel through a real server: an order line is
never delivered beyond its quantity and no update is lost (30 deliveries of 1 against an
order of 12 and stock of 20 on PostgreSQL: exactly 12 go through), the others are refused
with over_delivery, not an error; the bin, its reservation and the order line end equal to
what went through. SQLite, whose writes are serialized, runs a smaller size."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import REPO, write_instance
from tests.modules.orders.conftest import CONTACTS, INVENTORY, ORDERS
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


def _made(api: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


@pytest.mark.slow  # a real server and dozens of parallel submits
def test_an_order_line_is_never_delivered_twice(backend: str, db_url: str, tmp_path: Path) -> None:
    ordered, racers = (12, 30) if backend == "postgresql" else (3, 8)
    instance = write_instance(tmp_path / "i", db_url, ["orders"], [REPO / "modules"], pool_size=20)
    instance.migrate()
    token = instance.token()
    with (
        serving(instance.path) as base,
        httpx.Client(base_url=base, headers=bearer(token), timeout=60) as api,
    ):
        acme = _made(api, f"{CONTACTS}/account", {"name": "Acme"})["id"]
        item = _made(api, f"{INVENTORY}/item", {"sku": "A", "name": "A"})["id"]
        main = _made(api, f"{INVENTORY}/warehouse", {"name": "Main"})["id"]
        line = {"item": item, "quantity": "20", "target_warehouse": main, "rate": "2"}
        receipt = _made(api, f"{INVENTORY}/stock_entry", {"purpose": "receipt", "lines": [line]})
        assert api.post(f"{INVENTORY}/stock_entry/{receipt['id']}/_submit").status_code == 200
        order = _made(
            api,
            f"{ORDERS}/sales_order",
            {
                "account": acme,
                "lines": [{"item": item, "quantity": str(ordered), "rate": "5", "warehouse": main}],
            },
        )
        assert api.post(f"{ORDERS}/sales_order/{order['id']}/_submit").status_code == 200
        one = {"item": item, "quantity": "1", "warehouse": main}
        deliveries = [
            _made(api, f"{ORDERS}/delivery", {"sales_order": order["id"], "lines": [one]})["id"]
            for _ in range(racers)
        ]
        paths = [f"{ORDERS}/delivery/{d}/_submit" for d in deliveries]
        answers = asyncio.run(_post_all(base, token, paths))
        codes = sorted(a.status_code for a in answers)
        assert codes == [200] * ordered + [422] * (racers - ordered), [a.text for a in answers]
        refused = {a.json()["code"] for a in answers if a.status_code != 200}
        assert refused == {"over_delivery"}
        after = api.get(f"{ORDERS}/sales_order/{order['id']}").json()["data"]
        assert (after["status"], after["lines"][0]["delivered_qty"]) == (
            "to_bill",
            f"{ordered}.000",
        )
        bins = api.get(f"{INVENTORY}/bin").json()["data"]
        assert [(b["actual_qty"], b["reserved_qty"]) for b in bins] == [
            (f"{20 - ordered}.000", "0.000")
        ]
        ledger = api.get(f"{INVENTORY}/stock_ledger_entry", params={"limit": 1000}).json()
        total = sum(Decimal(r["qty_change"]) for r in ledger["data"])
        assert total == 20 - ordered
    assert_no_drift(instance.settings)
