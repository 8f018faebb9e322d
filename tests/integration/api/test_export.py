"""``GET /api/v1/{pack}/{entity}/_export`` on SQLite and PostgreSQL: CSV and JSON lines of
every record a list's filters select, streamed page by page."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: shop\nversion: 1.0.0\n",
    "entities/sale.yaml": """\
title: ref
fields:
  ref:    {type: string, required: true, unique: true}
  status: {type: enum, values: [draft, paid]}
  amount: {type: decimal, scale: 2}
  note:   {type: text}
""",
}
URL = "/api/v1/shop/sale/_export"
TOTAL = 1203  # more than one page of 1,000


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance: Instance = pack_instance(tmp_path, db_url, "shop", FILES)
    with instance.client() as client:
        sales = [
            {
                "ref": f"S{i:05d}",
                "status": "paid" if i % 3 == 0 else "draft",
                "amount": f"{i}.{i % 100:02d}",
                "note": 'says "hi", then\nleaves' if i == 7 else None,
            }
            for i in range(TOTAL)
        ]
        for start in range(0, TOTAL, 1000):
            made = client.post("/api/v1/shop/sale/_bulk", json=sales[start : start + 1000])
            assert made.status_code == 201, made.text
        yield client


def test_csv_of_every_record_across_pages(api: TestClient) -> None:
    response = api.get(URL)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="shop-sale.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == TOTAL
    assert list(rows[0])[:5] == ["id", "ref", "status", "amount", "note"]
    assert [r["ref"] for r in rows] == [f"S{i:05d}" for i in range(TOTAL)]
    assert rows[7]["note"] == 'says "hi", then\nleaves'
    assert rows[1201]["amount"] == "1201.01"
    assert rows[0]["note"] == ""


def test_filters_sort_and_fields_as_in_lists(api: TestClient) -> None:
    response = api.get(URL, params={"status": "paid", "sort": "-amount", "fields": "ref,amount"})
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["ref", "amount"]
    assert len(rows) - 1 == len(range(0, TOTAL, 3))
    assert rows[1] == ["S01200", "1200.00"]
    assert rows[-1] == ["S00000", "0.00"]
    empty = api.get(URL, params={"ref": "nothing"})
    assert empty.status_code == 200
    assert empty.text.splitlines() == [
        "id,ref,status,amount,note,created_at,updated_at,created_by,updated_by,version"
    ]


def test_json_lines(api: TestClient) -> None:
    response = api.get(URL, params={"format": "jsonl", "q": "S0000", "fields": "ref,amount"})
    assert response.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines[:2] == [{"ref": "S00000", "amount": "0.00"}, {"ref": "S00001", "amount": "1.01"}]
    assert len(lines) == 10


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("format=xlsx", "'format' must be one of csv, jsonl"),
        ("format=csv&format=jsonl", "'format' must be one of"),
        ("nope=1", "has no such field"),
        ("amount__gt=lots", "amount__gt"),
        ("fields=ref,nope", "has no field 'nope'"),
        ("limit=10", "'limit' does not apply to _export"),
        ("expand=ref", "'expand' does not apply to _export"),
    ],
)
def test_bad_parameters_are_400_before_any_data(api: TestClient, query: str, message: str) -> None:
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert message in response.json()["detail"]
