"""Validation rules from a pack's rules/ and from a customization, enforced on every write
path of the API, on SQLite and PostgreSQL: all failing rules at once, at their fields, and
nothing stored when one fails."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

OPPORTUNITY = """\
label: Opportunity
fields:
  name:        {type: string, required: true, max_length: 120}
  code:        {type: string, unique: true}
  amount:      {type: decimal, precision: 14, scale: 2, min: 0}
  stage:
    type: enum
    values: [prospecting, proposal, closed_won, closed_lost]
    default: prospecting
  probability: {type: integer, min: 0, max: 100}
  close_date:  {type: date}
  lost_reason: {type: string, required_if: "stage == 'closed_lost'"}
  lines:       {type: children, entity: opportunity_line}
"""
LINE = """\
fields:
  product:  {type: string, required: true}
  quantity: {type: integer, required: true, min: 1}
"""
RULES = """\
# rules of sales.opportunity
- name: close_date_not_past
  when: "stage not in ['closed_won', 'closed_lost']"
  assert: "close_date is none or close_date >= today()"
  field: close_date
  message: Close date cannot be in the past
- name: won_is_certain
  assert: "stage != 'closed_won' or probability == 100"
  field: probability
  message: A won opportunity has probability 100
- name: no_reopening
  on: update
  when: "old.stage in ['closed_won', 'closed_lost'] and changed('stage')"
  assert: "false"
  field: stage
  message: A closed opportunity cannot be reopened
- name: keep_won
  on: delete
  assert: "stage != 'closed_won'"
  message: Won opportunities are kept
- name: numbered_after_insert
  on: create
  assert: "id is not none and name != 'Reject me'"
  message: Runs on the inserted record
- name: at_most_ten_units
  assert: "lines | sum(attribute='quantity') <= 10"
  field: lines
  message: At most 10 units per opportunity
"""
OVERLAY = """\
rules:
  - name: big_deals_need_a_date   # ours, not the pack's
    assert: "amount is none or amount < 100000 or close_date is not none"
    field: close_date
    message: Deals of 100,000 or more need a close date
"""
URL = "/api/v1/sales/opportunity"


@pytest.fixture
def sales(db_url: str, tmp_path: Path) -> Instance:
    pack = tmp_path / "packs" / "sales"
    (pack / "entities").mkdir(parents=True)
    (pack / "rules").mkdir()
    (pack / "module.yaml").write_text("name: sales\nversion: 1.0.0\n")
    (pack / "entities" / "opportunity.yaml").write_text(OPPORTUNITY)
    (pack / "entities" / "opportunity_line.yaml").write_text(LINE)
    (pack / "rules" / "opportunity.yaml").write_text(RULES)
    instance = write_instance(
        tmp_path / "acme",
        db_url,
        ["sales"],
        [tmp_path / "packs"],
        customizations="./custom",
        reload_interval=0,
    )
    overlay = instance.path / "custom" / "sales" / "opportunity.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text(OVERLAY)
    instance.migrate()
    return instance


@pytest.fixture
def client(sales: Instance) -> Iterator[TestClient]:
    with sales.client() as client:
        yield client


def rule_errors(response: Any) -> dict[str, tuple[str, str]]:
    """Failing rules by name: (field, message)."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert all(e["code"] == "rule" for e in errors), errors
    return {e["rule"]: (e["field"], e["message"]) for e in errors}


def count(client: TestClient) -> int:
    return len(client.get(URL).json()["data"])


