"""``GET /api/v1/{pack}/{entity}/_aggregate`` on SQLite and PostgreSQL: groups, buckets,
exact sums and averages, filters and ``q`` as in lists, sorting, limits and bad input."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: shop\nversion: 1.0.0\n",
    "entities/customer.yaml": "title: name\nfields:\n  name: {type: string, required: true}\n",
    "entities/sale.yaml": """\
title: ref
fields:
  ref:      {type: string, required: true}
  status:   {type: enum, values: [draft, paid, void]}
  amount:   {type: decimal, scale: 2}
  quantity: {type: integer}
  sold_on:  {type: date}
  note:     {type: text}
  customer: {type: reference, to: customer}
""",
}
URL = "/api/v1/shop/sale/_aggregate"
SALES = [
    # ref, status, amount, quantity, sold_on
    ("S1", "paid", "0.10", 1, "2026-01-15"),
    ("S2", "paid", "0.20", 2, "2026-01-31"),
    ("S3", "paid", "9999999999999.99", 3, "2026-02-01"),
    ("S4", "draft", "5.00", None, "2026-02-10"),
    ("S5", "draft", None, 7, None),
    ("S6", "void", "-1.05", 1, "2025-12-31"),
]


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance: Instance = pack_instance(tmp_path, db_url, "shop", FILES)
    with instance.client() as client:
        acme = client.post("/api/v1/shop/customer", json={"name": "Acme"}).json()["data"]["id"]
        for ref, status, amount, quantity, sold_on in SALES:
            body: dict[str, Any] = {"ref": ref, "status": status, "amount": amount}
            body |= {"quantity": quantity, "sold_on": sold_on, "note": f"note {ref}"}
            if ref in {"S1", "S3"}:
                body["customer"] = acme
            made = client.post("/api/v1/shop/sale", json=body)
            assert made.status_code == 201, made.text
        client.headers["x-acme"] = acme
        yield client


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "meta"}
    return body["data"]


def test_totals_without_groups(api: TestClient) -> None:
    (total,) = rows(api.get(URL, params={"measures": "amount__sum,quantity__sum,amount__avg"}))
    exact = sum(Decimal(amount) for _, _, amount, _, _ in SALES if amount is not None)
    assert total["count"] == 6
    assert Decimal(total["amount__sum"]) == exact == Decimal("10000000000004.24")
    assert total["amount__sum"] == "10000000000004.24"
    assert total["quantity__sum"] == 14
    assert total["amount__avg"] == str((exact / 5).quantize(Decimal("0.01")))


def test_groups_by_an_enum_with_every_measure(api: TestClient) -> None:
    result = rows(
        api.get(
            URL,
            params={
                "group_by": "status",
                "measures": "count,amount__sum,amount__avg,amount__min,amount__max,"
                "quantity__avg,sold_on__min,sold_on__max",
            },
        )
    )
    by_status = {r["status"]: r for r in result}
    assert [r["status"] for r in result] == ["draft", "paid", "void"]
    paid = by_status["paid"]
    assert paid["count"] == 3
    assert paid["amount__sum"] == "10000000000000.29"
    assert paid["amount__min"] == "0.10"
    assert paid["amount__max"] == "9999999999999.99"
    assert paid["quantity__avg"] == "2.00"
    assert (paid["sold_on__min"], paid["sold_on__max"]) == ("2026-01-15", "2026-02-01")
    draft = by_status["draft"]
    assert draft["count"] == 2
    assert draft["amount__avg"] == "5.00"  # the average of the values there are
    assert by_status["void"]["amount__sum"] == "-1.05"


def test_date_buckets_and_an_empty_group(api: TestClient) -> None:
    months = rows(api.get(URL, params={"group_by": "sold_on__month", "measures": "amount__sum"}))
    assert [(r["sold_on__month"], r["count"]) for r in months] == [
        ("2025-12", 1),
        ("2026-01", 2),
        ("2026-02", 2),
        (None, 1),
    ]
    assert months[1]["amount__sum"] == "0.30"
    assert months[3]["amount__sum"] == "0.00"  # S5 has no amount: a sum of nothing is zero
    years = rows(api.get(URL, params={"group_by": "sold_on__year,status"}))
    assert {(r["sold_on__year"], r["status"]): r["count"] for r in years}[("2026", "paid")] == 3
    created = rows(api.get(URL, params={"group_by": "created_at__day"}))
    assert len(created) == 1
    assert created[0]["count"] == 6


def test_filters_q_and_references_as_in_lists(api: TestClient) -> None:
    acme = api.headers["x-acme"]
    paid = rows(api.get(URL, params={"status": "paid", "amount__lt": "1"}))
    assert paid == [{"count": 2}]
    assert rows(api.get(URL, params={"q": "note S3"})) == [{"count": 1}]
    assert rows(api.get(URL, params={"customer__name": "Acme"})) == [{"count": 2}]
    by_customer = rows(api.get(URL, params={"group_by": "customer", "sort": "-count"}))
    assert by_customer == [{"customer": None, "count": 4}, {"customer": acme, "count": 2}]


def test_sort_and_limit(api: TestClient) -> None:
    response = api.get(
        URL,
        params={
            "group_by": "status",
            "measures": "amount__sum",
            "sort": "-amount__sum",
            "limit": 2,
        },
    )
    result = rows(response)
    assert [r["status"] for r in result] == ["paid", "draft"]
    assert response.json()["meta"] == {
        "group_by": ["status"],
        "measures": ["count", "amount__sum"],
        "limit": 2,
        "truncated": True,
    }
    by_avg = rows(
        api.get(
            URL, params={"group_by": "status", "measures": "amount__avg", "sort": "amount__avg"}
        )
    )
    assert [r["status"] for r in by_avg] == ["void", "draft", "paid"]
    assert (
        api.get(URL, params={"group_by": "status", "limit": 3}).json()["meta"]["truncated"] is False
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"group_by": "nope"}, "has no such field"),
        ({"group_by": "note"}, "has no groups"),
        ({"group_by": "status__month"}, "only date and datetime"),
        ({"group_by": "sold_on__week"}, "unknown bucket"),
        ({"group_by": "status,status"}, "twice"),
        ({"measures": "status__sum"}, "integer and decimal"),
        ({"measures": "amount__total"}, "is not a measure"),
        ({"measures": "amount"}, "is not a measure"),
        ({"sort": "amount"}, "sort by a group or a measure"),
        ({"offset": "5"}, "does not apply to _aggregate"),
        ({"fields": "status"}, "does not apply to _aggregate"),
        ({"limit": "0"}, "between"),
        ({"amount__gt": "lots"}, "amount__gt"),
        ({"group_by": ""}, None),
    ],
)
def test_bad_parameters_are_400(
    api: TestClient, params: dict[str, str], message: str | None
) -> None:
    response = api.get(URL, params=params)
    if message is None:  # an empty group_by is no grouping
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert message in response.json()["detail"]


def test_other_methods_and_unknown_entities(api: TestClient) -> None:
    assert api.post(URL, json={}).status_code == 405
    assert api.get("/api/v1/shop/nothing/_aggregate").status_code == 404
