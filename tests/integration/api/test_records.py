"""Create, read, update, delete through the generated API, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

ITEMS = "/api/v1/kitchen/item"
CATEGORIES = "/api/v1/kitchen/category"

FULL_ITEM: dict[str, Any] = {
    "name": "Hammer Ünïcødé ☃",
    "code": "HM-1",
    "notes": "line one\nline two — with accents: àéîõü",
    "quantity": 9007199254740993,
    "price": "123456789012.34",
    "rate": "0.000001",
    "active": False,
    "due": "2026-02-28",
    "seen_at": "2026-01-02T10:00:00.123456+02:00",
    "email": "ana.muñoz@example.com",
    "website": "https://example.com/path?x=1",
    "phone": "+44 (0)20 7946-0958 ext 12",
    "status": "open",
    "attributes": {"nested": [1, "two", None, True], "k": {"x": 1.5}},
    "lines": [
        {"description": "first", "qty": 2, "unit_price": "0.10"},
        {"description": "second", "qty": 1, "unit_price": "99999999.99"},
    ],
}


def _create_category(client: TestClient, name: str = "Tools") -> dict[str, Any]:
    response = client.post(CATEGORIES, json={"name": name})
    assert response.status_code == 201, response.text
    return dict(response.json()["data"])


def test_every_field_type_round_trips(kitchen_client: TestClient) -> None:
    category = _create_category(kitchen_client)
    response = kitchen_client.post(ITEMS, json={**FULL_ITEM, "category": category["id"]})
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert response.headers["location"] == f"{ITEMS}/{created['id']}"
    assert response.headers["etag"] == '"1"'

    fetched = kitchen_client.get(f"{ITEMS}/{created['id']}")
    assert fetched.status_code == 200
    record = fetched.json()["data"]
    for key in (
        "name",
        "code",
        "notes",
        "quantity",
        "price",
        "rate",
        "active",
        "due",
        "email",
        "website",
        "phone",
        "status",
        "attributes",
    ):
        assert record[key] == FULL_ITEM[key], key
    assert record["seen_at"] == "2026-01-02T08:00:00.123456+00:00"
    assert record["category"] == category["id"]
    assert record["number"].startswith("IT-")
    assert record["number"].endswith("-0001")
    assert [(line["description"], line["qty"], line["unit_price"]) for line in record["lines"]] == [
        ("first", 2, "0.10"),
        ("second", 1, "99999999.99"),
    ]
    assert record["version"] == 1
    assert isinstance(record["id"], str)


def test_decimals_are_exact_in_both_directions(kitchen_client: TestClient) -> None:
    # 0.1 + 0.2 style values and JSON numbers must come back exactly as decimal strings.
    values = ["0.10", "0.20", "0.30", "1.01", "999999999999.99", "0.00"]
    for value in values:
        created = kitchen_client.post(ITEMS, json={"name": value, "price": value})
        assert created.json()["data"]["price"] == value
    as_number = kitchen_client.post(
        ITEMS,
        content=b'{"name": "num", "price": 0.30, "rate": 1.000001}',
        headers={"content-type": "application/json"},
    )
    assert as_number.status_code == 201, as_number.text
    assert as_number.json()["data"]["price"] == "0.30"
    assert as_number.json()["data"]["rate"] == "1.000001"
    total = sum(
        Decimal(r["price"])
        for r in kitchen_client.get(ITEMS, params={"price__isnull": "false", "limit": 100}).json()[
            "data"
        ]
    )
    assert total == sum(Decimal(v) for v in values) + Decimal("0.30")


def test_autonumber_is_sequential_and_not_writable(kitchen_client: TestClient) -> None:
    numbers = [
        kitchen_client.post(ITEMS, json={"name": f"n{i}"}).json()["data"]["number"]
        for i in range(3)
    ]
    assert [n[-4:] for n in numbers] == ["0001", "0002", "0003"]
    refused = kitchen_client.post(ITEMS, json={"name": "x", "number": "IT-1"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "read_only"
    # A rejected write does not consume a number: the series stays gap-free.
    assert kitchen_client.post(ITEMS, json={"name": "n3"}).json()["data"]["number"][-4:] == "0004"


def test_validation_reports_every_field_at_once(kitchen_client: TestClient) -> None:
    response = kitchen_client.post(
        ITEMS,
        json={
            "name": "",
            "code": "bad code",
            "price": "1.234",
            "bogus": 1,
            "status": "nope",
            "due": "2026-02-30",
            "email": "not-an-email",
            "quantity": -1,
            "lines": [{"qty": 0}],
        },
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/validation"
    codes = {(e["field"], e["code"]) for e in problem["errors"]}
    assert codes == {
        ("name", "required"),
        ("code", "pattern"),
        ("price", "scale"),
        ("bogus", "unknown_field"),
        ("status", "enum"),
        ("due", "type"),
        ("email", "format"),
        ("quantity", "min"),
        ("lines[0].qty", "min"),
        ("lines[0].description", "required"),
    }


def test_reference_by_unique_field_and_unknown_reference(kitchen_client: TestClient) -> None:
    category = _create_category(kitchen_client, "Garden")
    by_key = kitchen_client.post(ITEMS, json={"name": "Rake", "category": {"name": "Garden"}})
    assert by_key.status_code == 201
    assert by_key.json()["data"]["category"] == category["id"]
    missing = kitchen_client.post(ITEMS, json={"name": "Rake", "category": {"name": "Nope"}})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "category"
    not_unique = kitchen_client.post(ITEMS, json={"name": "Rake", "category": {"parent": "1"}})
    assert not_unique.status_code == 422
    unknown_id = kitchen_client.post(ITEMS, json={"name": "Rake", "category": "424242"})
    assert unknown_id.status_code == 422
    assert unknown_id.json()["errors"][0] == {
        "field": "category",
        "code": "reference",
        "message": "refers to a record that does not exist",
    }


def test_patch_and_two_writers_with_the_same_if_match(kitchen_client: TestClient) -> None:
    created = kitchen_client.post(ITEMS, json={"name": "Saw"}).json()["data"]
    url = f"{ITEMS}/{created['id']}"
    first = kitchen_client.patch(url, json={"quantity": 1}, headers={"If-Match": '"1"'})
    second = kitchen_client.patch(url, json={"quantity": 2}, headers={"If-Match": '"1"'})
    assert sorted([first.status_code, second.status_code]) == [200, 412]
    assert second.headers["content-type"] == "application/problem+json"
    current = kitchen_client.get(url)
    assert current.json()["data"]["quantity"] == 1
    assert current.headers["etag"] == '"2"'
    unconditional = kitchen_client.patch(url, json={"quantity": 3})
    assert unconditional.json()["data"]["version"] == 3


def test_children_are_kept_added_and_removed(kitchen_client: TestClient) -> None:
    created = kitchen_client.post(
        ITEMS,
        json={
            "name": "Kit",
            "lines": [{"description": "a", "qty": 1}, {"description": "b", "qty": 2}],
        },
    ).json()["data"]
    first, second = created["lines"]
    updated = kitchen_client.patch(
        f"{ITEMS}/{created['id']}",
        json={
            "lines": [
                {"id": second["id"], "description": "b2", "qty": 5},
                {"description": "c", "qty": 3},
            ]
        },
    )
    assert updated.status_code == 200, updated.text
    lines = updated.json()["data"]["lines"]
    assert [(line["description"], line["qty"]) for line in lines] == [("b2", 5), ("c", 3)]
    assert lines[0]["id"] == second["id"]
    foreign = kitchen_client.patch(
        f"{ITEMS}/{created['id']}",
        json={"lines": [{"id": first["id"], "description": "x", "qty": 1}]},
    )
    assert foreign.status_code == 422
    kitchen_client.delete(f"{ITEMS}/{created['id']}")
    assert kitchen_client.get(f"{ITEMS}/{created['id']}").status_code == 404


def test_delete_restricted_reference_is_a_conflict(kitchen_client: TestClient) -> None:
    category = _create_category(kitchen_client)
    kitchen_client.post(ITEMS, json={"name": "Drill", "category": category["id"]})
    response = kitchen_client.delete(f"{CATEGORIES}/{category['id']}")
    assert response.status_code == 409
    assert kitchen_client.get(f"{CATEGORIES}/{category['id']}").status_code == 200


def test_set_null_reference_is_cleared_on_delete(kitchen_client: TestClient) -> None:
    parent = _create_category(kitchen_client, "Parent")
    child = kitchen_client.post(CATEGORIES, json={"name": "Child", "parent": parent["id"]})
    assert kitchen_client.delete(f"{CATEGORIES}/{parent['id']}").status_code == 204
    again = kitchen_client.get(f"{CATEGORIES}/{child.json()['data']['id']}").json()["data"]
    assert again["parent"] is None


def test_unique_conflict_is_409_with_the_field(kitchen_client: TestClient) -> None:
    kitchen_client.post(ITEMS, json={"name": "A", "code": "DUP"})
    response = kitchen_client.post(ITEMS, json={"name": "B", "code": "DUP"})
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "code"


def test_bulk_is_all_or_nothing(kitchen_client: TestClient) -> None:
    bulk = f"{ITEMS}/_bulk"
    ok = kitchen_client.post(bulk, json=[{"name": "b1"}, {"name": "b2", "code": "B2"}])
    assert ok.status_code == 201
    assert [r["name"] for r in ok.json()["data"]] == ["b1", "b2"]
    invalid = kitchen_client.post(bulk, json=[{"name": "c1"}, {"quantity": -5}])
    assert invalid.status_code == 422
    assert {(e["index"], e["field"]) for e in invalid.json()["errors"]} == {
        (1, "name"),
        (1, "quantity"),
    }
    conflict = kitchen_client.post(
        bulk, json={"data": [{"name": "d1", "code": "D1"}, {"name": "d2", "code": "B2"}]}
    )
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["index"] == 1
    names = [r["name"] for r in kitchen_client.get(ITEMS).json()["data"]]
    assert names == ["b1", "b2"]


def test_upsert_by_unique_field(kitchen_client: TestClient) -> None:
    url = f"{ITEMS}/by/code/UP-1"
    created = kitchen_client.put(url, json={"name": "first"})
    assert created.status_code == 201
    updated = kitchen_client.put(url, json={"name": "second"})
    assert updated.status_code == 200
    assert updated.json()["data"]["id"] == created.json()["data"]["id"]
    assert updated.json()["data"]["name"] == "second"
    assert kitchen_client.put(f"{ITEMS}/by/name/x", json={"name": "x"}).status_code == 400


def test_malformed_requests_get_problem_details(kitchen_client: TestClient) -> None:
    cases = [
        (
            kitchen_client.post(
                ITEMS, content=b"{not json", headers={"content-type": "application/json"}
            ),
            400,
        ),
        (kitchen_client.post(ITEMS, content=b"\xff\xfe", headers={}), 400),
        (kitchen_client.post(ITEMS, json=[1, 2]), 422),
        (kitchen_client.post(ITEMS, content=b'{"price": NaN}'), 400),
        (kitchen_client.get(f"{ITEMS}/abc"), 404),
        (kitchen_client.get(f"{ITEMS}/99999999999999999999999"), 404),
        (kitchen_client.get("/api/v1/kitchen/nothing"), 404),
        (kitchen_client.get("/api/v1/kitchen/item_line"), 404),
        (kitchen_client.patch(f"{ITEMS}/1", json={"name": "x"}, headers={"If-Match": "zz"}), 412),
        (kitchen_client.post(ITEMS, content=b"x" * (1024 * 1024 + 1)), 413),
        (kitchen_client.put(ITEMS, json={}), 405),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == status


def test_method_not_allowed_names_the_allowed_methods(kitchen_client: TestClient) -> None:
    response = kitchen_client.put(f"{ITEMS}/1", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET, HEAD, PATCH"


def test_healthz_and_meta(kitchen_client: TestClient) -> None:
    assert kitchen_client.get("/healthz").json() == {"status": "ok"}
    meta = kitchen_client.get("/api/v1/_meta/entities").json()["data"]
    item = next(e for e in meta if e["name"] == "kitchen.item")
    assert item["endpoint"] == "/api/v1/kitchen/item"
    price_schema = item["schema"]["properties"]["price"]["anyOf"][0]["anyOf"]
    assert [s["type"] for s in price_schema] == ["string", "number"]
    child = next(e for e in meta if e["name"] == "kitchen.item_line")
    assert child["endpoint"] is None
    assert child["parent"] == "kitchen.item"


def test_head_and_streamed_oversized_body(kitchen_client: TestClient) -> None:
    created = kitchen_client.post(ITEMS, json={"name": "head"}).json()["data"]
    head = kitchen_client.head(f"{ITEMS}/{created['id']}")
    assert head.status_code == 200
    assert head.headers["etag"] == '"1"'

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 32_768

    streamed = kitchen_client.post(ITEMS, content=chunks())
    assert streamed.status_code == 413
    assert streamed.json()["type"] == "/problems/too-large"


def test_cascade_deletes_referencing_records(kitchen_client: TestClient) -> None:
    item = kitchen_client.post(ITEMS, json={"name": "tagged"}).json()["data"]
    other = kitchen_client.post(ITEMS, json={"name": "other"}).json()["data"]
    for label, target in (("a", item), ("b", item), ("c", other)):
        response = kitchen_client.post(
            "/api/v1/kitchen/tag", json={"label": label, "item": target["id"]}
        )
        assert response.status_code == 201
    assert kitchen_client.delete(f"{ITEMS}/{item['id']}").status_code == 204
    left = kitchen_client.get("/api/v1/kitchen/tag").json()["data"]
    assert [t["label"] for t in left] == ["c"]


def test_composite_unique_constraint(kitchen_client: TestClient) -> None:
    category = _create_category(kitchen_client)
    first = kitchen_client.post(ITEMS, json={"name": "Same", "category": category["id"]})
    assert first.status_code == 201
    again = kitchen_client.post(ITEMS, json={"name": "Same", "category": category["id"]})
    assert again.status_code == 409
    assert {e["field"] for e in again.json()["errors"]} == {"category", "name"}
    elsewhere = kitchen_client.post(ITEMS, json={"name": "Same"})
    assert elsewhere.status_code == 201


def test_injection_attempts_are_values_or_refused(kitchen_client: TestClient) -> None:
    hostile = "x' OR '1'='1'; DROP TABLE kitchen_item; --"
    created = kitchen_client.post(ITEMS, json={"name": hostile})
    assert created.status_code == 201
    found = kitchen_client.get(ITEMS, params={"name": hostile}).json()["data"]
    assert [r["name"] for r in found] == [hostile]
    assert kitchen_client.get(ITEMS, params={"name": "x' OR '1'='1"}).json()["data"] == []
    for params in (
        {"sort": "name; DROP TABLE kitchen_item"},
        {"fields": "name,(select 1)"},
        {"name) OR (1": "1"},
        {"expand": "category--"},
    ):
        assert kitchen_client.get(ITEMS, params=params).status_code == 400
    assert kitchen_client.get(ITEMS).status_code == 200
