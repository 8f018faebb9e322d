"""What the screens send and show for defaults and references, on SQLite and PostgreSQL: a
new record's or a new line's input left empty lets the engine compute its ``default``
(today's date, the product's rate), where an emptied input of a stored line still clears
it; a kanban card and a dashboard's bars show a reference by its record's title; an enum's
value reads with spaces for its underscores (the value sent stays as defined)."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
SHOP = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/product.yaml": """\
title: name
fields:
  name:          {type: string, required: true, unique: true}
  standard_rate: {type: decimal, scale: 2}
""",
    "entities/order.yaml": """\
title: ref
fields:
  ref:    {type: string, required: true}
  placed: {type: date, required: true, default: "{{ today() }}"}
  stage:  {type: enum, values: [open, on_hold], default: open}
  buyer:  {type: reference, to: product}
  lines:  {type: children, entity: order_line}
""",
    "entities/order_line.yaml": """\
fields:
  product: {type: reference, to: product, required: true}
  qty:     {type: integer, required: true, min: 1}
  rate:    {type: decimal, scale: 2, default: "{{ product.standard_rate }}"}
""",
    "views/order.yaml": "kanban:\n  group_by: stage\n  card: [buyer]\n",
    "dashboards/orders.yaml": """\
label: Orders
tiles:
  - {label: Orders by product, entity: order, type: bar, group_by: buyer}
""",
}


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "shop", SHOP)
    token = issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(instance, "ada", PASSWORD) as client:
        client.app.state.test_token = token  # type: ignore[attr-defined]
        yield client


def _stored(client: TestClient, order: str) -> dict[str, Any]:
    token = client.app.state.test_token  # type: ignore[attr-defined]
    response = client.get(
        f"/api/v1/shop/order/{order}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _made(client: TestClient, path: str, data: dict[str, str]) -> str:
    token = csrf_of(client.get(f"/app/shop/{path}/new"))
    response = client.post(
        f"/app/shop/{path}/new", data={"csrf_token": token, **data}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    found = re.search(r"/(\d+)\?saved=1$", response.headers["location"])
    assert found, response.headers["location"]
    return found.group(1)


def test_empty_inputs_of_new_records_and_lines_take_their_defaults(shop: TestClient) -> None:
    chair = _made(shop, "product", {"name": "Chair", "standard_rate": "40.00"})
    order = _made(
        shop,
        "order",
        {
            "ref": "A-1",
            "placed": "",  # left empty: today
            "buyer": chair,
            "lines[0].product": chair,
            "lines[0].qty": "2",
            "lines[0].rate": "",  # left empty: the product's rate
            "lines[1].product": chair,
            "lines[1].qty": "1",
            "lines[1].rate": "35.50",  # typed: kept
        },
    )
    record = _stored(shop, order)
    assert record["placed"] == dt.datetime.now(dt.UTC).date().isoformat()
    assert [line["rate"] for line in record["lines"]] == ["40.00", "35.50"]

    # a stored line's emptied rate is cleared, as any emptied input of a stored record
    form = shop.get(f"/app/shop/order/{order}")
    first, second = (line["id"] for line in record["lines"])
    saved = shop.post(
        f"/app/shop/order/{order}",
        data={
            "csrf_token": csrf_of(form),
            "version": str(record["version"]),
            "ref": "A-1",
            "placed": record["placed"],
            "lines[0].id": first,
            "lines[0].product": chair,
            "lines[0].qty": "2",
            "lines[0].rate": "",
            "lines[1].id": second,
            "lines[1].product": chair,
            "lines[1].qty": "1",
            "lines[1].rate": "35.50",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    record = _stored(shop, order)
    assert [line["rate"] for line in record["lines"]] == [None, "35.50"]


def test_kanban_cards_and_dashboard_bars_show_a_references_title(shop: TestClient) -> None:
    chair = _made(shop, "product", {"name": "Chair", "standard_rate": "40.00"})
    _made(shop, "order", {"ref": "A-1", "buyer": chair})
    _made(shop, "order", {"ref": "A-2", "buyer": chair})

    board = shop.get("/app/shop/order/kanban")
    assert board.status_code == 200
    assert board.text.count("Buyer: Chair") == 2
    assert f"Buyer: {chair}<" not in board.text
    assert '<option value="on_hold">On hold</option>' in board.text  # the card's move
    assert re.search(r'<h2 id="col-2">On hold <span class="count">0</span>', board.text)
    form = shop.get("/app/shop/order/new").text
    assert '<option value="on_hold">On hold</option>' in form

    dashboard = shop.get("/app/_dashboards/shop/orders")
    assert dashboard.status_code == 200
    assert ">Chair</text>" in dashboard.text
    assert "<title>Chair: 2</title>" in dashboard.text
