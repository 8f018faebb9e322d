"""Concurrent upserts of one new key, through a real server on SQLite and PostgreSQL.

Every request answers 200 or 201 (exactly one 201, never a 409 or a 500), one record
exists, its trail shows one create and an update per other request, and the autonumber the
racing creates drew stays gap-free.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx

from tests.conftest import write_instance
from tests.support.identity import bearer
from tests.support.server import serving

if TYPE_CHECKING:
    from pathlib import Path

RACERS = 60


async def _race(
    base: str, token: str, url: str, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    async with httpx.AsyncClient(
        base_url=base, headers=bearer(token), limits=limits, timeout=60
    ) as client:
        return list(await asyncio.gather(*(client.put(url, json=body) for body in bodies)))


def _check(api: httpx.Client, base: str, entity: str, responses: list[httpx.Response]) -> str:
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 201}, [r.text for r in responses if r.status_code > 201]
    assert statuses.count(201) == 1, statuses
    ids = {r.json()["data"]["id"] for r in responses}
    assert len(ids) == 1, ids
    (record_id,) = ids
    history = api.get(f"{base}/api/v1/kitchen/{entity}/{record_id}/_history").json()["data"]
    actions = [entry["action"] for entry in history]
    assert actions == ["create"] + ["update"] * (RACERS - 1), actions
    return str(record_id)


def test_concurrent_upserts_of_a_new_key_create_it_once(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "instance", db_url, ["kitchen"], pool_size=20)
    instance.migrate()
    token = instance.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(instance.path) as base:
        # kitchen.item has an autonumber (the racing creates draw from its counter) and lines
        bodies = [
            {"name": f"racer {i}", "quantity": i, "lines": [{"description": f"l{i}", "qty": 1}]}
            for i in range(RACERS)
        ]
        responses = asyncio.run(_race(base, token, "/api/v1/kitchen/item/by/code/RACE-1", bodies))
        record_id = _check(api, base, "item", responses)
        items = api.get(f"{base}/api/v1/kitchen/item", params={"code": "RACE-1"}).json()["data"]
        assert [i["id"] for i in items] == [record_id]
        assert len(items[0]["lines"]) == 1
        assert items[0]["number"].endswith("-0001")
        later = api.post(f"{base}/api/v1/kitchen/item", json={"name": "later"}).json()["data"]
        assert later["number"].endswith("-0002")  # no number was lost to a racing create

        # kitchen.category: no autonumber, so its create is a single statement
        bodies = [{"parent": None} for _ in range(RACERS)]
        responses = asyncio.run(
            _race(base, token, "/api/v1/kitchen/category/by/name/Tools", bodies)
        )
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {200, 201}, [r.text for r in responses if r.status_code > 201]
        assert statuses.count(201) == 1, statuses
        listed = api.get(f"{base}/api/v1/kitchen/category", params={"name": "Tools"}).json()
        assert len(listed["data"]) == 1
