"""List parameters (SPEC §4): every filter operator, sort, pagination walks, fields, expand."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ITEMS = "/api/v1/kitchen/item"

ROWS: list[dict[str, Any]] = [
    {
        "name": "Anvil",
        "code": "A-1",
        "quantity": 5,
        "price": "10.00",
        "status": "open",
        "due": "2026-01-01",
        "active": True,
        "notes": "heavy 100% iron",
        "email": "a@x.io",
    },
    {
        "name": "bolt",
        "code": "B-1",
        "quantity": 50,
        "price": "0.25",
        "status": "draft",
        "due": "2026-01-02",
        "active": False,
        "notes": "Small_part",
        "email": "b@x.io",
    },
    {
        "name": "Émile's chisel",
        "code": "C-1",
        "quantity": 0,
        "price": "7.50",
        "status": "done",
        "due": None,
        "active": True,
        "notes": None,
    },
    {
        "name": "Drill",
        "code": "D-1",
        "quantity": 5,
        "price": None,
        "status": "open",
        "due": "2026-03-01",
        "active": True,
        "notes": "cordless",
    },
]


@pytest.fixture
def seeded(kitchen_client: TestClient) -> TestClient:
    category = kitchen_client.post("/api/v1/kitchen/category", json={"name": "Hand tools"})
    for row in ROWS:
        body = {k: v for k, v in row.items() if v is not None}
        if row["name"] in {"Anvil", "Drill"}:
            body["category"] = category.json()["data"]["id"]
        assert kitchen_client.post(ITEMS, json=body).status_code == 201
    return kitchen_client


def names(client: TestClient, **params: Any) -> list[str]:
    response = client.get(ITEMS, params={"sort": "name", **params})
    assert response.status_code == 200, response.text
    return [r["name"] for r in response.json()["data"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "open"}, ["Anvil", "Drill"]),
        ({"quantity": "5"}, ["Anvil", "Drill"]),
        ({"status__ne": "open"}, ["bolt", "Émile's chisel"]),
        ({"quantity__gt": "5"}, ["bolt"]),
        ({"quantity__gte": "5"}, ["Anvil", "Drill", "bolt"]),
        ({"quantity__lt": "5"}, ["Émile's chisel"]),
        ({"quantity__lte": "5"}, ["Anvil", "Drill", "Émile's chisel"]),
        ({"price__gt": "7.5"}, ["Anvil"]),
        ({"price__lte": "0.25"}, ["bolt"]),
        ({"due__gte": "2026-01-02"}, ["Drill", "bolt"]),
        ({"status__in": "draft,done"}, ["bolt", "Émile's chisel"]),
        ({"status__nin": "draft,done"}, ["Anvil", "Drill"]),
        ({"code__in": "A-1"}, ["Anvil"]),
        ({"notes__contains": "100%"}, ["Anvil"]),
        ({"notes__contains": "Small_"}, ["bolt"]),
        ({"notes__contains": "small"}, []),
        ({"notes__icontains": "SMALL"}, ["bolt"]),
        ({"name__icontains": "ÉMILE"}, ["Émile's chisel"]),
        ({"name__startswith": "Dr"}, ["Drill"]),
        ({"name__startswith": "dr"}, []),
        ({"due__isnull": "true"}, ["Émile's chisel"]),
        ({"price__isnull": "false"}, ["Anvil", "bolt", "Émile's chisel"]),
        ({"active": "false"}, ["bolt"]),
        ({"category__name": "Hand tools"}, ["Anvil", "Drill"]),
        ({"category__name__icontains": "HAND"}, ["Anvil", "Drill"]),
        ({"category__isnull": "true"}, ["bolt", "Émile's chisel"]),
        ({"q": "émile"}, ["Émile's chisel"]),
        ({"q": "x.io"}, ["Anvil", "bolt"]),
        ({"q": "%"}, ["Anvil"]),
        ({"status": "open", "quantity__gte": "5", "name__startswith": "A"}, ["Anvil"]),
    ],
)
def test_filter_operators(seeded: TestClient, params: dict[str, str], expected: list[str]) -> None:
    assert names(seeded, **params) == expected


def test_sort_descending_nulls_last_and_count(seeded: TestClient) -> None:
    response = seeded.get(ITEMS, params={"sort": "-price", "count": "true", "limit": 2})
    body = response.json()
    assert [r["name"] for r in body["data"]] == ["Anvil", "Émile's chisel"]
    assert body["meta"]["count"] == 4
    assert names(seeded, sort="price") == ["bolt", "Émile's chisel", "Anvil", "Drill"]


def test_sort_by_id_keeps_its_direction(many: TestClient) -> None:
    """``id`` ends every sort as the tie-breaker; asked for last, it keeps the direction
    asked (``-id``: newest first), alone or after other keys."""
    ids = [int(r["id"]) for r in many.get(ITEMS, params={"limit": 100}).json()["data"]]
    newest = [
        int(r["id"]) for r in many.get(ITEMS, params={"sort": "-id", "limit": 100}).json()["data"]
    ]
    assert newest == sorted(ids, reverse=True)
    assert len(newest) == 53
    rows = many.get(ITEMS, params={"sort": "quantity,-id", "limit": 100}).json()["data"]
    keys = [(r["quantity"], -int(r["id"])) for r in rows]
    assert keys == sorted(keys)


def test_sparse_fields_and_expand(seeded: TestClient) -> None:
    body = seeded.get(
        ITEMS,
        params={"fields": "name,category", "expand": "category", "status": "open", "sort": "name"},
    ).json()
    first = body["data"][0]
    assert set(first) == {"id", "name", "category"}
    assert first["category"]["name"] == "Hand tools"
    one = seeded.get(f"{ITEMS}/{first['id']}", params={"expand": "category"}).json()["data"]
    assert one["category"]["name"] == "Hand tools"


@pytest.mark.parametrize(
    "params",
    [
        {"nope": "1"},
        {"name__regex": "x"},
        {"quantity__gt": "many"},
        {"sort": "nope"},
        {"sort": "name,name"},
        {"limit": "0"},
        {"limit": "1001"},
        {"offset": "-1"},
        {"fields": "nope"},
        {"expand": "name"},
        {"cursor": "garbage"},
        {"count": "maybe"},
        {"quantity__contains": "1"},
        {"due": "yesterday"},
        {"category__nope": "x"},
        {"attributes": "x"},
        {"lines": "x"},
        {"status__in": "a,,b"},
        {"a__b__c__d": "1"},
        {"cursor": "eyJzIjoiIiwidiI6WzFdfQ", "offset": "3"},
    ],
)
def test_bad_parameters_are_400(seeded: TestClient, params: dict[str, str]) -> None:
    response = seeded.get(ITEMS, params=params)
    assert response.status_code == 400, (params, response.text)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture
def many(kitchen_client: TestClient) -> TestClient:
    """53 records whose sort keys tie a lot (quantity in 0..4, price often null)."""
    records = [
        {
            "name": f"item {i:02d}",
            "quantity": i % 5,
            "due": f"2026-01-{1 + i % 3:02d}",
            **({"price": f"{i % 4}.00"} if i % 3 else {}),
        }
        for i in range(53)
    ]
    response = kitchen_client.post(f"{ITEMS}/_bulk", json=records)
    assert response.status_code == 201
    return kitchen_client


@pytest.mark.parametrize(
    "sort",
    [
        "quantity",
        "-quantity,name",
        "price",
        "-price,-due",
        "due,-quantity",
        "-id",
        "quantity,-id",
        None,
    ],
)
@pytest.mark.parametrize("page_size", [1, 7, 50])
def test_cursor_and_offset_walks_return_every_record_once(
    many: TestClient, sort: str | None, page_size: int
) -> None:
    base = {"limit": page_size, **({"sort": sort} if sort else {})}
    seen_cursor: list[str] = []
    params: dict[str, Any] = dict(base)
    for _ in range(100):
        body = many.get(ITEMS, params=params).json()
        seen_cursor += [r["id"] for r in body["data"]]
        if body["meta"]["next_cursor"] is None:
            break
        params = {**base, "cursor": body["meta"]["next_cursor"]}
    seen_offset: list[str] = []
    for offset in itertools.count(0, page_size):
        page = many.get(ITEMS, params={**base, "offset": offset}).json()["data"]
        if not page:
            break
        seen_offset += [r["id"] for r in page]
    assert len(seen_cursor) == 53
    assert len(set(seen_cursor)) == 53
    assert seen_offset == seen_cursor
