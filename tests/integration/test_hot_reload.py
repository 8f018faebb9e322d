"""A field added through one server process is served by another without a restart.

Two ``tessera serve`` processes share one instance, as the workers of a deployment do
(uvicorn's ``--workers`` are such processes, behind one socket). The change goes to the
first; the second must pick it up from the migration log within its poll interval.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from tests.conftest import write_instance
from tests.support.identity import bearer
from tests.support.server import serving

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def wait_for_field(
    api: httpx.Client, server: str, name: str, wanted: Callable[[dict[str, Any]], bool]
) -> None:
    """Until ``server`` describes kitchen.item's field ``name`` as ``wanted``."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        meta = api.get(f"{server}/api/v1/_meta/entities").json()["data"]
        (item,) = [e for e in meta if e["name"] == "kitchen.item"]
        if any(f["name"] == name and wanted(f) for f in item["fields"]):
            return
        time.sleep(0.1)
    raise AssertionError(f"{server} never described the field {name} as expected")


def test_second_process_serves_the_new_field(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(
        tmp_path / "shared",
        db_url,
        ["kitchen"],
        customizations="./custom",
        meta_api_writes=True,
        reload_interval=0.25,
    )
    instance.migrate()
    token = instance.token()
    with (
        httpx.Client(headers=bearer(token)) as api,
        serving(instance.path) as first,
        serving(instance.path) as second,
    ):
        seeded = api.post(f"{second}/api/v1/kitchen/item", json={"name": "Old", "code": "O-1"})
        assert seeded.status_code == 201, seeded.text
        refused = api.post(
            f"{second}/api/v1/kitchen/item", json={"name": "Early", "code": "E-1", "colour": "red"}
        )
        assert refused.status_code == 422

        added = api.post(
            f"{first}/api/v1/_meta/entities/kitchen.item/fields",
            json={"name": "colour", "type": "string", "max_length": 20, "default": "grey"},
            timeout=60,
        )
        assert added.status_code == 201, added.text

        wait_for_field(api, second, "colour", lambda f: True)

        created = api.post(
            f"{second}/api/v1/kitchen/item", json={"name": "New", "code": "N-1", "colour": "red"}
        )
        assert created.status_code == 201, created.text
        assert created.json()["data"]["colour"] == "red"
        old = api.get(f"{second}/api/v1/kitchen/item/{seeded.json()['data']['id']}").json()
        assert old["data"]["colour"] == "grey"
        listed = api.get(f"{second}/api/v1/kitchen/item", params={"colour": "red"}).json()
        assert [i["name"] for i in listed["data"]] == ["New"]

        # A type change under the second process's prepared statements: its writes answer
        # 503 with Retry-After until it has reloaded, never 500, then succeed.
        item_url = f"{second}/api/v1/kitchen/item/{created.json()['data']['id']}"
        for _ in range(3):
            assert api.patch(item_url, json={"colour": "blue"}).status_code == 200
        widened = api.patch(
            f"{first}/api/v1/_meta/entities/kitchen.item/fields/colour",
            json={"max_length": 60},
            timeout=60,
        )
        assert widened.status_code == 200, widened.text
        # Writes that fit both definitions: 200, or 503 while prepared statements are stale.
        for _ in range(5):
            response = api.patch(item_url, json={"colour": "c" * 15})
            assert response.status_code in {200, 503}, response.text
            if response.status_code == 503:
                assert response.headers["retry-after"] == "1"
        wait_for_field(api, second, "colour", lambda f: f["max_length"] == 60)
        response = api.patch(item_url, json={"colour": "c" * 50})
        assert response.status_code == 200, response.text
        assert api.get(item_url).json()["data"]["colour"] == "c" * 50

        # A dropped column under the compiled queries of a process that polls the log only
        # every minute: its first read answers 503 with Retry-After (never 500) and makes it
        # look at the log at once, so the next reads come back without the field.
        config = (instance.path / "tessera.yaml").read_text()
        slow_config = instance.path / "slow.yaml"
        slow_config.write_text(config.replace("reload_interval: 0.25", "reload_interval: 60"))
        assert slow_config.read_text() != config
        with serving(instance.path, "--config", str(slow_config)) as slow:
            slow_url = f"{slow}/api/v1/kitchen/item/{created.json()['data']['id']}"
            assert api.get(slow_url).json()["data"]["colour"] == "c" * 50
            removed = api.delete(
                f"{first}/api/v1/_meta/entities/kitchen.item/fields/colour",
                params={"allow_data_loss": "true"},
                timeout=60,
            )
            assert removed.status_code == 204, removed.text
            stale = api.get(slow_url)
            assert stale.status_code == 503, stale.text
            assert stale.headers["retry-after"] == "1"
            deadline = time.monotonic() + 10
            while (response := api.get(slow_url)).status_code == 503:
                assert time.monotonic() < deadline, "the slow process never reloaded"
                time.sleep(0.05)
            assert response.status_code == 200, response.text
            assert response.json()["data"]["name"] == "New"
            assert "colour" not in response.json()["data"]