def test_a_write_that_keeps_every_rule_is_stored(client: TestClient) -> None:
    response = client.post(
        URL,
        json={
            "name": "Fleet renewal",
            "amount": "250000.00",
            "stage": "closed_won",
            "probability": 100,
            "close_date": "2020-01-31",
            "lines": [{"product": "Truck", "quantity": 4}],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["stage"] == "closed_won"


def test_every_failing_rule_is_reported_at_its_field_and_nothing_is_stored(
    client: TestClient,
) -> None:
    response = client.post(
        URL,
        json={
            "name": "Too much",
            "amount": "150000",
            "stage": "closed_won",
            "probability": 60,
            "lines": [{"product": "Van", "quantity": 6}, {"product": "Car", "quantity": 5}],
        },
    )
    assert rule_errors(response) == {
        "won_is_certain": ("probability", "A won opportunity has probability 100"),
        "at_most_ten_units": ("lines", "At most 10 units per opportunity"),
        "big_deals_need_a_date": ("close_date", "Deals of 100,000 or more need a close date"),
    }
    past = client.post(URL, json={"name": "Late", "close_date": "2001-05-01"})
    assert rule_errors(past) == {
        "close_date_not_past": ("close_date", "Close date cannot be in the past")
    }
    assert count(client) == 0


def test_update_rules_see_the_old_record(client: TestClient) -> None:
    created = client.post(
        URL, json={"name": "Deal", "stage": "closed_lost", "lost_reason": "price"}
    ).json()["data"]
    item = f"{URL}/{created['id']}"
    reopened = client.patch(item, json={"stage": "proposal"})
    assert rule_errors(reopened) == {
        "no_reopening": ("stage", "A closed opportunity cannot be reopened")
    }
    assert client.get(item).json()["data"]["stage"] == "closed_lost"
    assert client.get(item).json()["data"]["version"] == 1
    renamed = client.patch(item, json={"name": "Deal (lost)"})
    assert renamed.status_code == 200, renamed.text


def test_delete_rules_and_upsert_and_bulk_paths(client: TestClient) -> None:
    won = client.post(
        URL, json={"name": "Won", "code": "W-1", "stage": "closed_won", "probability": 100}
    ).json()["data"]
    refused = client.delete(f"{URL}/{won['id']}")
    assert rule_errors(refused) == {"keep_won": ("", "Won opportunities are kept")}
    assert client.get(f"{URL}/{won['id']}").status_code == 200

    bulk = client.post(
        f"{URL}/_bulk",
        json={"data": [{"name": "Fine"}, {"name": "Bad", "stage": "closed_won", "probability": 5}]},
    )
    assert bulk.status_code == 422, bulk.text
    (error,) = bulk.json()["errors"]
    assert (error["index"], error["rule"]) == (1, "won_is_certain")
    assert count(client) == 1

    upsert = client.put(f"{URL}/by/code/W-1", json={"name": "Won", "stage": "proposal"})
    assert rule_errors(upsert) == {
        "no_reopening": ("stage", "A closed opportunity cannot be reopened")
    }
    assert client.get(f"{URL}/{won['id']}").json()["data"]["stage"] == "closed_won"


def test_required_if_applies_to_the_record_as_it_will_be_stored(client: TestClient) -> None:
    missing = client.post(URL, json={"name": "Lost", "stage": "closed_lost"})
    assert missing.status_code == 422, missing.text
    assert missing.json()["errors"] == [
        {
            "field": "lost_reason",
            "code": "required",
            "message": "is required when stage == 'closed_lost'",
        }
    ]
    open_deal = client.post(URL, json={"name": "Open"}).json()["data"]
    item = f"{URL}/{open_deal['id']}"
    closing = client.patch(item, json={"stage": "closed_lost"})
    assert closing.status_code == 422, closing.text
    assert closing.json()["errors"][0]["field"] == "lost_reason"
    assert client.get(item).json()["data"]["stage"] == "prospecting"
    closed = client.patch(item, json={"stage": "closed_lost", "lost_reason": "budget"})
    assert closed.status_code == 200, closed.text
    cleared = client.patch(item, json={"lost_reason": None})
    assert cleared.status_code == 422, cleared.text


def test_rules_are_described_in_the_metadata(client: TestClient) -> None:
    entities = client.get("/api/v1/_meta/entities").json()["data"]
    (opportunity,) = [e for e in entities if e["name"] == "sales.opportunity"]
    rules = {r["name"]: r for r in opportunity["rules"]}
    assert list(rules) == [
        "close_date_not_past",
        "won_is_certain",
        "no_reopening",
        "keep_won",
        "numbered_after_insert",
        "at_most_ten_units",
        "big_deals_need_a_date",
    ]
    assert rules["keep_won"] == {
        "name": "keep_won",
        "on": ["delete"],
        "when": None,
        "assert": "stage != 'closed_won'",
        "field": None,
        "message": "Won opportunities are kept",
        "actions": [],
    }


def test_a_rule_reading_the_assigned_id_runs_after_the_insert_and_undoes_it(
    client: TestClient,
) -> None:
    before = count(client)
    refused = client.post(URL, json={"name": "Reject me"})
    assert rule_errors(refused) == {"numbered_after_insert": ("", "Runs on the inserted record")}
    assert count(client) == before
    assert client.post(URL, json={"name": "Accept me"}).status_code == 201


SHOP = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/order.yaml": """\
fields:
  ref:   {type: string, required: true, unique: true}
  note:  {type: string}
  lines: {type: children, entity: order_line}
""",
    "entities/order_line.yaml": """\
fields:
  product: {type: string, required: true}
  qty:     {type: integer, required: true, min: 1}
  price:   {type: decimal, precision: 10, scale: 2}
  number:  {type: autonumber, format: "L-{####}"}
""",
    "rules/order.yaml": """\
- name: no_rush
  assert: "note != 'rush'"
  field: note
  message: Rush orders are not taken
""",
    "rules/order_line.yaml": """\
- name: at_most_1000_units
  assert: "qty <= 1000"
  field: qty
  message: At most 1000 units per line
- name: bulk_is_priced
  when: "qty > 100"
  assert: "price is not none"
  field: price
  message: A line of more than 100 units needs a price
- name: no_shrinking
  on: update
  assert: "qty >= old.qty"
  field: qty
  message: A line's quantity cannot go down
- name: numbered_lines
  on: create
  assert: "number is not none and product != 'forbidden'"
  message: Runs on the line as stored
""",
}
ORDERS = "/api/v1/shop/order"


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "shop", SHOP)
    with instance.client() as client:
        yield client


def line_errors(response: Any) -> list[tuple[str, str, int | None]]:
    assert response.status_code == 422, response.text
    return sorted((e["field"], e["rule"], e.get("index")) for e in response.json()["errors"])


def test_rules_of_line_items_run_on_every_write_of_their_parent(shop: TestClient) -> None:
    lines = [
        {"product": "bolts", "qty": 5000, "price": "0.10"},
        {"product": "nuts", "qty": 2},
        {"product": "washers", "qty": 200},
        {"product": "forbidden", "qty": 1},
    ]
    created = shop.post(ORDERS, json={"ref": "O-1", "note": "rush", "lines": lines})
    assert line_errors(created) == [  # every failure at once, the parent's with its lines'
        ("lines[0].qty", "at_most_1000_units", None),
        ("lines[2].price", "bulk_is_priced", None),
        ("lines[3]", "numbered_lines", None),
        ("note", "no_rush", None),
    ]
    assert shop.get(ORDERS).json()["data"] == []  # nothing written

    bulk = shop.post(f"{ORDERS}/_bulk", json=[{"ref": "O-2"}, {"ref": "O-3", "lines": lines[:1]}])
    assert line_errors(bulk) == [("lines[0].qty", "at_most_1000_units", 1)]
    upserted = shop.put(f"{ORDERS}/by/ref/O-4", json={"lines": lines[:2]})
    assert line_errors(upserted) == [("lines[0].qty", "at_most_1000_units", None)]
    assert shop.get(ORDERS).json()["data"] == []

    good = [{"product": "bolts", "qty": 500, "price": "0.10"}, {"product": "nuts", "qty": 2}]
    order = shop.post(ORDERS, json={"ref": "O-1", "lines": good})
    assert order.status_code == 201, order.text
    url = f"{ORDERS}/{order.json()['data']['id']}"
    stored = order.json()["data"]["lines"]
    assert [line["number"] for line in stored] == ["L-0001", "L-0002"]

    first, second = ({k: line[k] for k in ("id", "product", "qty", "price")} for line in stored)
    kept = [{**first, "qty": 400}, second, lines[0]]
    patched = shop.patch(url, json={"lines": kept})
    assert line_errors(patched) == [
        ("lines[0].qty", "no_shrinking", None),
        ("lines[2].qty", "at_most_1000_units", None),
    ]
    upserted = shop.put(f"{ORDERS}/by/ref/O-1", json={"lines": [lines[2]]})
    assert line_errors(upserted) == [("lines[0].price", "bulk_is_priced", None)]
    after = shop.get(url).json()["data"]
    assert [(line["qty"], line["number"]) for line in after["lines"]] == [
        (500, "L-0001"),
        (2, "L-0002"),
    ]
    assert after["version"] == 1

    grown = shop.patch(url, json={"lines": [{**first, "qty": 900}, {"product": "pins", "qty": 1}]})
    assert grown.status_code == 200, grown.text
    assert [(line["qty"], line["number"]) for line in grown.json()["data"]["lines"]] == [
        (900, "L-0001"),  # a kept line keeps its number
        (1, "L-0003"),
    ]
    unrelated = shop.patch(url, json={"note": "fine"})  # no lines sent: none judged
    assert unrelated.status_code == 200, unrelated.text
