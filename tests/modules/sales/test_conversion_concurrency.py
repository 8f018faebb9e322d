"""Leads of one new company converted at the same moment, through a real server on SQLite
and PostgreSQL: every conversion succeeds and they all link the one account the first
made (the others find it when the account's unique name refuses their own)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from tests.conftest import REPO, write_instance
from tests.support.identity import bearer
from tests.support.server import serving

if TYPE_CHECKING:
    from pathlib import Path

RACERS = 12


async def _race(base: str, token: str, ids: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, headers=bearer(token), timeout=60) as client:
        return list(
            await asyncio.gather(
                *(
                    client.patch(f"/api/v1/sales/lead/{i}", json={"status": "converted"})
                    for i in ids
                )
            )
        )


def test_racing_conversions_share_one_account(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "i", db_url, ["sales"], [REPO / "modules"], pool_size=12)
    instance.migrate()
    token = instance.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(instance.path) as base:
        ids = []
        for n in range(RACERS):
            body = {
                "first_name": f"P{n}",
                "last_name": "Racer",
                "company": "Photo Finish Ltd",
                "email": f"p{n}@photo-finish.example",
            }
            response = api.post(f"{base}/api/v1/sales/lead", json=body)
            assert response.status_code == 201, response.text
            ids.append(response.json()["data"]["id"])
        responses = asyncio.run(_race(base, token, ids))
        assert [r.status_code for r in responses] == [200] * RACERS, [r.text for r in responses]
        accounts = api.get(f"{base}/api/v1/contacts/account").json()["data"]
        assert [a["name"] for a in accounts] == ["Photo Finish Ltd"]
        linked = {r.json()["data"]["converted_account"] for r in responses}
        assert linked == {accounts[0]["id"]}
        opportunities = api.get(f"{base}/api/v1/sales/opportunity", params={"limit": 50})
        assert len(opportunities.json()["data"]) == RACERS
