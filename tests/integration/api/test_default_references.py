"""A reference filled by a default (a return's order, taken from the delivery it returns;
an order's address, from its customer) reads the record it points at, like one sent: the
record's computed fields, rules and later defaults traverse it on create, on every create
path (POST, _bulk, upserts); on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PACK = {
    "module.yaml": 'name: ship\nversion: "1.0.0"\n',
    "entities/address.yaml": "fields:\n  city: {type: string}\n",
    "entities/customer.yaml": """\
fields:
  name:    {type: string, required: true, unique: true}
  address: {type: reference, to: address}
""",
    "entities/order.yaml": """\
fields:
  ref:      {type: string, required: true, unique: true}
  customer: {type: reference, to: customer, required: true}
  address:  {type: reference, to: address, default: "{{ customer.address }}"}
  city:     {type: string, computed: "address.city if address else none"}
""",
    "entities/parcel.yaml": """\
fields:
  ref:       {type: string, unique: true}
  order:     {type: reference, to: order, default: "{{ returns.order }}"}
  returns:   {type: reference, to: parcel}
  customer:  {type: reference, to: customer, computed: "order.customer"}
  city:      {type: string, default: "{{ order.city }}"}
""",
    "rules/parcel.yaml": """\
- name: has_an_order
  assert: "order is not none and order.ref != ''"
  field: order
  message: a parcel ships an order
""",
}
API = "/api/v1/ship"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with pack_instance(tmp_path, db_url, "ship", PACK).client() as client:
        yield client


def made(api: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_a_defaulted_reference_is_traversed_on_create(api: TestClient) -> None:
    hamburg = made(api, "address", {"city": "Hamburg"})
    acme = made(api, "customer", {"name": "Acme", "address": hamburg["id"]})
    order = made(api, "order", {"ref": "O-1", "customer": acme["id"]})
    assert (order["address"], order["city"]) == (hamburg["id"], "Hamburg")

    first = made(api, "parcel", {"ref": "P-1", "order": order["id"]})
    assert (first["customer"], first["city"]) == (acme["id"], "Hamburg")
    back = made(api, "parcel", {"ref": "P-2", "returns": first["id"]})
    assert (back["order"], back["customer"], back["city"]) == (order["id"], acme["id"], "Hamburg")

    bulk = api.post(f"{API}/parcel/_bulk", json=[{"returns": first["id"]}, {"returns": back["id"]}])
    assert bulk.status_code in (200, 201), bulk.text
    for parcel in api.get(f"{API}/parcel?ref__isnull=true").json()["data"]:
        assert (parcel["order"], parcel["customer"], parcel["city"]) == (
            order["id"],
            acme["id"],
            "Hamburg",
        )
    upsert = api.put(f"{API}/parcel/by/ref/P-3", json={"returns": first["id"]})
    assert upsert.status_code in (200, 201), upsert.text
    assert upsert.json()["data"]["customer"] == acme["id"]


def test_a_default_pointing_nowhere_is_no_reference(api: TestClient) -> None:
    acme = made(api, "customer", {"name": "Acme"})
    order = made(api, "order", {"ref": "O-1", "customer": acme["id"]})
    assert (order["address"], order["city"]) == (None, None)
    response = api.post(f"{API}/parcel", json={"ref": "P-1"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "order"
