"""The meta API changes fields of a live instance: overlay file, migration and API in one
call, on SQLite and PostgreSQL; a rejected change leaves the file and the schema as they
were."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import inspect

from engine.migrate import sync_engine
from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

ITEM_FIELDS = "/api/v1/_meta/entities/kitchen.item/fields"
ITEMS = "/api/v1/kitchen/item"
COMMENTED_OVERLAY = """\
# Customizations of kitchen.item, kept by hand and by the API.
label: Article   # what the sales team calls it

fields:
  # the warehouse asked for this one
  bin: {type: string, max_length: 12}
"""


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "shop",
        db_url,
        ["kitchen"],
        customizations="./custom",
        meta_api_writes=True,
        reload_interval=0,
    )
    overlay = instance.path / "custom" / "kitchen" / "item.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text(COMMENTED_OVERLAY, encoding="utf-8")
    instance.migrate()
    return instance


@pytest.fixture
def client(shop: Instance) -> Iterator[TestClient]:
    with shop.client() as client:
        for index in range(3):
            response = client.post(
                ITEMS, json={"name": f"Item {index}", "code": f"C-{index}", "price": "1.50"}
            )
            assert response.status_code == 201, response.text
        yield client


def overlay_text(shop: Instance) -> str:
    return (shop.path / "custom" / "kitchen" / "item.yaml").read_text(encoding="utf-8")


def columns(shop: Instance) -> dict[str, Any]:
    engine = sync_engine(shop.settings.database_url)
    with engine.connect() as connection:
        found = {
            c["name"]: (str(c["type"]), c["nullable"])
            for c in inspect(connection).get_columns("kitchen_item")
        }
    engine.dispose()
    return found


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_added_field_is_usable_at_once_and_the_file_keeps_its_comments(
    shop: Instance, client: TestClient
) -> None:
    response = client.post(
        ITEM_FIELDS,
        json={
            "name": "loyalty_tier",
            "type": "enum",
            "values": ["bronze", "gold"],
            "default": "bronze",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["data"]["name"] == "loyalty_tier"
    assert body["data"]["values"] == ["bronze", "gold"]
    assert any("add column kitchen_item.loyalty_tier" in s for s in body["meta"]["migration"])
    assert overlay_text(shop) == COMMENTED_OVERLAY + (
        "  loyalty_tier: {type: enum, values: [bronze, gold], default: bronze}\n"
    )
    listed = client.get(ITEMS, params={"sort": "name"}).json()["data"]
    assert [item["loyalty_tier"] for item in listed] == ["bronze", "bronze", "bronze"]
    created = client.post(ITEMS, json={"name": "New", "code": "N-1", "loyalty_tier": "gold"})
    assert created.status_code == 201, created.text
    assert created.json()["data"]["loyalty_tier"] == "gold"
    rejected = client.post(ITEMS, json={"name": "Bad", "code": "B-1", "loyalty_tier": "tin"})
    assert problem(rejected, 422)["errors"][0]["field"] == "loyalty_tier"
    meta = client.get("/api/v1/_meta/entities").json()["data"]
    (item,) = [e for e in meta if e["name"] == "kitchen.item"]
    assert "loyalty_tier" in [f["name"] for f in item["fields"]]
    # placed nowhere by the customization: the form shows it at the end
    (section,) = item["form"]["sections"]
    assert section["fields"][-1] == {
        "field": "loyalty_tier",
        "label": "Loyalty tier",
        "help": None,
        "visible_if": None,
        "read_only": False,
    }
    assert "loyalty_tier" in client.get("/openapi.json").text
    assert client.get(ITEMS, params={"count": "true"}).json()["meta"]["count"] == 4


def test_invalid_field_is_refused_with_its_position_and_nothing_changes(
    shop: Instance, client: TestClient
) -> None:
    before = columns(shop)
    response = client.post(
        ITEM_FIELDS, json={"name": "rank", "type": "integer", "min": 5, "max": 1}
    )
    body = problem(response, 422)
    (error,) = body["errors"]
    assert error["message"].endswith("custom/kitchen/item.yaml:7:30: min is greater than max")
    assert overlay_text(shop) == COMMENTED_OVERLAY
    assert columns(shop) == before
    response = client.post(ITEM_FIELDS, json={"name": "Bad Name", "type": "string"})
    assert problem(response, 422)["errors"]
    assert overlay_text(shop) == COMMENTED_OVERLAY


def test_required_field_without_default_is_refused_on_a_table_with_rows(
    shop: Instance, client: TestClient
) -> None:
    response = client.post(ITEM_FIELDS, json={"name": "sku", "type": "string", "required": True})
    body = problem(response, 409)
    assert body["type"] == "/problems/migration-refused"
    assert "has no default and the table has 3 rows" in body["errors"][0]["message"]
    assert overlay_text(shop) == COMMENTED_OVERLAY
    assert "sku" not in columns(shop)
    with_default = client.post(
        ITEM_FIELDS, json={"name": "sku", "type": "string", "required": True, "default": "n/a"}
    )
    assert with_default.status_code == 201, with_default.text
    assert {i["sku"] for i in client.get(ITEMS).json()["data"]} == {"n/a"}


def test_patch_tightens_a_pack_field_and_refuses_to_loosen_it(
    shop: Instance, client: TestClient
) -> None:
    response = client.patch(f"{ITEM_FIELDS}/name", json={"max_length": 20, "label": "Title"})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["max_length"] == 20
    assert response.json()["data"]["label"] == "Title"
    assert "  name: {max_length: 20, label: Title}\n" in overlay_text(shop)
    too_long = client.post(ITEMS, json={"name": "x" * 21, "code": "L-1"})
    assert problem(too_long, 422)["errors"][0]["field"] == "name"
    saved = overlay_text(shop)
    loosened = client.patch(f"{ITEM_FIELDS}/name", json={"max_length": 5000})
    (error,) = problem(loosened, 422)["errors"]
    assert "loosens" in error["message"]
    assert "custom/kitchen/item.yaml:" in error["message"]
    assert overlay_text(shop) == saved


def test_delete_drops_an_added_field_only_when_data_loss_is_allowed(
    shop: Instance, client: TestClient
) -> None:
    first = client.get(ITEMS, params={"sort": "name"}).json()["data"][0]
    patched = client.patch(f"{ITEMS}/{first['id']}", json={"bin": "A-01"})
    assert patched.status_code == 200, patched.text
    refused = problem(client.delete(f"{ITEM_FIELDS}/bin"), 409)
    assert refused["errors"][0]["message"].endswith(
        "holds 1 values: refused without allow_data_loss=true"
    )
    assert "bin" in columns(shop)
    assert overlay_text(shop) == COMMENTED_OVERLAY
    deleted = client.delete(f"{ITEM_FIELDS}/bin", params={"allow_data_loss": "true"})
    assert deleted.status_code == 204, deleted.text
    assert "bin" not in columns(shop)
    assert "bin:" not in overlay_text(shop)
    assert overlay_text(shop).startswith("# Customizations of kitchen.item, kept by hand")
    assert "bin" not in client.get(f"{ITEMS}/{first['id']}").json()["data"]
    problem(client.delete(f"{ITEM_FIELDS}/bin"), 404)


def test_bad_requests_are_problems(shop: Instance, client: TestClient) -> None:
    problem(
        client.post(
            ITEM_FIELDS, content=b"{not json", headers={"content-type": "application/json"}
        ),
        400,
    )
    problem(client.post(ITEM_FIELDS, json=["name"]), 400)
    problem(client.post(ITEM_FIELDS, json={"type": "string"}), 422)
    problem(client.post(ITEM_FIELDS, json={"name": "x"}), 422)
    problem(client.post(ITEM_FIELDS, json={"name": "name", "type": "string"}), 409)
    problem(client.post("/api/v1/_meta/entities/kitchen.nothing/fields", json={}), 404)
    problem(client.patch(f"{ITEM_FIELDS}/nothing", json={"label": "x"}), 404)
    problem(client.patch(f"{ITEM_FIELDS}/name", json={}), 400)
    assert overlay_text(shop) == COMMENTED_OVERLAY


def test_writes_are_off_unless_the_instance_allows_them(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "locked", db_url, ["kitchen"], customizations="./custom")
    instance.migrate()
    with instance.client() as client:
        body = problem(client.post(ITEM_FIELDS, json={"name": "x", "type": "string"}), 403)
        assert "meta_api_writes: true" in body["detail"]
    assert not (instance.path / "custom" / "kitchen").exists()


def test_writes_after_a_type_change_use_the_new_schema(shop: Instance, client: TestClient) -> None:
    items = client.get(ITEMS, params={"sort": "name"}).json()["data"]
    for item in items:  # warm every cached statement on the old column types
        assert client.patch(f"{ITEMS}/{item['id']}", json={"bin": "A"}).status_code == 200
        assert client.get(f"{ITEMS}/{item['id']}").status_code == 200
    changed = client.patch(f"{ITEM_FIELDS}/bin", json={"max_length": 60})
    assert changed.status_code == 200, changed.text
    for item in items:
        response = client.patch(f"{ITEMS}/{item['id']}", json={"bin": "B" * 50})
        assert response.status_code == 200, response.text
        assert client.get(f"{ITEMS}/{item['id']}").json()["data"]["bin"] == "B" * 50
    created = client.post(ITEMS, json={"name": "After", "code": "AF-1", "bin": "C" * 40})
    assert created.status_code == 201, created.text
    assert len(client.get(ITEMS).json()["data"]) == 4
