"""An ``update`` action may set read-only fields (no client writes them; a rule that runs
as system may): a deal keeps the status of the order it became. A rule limited by
``run_as`` may not; computed fields stay out of reach. On SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from metadata import DefinitionError, load_project
from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

SHOP = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/deal.yaml": """\
fields:
  title:        {type: string, required: true}
  order_status: {type: enum, values: [open, shipped], read_only: true}
  shipped_on:   {type: date, read_only: true}
""",
    "entities/order.yaml": """\
fields:
  deal:   {type: reference, to: deal, required: true}
  status: {type: enum, values: [open, shipped], default: open}
  locked: {type: boolean, default: false}
""",
    "rules/order.yaml": """\
- name: deal_follows
  on: [create, update]
  when: "changed('status') and not locked"
  actions:
    - update:
        entity: deal
        id: "{{ deal }}"
        values:
          order_status: "{{ status }}"
          shipped_on: "{{ today() if status == 'shipped' else none }}"
- name: clerk_may_not
  on: update
  when: "changed('locked') and locked"
  run_as: clerk
  actions:
    - update: {entity: deal, id: "{{ deal }}", values: {order_status: open}}
""",
    "roles.yaml": """\
roles:
  clerk:
    grants:
      - {entity: deal, actions: [read, update]}
      - {entity: order, actions: [read, create, update]}
""",
}
URL = "/api/v1/shop"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "shop", SHOP)
    with instance.client() as client:
        yield client


def post(client: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{URL}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def deal_of(client: TestClient, deal: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = client.get(f"{URL}/deal/{deal['id']}").json()["data"]
    return data


def test_a_rule_keeps_a_read_only_field(client: TestClient) -> None:
    deal = post(client, "deal", {"title": "Big"})
    order = post(client, "order", {"deal": deal["id"]})
    assert deal_of(client, deal)["order_status"] == "open"
    assert deal_of(client, deal)["shipped_on"] is None
    shipped = client.patch(f"{URL}/order/{order['id']}", json={"status": "shipped"})
    assert shipped.status_code == 200, shipped.text
    assert deal_of(client, deal)["order_status"] == "shipped"
    assert deal_of(client, deal)["shipped_on"] is not None
    refused = client.patch(f"{URL}/deal/{deal['id']}", json={"order_status": "open"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "read_only"


def test_a_rule_with_run_as_may_not_set_a_read_only_field(client: TestClient) -> None:
    deal = post(client, "deal", {"title": "Big"})
    order = post(client, "order", {"deal": deal["id"]})
    refused = client.patch(f"{URL}/order/{order['id']}", json={"locked": True})
    assert refused.status_code == 403, refused.text
    assert "read-only fields are set by rules that run as system" in refused.json()["detail"]
    stored = client.get(f"{URL}/order/{order['id']}").json()["data"]
    assert stored["locked"] is False


def test_computed_fields_and_creates_still_refuse_read_only_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = dict(SHOP)
    files["entities/deal.yaml"] += '  size: {type: integer, computed: "1"}\n'
    files["rules/order.yaml"] = """\
- name: bad
  on: update
  actions:
    - update: {entity: deal, id: "{{ deal }}", values: {size: 2}}
    - create: {entity: deal, values: {title: x, order_status: open}}
"""
    for relative, text in files.items():
        path = Path("packs/shop") / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(DefinitionError) as raised:
        load_project(["shop"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        "packs/shop/rules/order.yaml:4:57: field 'size' of shop.deal cannot be set by an "
        "action (read-only, computed, autonumber or line items)",
        "packs/shop/rules/order.yaml:5:49: field 'order_status' of shop.deal cannot be set "
        "by an action (read-only, computed, autonumber or line items)",
    ]
