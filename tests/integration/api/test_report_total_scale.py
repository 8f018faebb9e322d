"""A report's total is rounded, half up, to the scale of the figures it is computed from
(2 for amounts of a scale-2 field, 3 for weights of a scale-3 one, 2 when they are whole
numbers: counts), not printed with the 28 digits of a division; and zero is never negative
(``x * -1``, ``sign: -1`` of nothing). Through HTTP (JSON and CSV) on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

API = "/api/v1/shop"
FILES = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/entry.yaml": """\
fields:
  kind: {type: enum, values: [income, expense, refund]}
  amount: {type: decimal, scale: 2}
  weight: {type: decimal, precision: 12, scale: 3}
""",
    "roles.yaml": "roles:\n  clerk:\n    grants:\n      - {entity: entry, actions: [read]}\n",
    "reports/result.yaml": """\
roles: [clerk]
sections:
  - {name: income, entity: entry, filter: {kind: income}, measure: amount__sum}
  - {name: expense, entity: entry, filter: {kind: expense}, measure: amount__sum, sign: -1}
  - name: refunds
    entity: entry
    filter: {kind: refund}
    group_by: kind
    measure: amount__sum
    sign: -1
  - {name: entries, entity: entry, measure: count}
  - {name: incomes, entity: entry, filter: {kind: income}, measure: count}
totals:
  - {name: share, value: expense / income}
  - {name: third, value: income / 3}
  - {name: nothing, value: refunds * -1}
  - {name: rate, value: incomes / entries}
  - {name: both, value: entries + incomes}
""",
    "reports/weights.yaml": """\
roles: [clerk]
sections:
  - {name: weight, entity: entry, measure: weight__sum}
totals:
  - {name: third, value: weight / 3}
  - {name: back, value: third * 3 - weight}
""",
}


def run(client: TestClient, name: str) -> dict[str, Any]:
    answer = client.get(f"{API}/_reports/{name}")
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    return {
        **{s["name"]: s["total"]["amount"] for s in data["sections"]},
        **{t["name"]: t["values"]["amount"] for t in data["totals"]},
    }


def test_totals_are_to_the_scale_of_their_figures(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "shop", FILES)
    with instance.client() as client:
        for kind, amount, weight in [
            ("income", "1000.00", "1.000"),
            ("income", "700.00", "0.001"),
            ("expense", "-950.00", "0.000"),
            ("refund", "0.00", "0.000"),
        ]:
            body = {"kind": kind, "amount": amount, "weight": weight}
            assert client.post(f"{API}/entry", json=body).status_code == 201
        assert run(client, "result") == {
            "income": "1700.00",
            "expense": "950.00",
            "refunds": "0.00",  # sign: -1 of 0.00: not -0.00
            "entries": 4,
            "incomes": 2,
            "share": "0.56",  # 950 / 1700 = 0.5588235294117647058823529412
            "third": "566.67",  # half up
            "nothing": "0.00",
            "rate": "0.50",  # counts: two decimals
            "both": 6,
        }
        assert run(client, "weights") == {
            "weight": "1.001",
            "third": "0.334",
            "back": "0.001",  # the rounded third, as shown, times 3
        }
        lines = client.get(f"{API}/_reports/result").json()["data"]["sections"][2]["lines"]
        assert [line["values"]["amount"] for line in lines] == ["0.00"]
        csv = client.get(f"{API}/_reports/result?format=csv")
        assert csv.status_code == 200
        assert "0.5588" not in csv.text
        assert "-0.00" not in csv.text
        assert "0.56" in csv.text
