"""A reference to a line record (a delivery line pointing at the order line it delivers)
is judged by the read grant of the line's parent: line entities have no grants of their
own, they are read with their parent. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import bearer, pack_instance

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Instance

PACK = {
    "module.yaml": 'name: flow\nversion: "1.0.0"\n',
    "entities/order.yaml": """\
fields:
  ref:    {type: string, required: true}
  region: {type: string}
  lines:  {type: children, entity: order_line}
""",
    "entities/order_line.yaml": "fields:\n  item: {type: string, required: true}\n",
    "entities/shipment.yaml": """\
fields:
  note:  {type: string}
  lines: {type: children, entity: shipment_line}
""",
    "entities/shipment_line.yaml": """\
fields:
  order_line: {type: reference, to: order_line, required: true}
""",
    "roles.yaml": """\
roles:
  shipper:
    grants:
      - {entity: shipment, actions: [read, create]}
      - {entity: order, actions: [read]}
  north_shipper:
    grants:
      - {entity: shipment, actions: [read, create]}
      - {entity: order, actions: [read], where: "region == 'north'"}
  blind_shipper:
    grants:
      - {entity: shipment, actions: [read, create]}
""",
}
API = "/api/v1/flow"


@pytest.fixture
def flow(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "flow", PACK)


def test_a_line_is_pointed_at_with_its_parents_read_grant(flow: Instance) -> None:
    with flow.client() as api:
        north = api.post(
            f"{API}/order", json={"ref": "N", "region": "north", "lines": [{"item": "a"}]}
        ).json()["data"]
        south = api.post(
            f"{API}/order", json={"ref": "S", "region": "south", "lines": [{"item": "b"}]}
        ).json()["data"]
        north_line, south_line = north["lines"][0]["id"], south["lines"][0]["id"]

        def ship(role: str, line: str) -> tuple[int, str]:
            headers = bearer(flow.token(f"u_{role}", (role,)))
            body = {"lines": [{"order_line": line}]}
            response = api.post(f"{API}/shipment", json=body, headers=headers)
            field = response.json().get("errors", [{}])[0].get("field", "")
            return response.status_code, field

        assert ship("shipper", north_line) == (201, "")
        assert ship("shipper", south_line) == (201, "")
        assert ship("north_shipper", north_line) == (201, "")
        assert ship("north_shipper", south_line) == (422, "lines[0].order_line")
        assert ship("blind_shipper", north_line) == (422, "lines[0].order_line")
        assert ship("shipper", "999999") == (422, "lines[0].order_line")
        assert ship("north_shipper", "999999") == (422, "lines[0].order_line")
