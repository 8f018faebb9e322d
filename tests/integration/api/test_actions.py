"""Rule actions: create and update run in the write's transaction, cascade through the
rules of the records they write, roll everything back when any part fails, and stop a
cycle with an error instead of hanging; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: sales\nversion: 1.0.0\n",
    "entities/opportunity.yaml": """\
fields:
  name:        {type: string, required: true}
  customer:    {type: string}
  amount:      {type: decimal, scale: 2}
  stage:       {type: enum, values: [open, closed_won, closed_lost], default: open}
  probability: {type: integer, default: 10}
  pings:       {type: integer, default: 0}
""",
    "entities/order.yaml": """\
fields:
  opportunity: {type: reference, to: opportunity, required: true}
  customer:    {type: string}
  amount:      {type: decimal, scale: 2}
  note:        {type: text}
""",
    "entities/activity.yaml": """\
fields:
  subject: {type: string, required: true}
""",
    "rules/opportunity.yaml": """\
- name: won_creates_order
  on: update
  when: "changed('stage') and stage == 'closed_won'"
  actions:
    - create:
        entity: order
        values:
          opportunity: "{{ id }}"
          customer: "{{ customer }}"
          amount: "{{ amount }}"
          note: "Won {{ name }} for {{ customer }}"
    - update: {values: {probability: 100}}
- name: ping_pong
  on: update
  when: "changed('pings') and pings > 0"
  actions:
    - update: {values: {pings: "{{ pings + 1 }}"}}
""",
    "rules/order.yaml": """\
- name: order_needs_an_amount
  assert: "amount is not none and amount > 0"
  field: amount
  message: An order needs an amount
- name: order_is_logged
  on: create
  actions:
    - create: {entity: activity, values: {subject: "Order {{ id }}: {{ note }}"}}
""",
}
URL = "/api/v1/sales"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    pack = tmp_path / "packs" / "sales"
    for relative, text in FILES.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text)
    instance: Instance = write_instance(
        tmp_path / "acme", db_url, ["sales"], [tmp_path / "packs"], reload_interval=0
    )
    instance.migrate()
    with instance.client() as client:
        yield client


def records(client: TestClient, entity: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = client.get(f"{URL}/{entity}").json()["data"]
    return data


def test_won_opportunity_creates_an_order_which_logs_an_activity(client: TestClient) -> None:
    deal = client.post(
        f"{URL}/opportunity", json={"name": "Fleet", "customer": "Acme", "amount": "1200.50"}
    ).json()["data"]
    won = client.patch(f"{URL}/opportunity/{deal['id']}", json={"stage": "closed_won"})
    assert won.status_code == 200, won.text
    assert won.json()["data"]["probability"] == 100  # the update action, seen in the answer
    assert won.json()["data"]["version"] == 3
    (order,) = records(client, "order")
    assert (order["opportunity"], order["customer"], order["amount"]) == (
        deal["id"],
        "Acme",
        "1200.50",
    )
    assert order["note"] == "Won Fleet for Acme"
    (activity,) = records(client, "activity")
    assert activity["subject"] == f"Order {order['id']}: Won Fleet for Acme"

    again = client.patch(f"{URL}/opportunity/{deal['id']}", json={"name": "Fleet 2"})
    assert again.status_code == 200
    assert len(records(client, "order")) == 1  # stage did not change: no second order


def test_a_failing_action_rolls_the_whole_write_back(client: TestClient) -> None:
    deal = client.post(f"{URL}/opportunity", json={"name": "Free", "customer": "Acme"}).json()
    item = f"{URL}/opportunity/{deal['data']['id']}"
    refused = client.patch(item, json={"stage": "closed_won"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "field": "amount",
            "code": "rule",
            "message": "An order needs an amount",
            "rule": "order_needs_an_amount",
        }
    ]
    after = client.get(item).json()["data"]
    assert (after["stage"], after["probability"], after["version"]) == ("open", 10, 1)
    assert records(client, "order") == []
    assert records(client, "activity") == []


def test_a_cycle_is_stopped_with_an_error_and_rolled_back(client: TestClient) -> None:
    deal = client.post(f"{URL}/opportunity", json={"name": "Loop"}).json()["data"]
    item = f"{URL}/opportunity/{deal['id']}"
    looped = client.patch(item, json={"pings": 1})
    assert looped.status_code == 422, looped.text
    (error,) = looped.json()["errors"]
    assert error["code"] == "rule_cycle"
    assert error["message"] == (
        "rules trigger each other in a cycle: "
        f"sales.opportunity#{deal['id']}:ping_pong -> sales.opportunity#{deal['id']}:ping_pong"
    )
    assert client.get(item).json()["data"]["pings"] == 0
