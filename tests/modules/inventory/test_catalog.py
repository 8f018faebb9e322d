"""Items, warehouses, price lists and roles of the inventory pack through HTTP, on SQLite
and PostgreSQL: the item's stock rolled up from its bins, items below their reorder level
listed and counted on the dashboard, price lists with one price per item, the account's
price list (the pack's overlay onto contacts.account), postings-only bins and ledger, what
each role may do, and hostile input answered without a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from runtime.app import load_definitions
from tests.conftest import bearer
from tests.modules.inventory.conftest import API, CONTACTS

if TYPE_CHECKING:
    from tests.conftest import Instance
    from tests.modules.inventory.conftest import Stock


def test_item_stock_is_the_sum_of_its_bins_and_reorder_is_visible(
    inventory: Instance, stock: Stock
) -> None:
    settings = inventory.settings
    site = stock.warehouse("Site", group=True)
    main, annex = stock.warehouse("Main", site), stock.warehouse("Annex", site)
    chair = stock.item("CHAIR", reorder_level="10", standard_rate="49.00")
    lamp = stock.item("LAMP", reorder_level="2")
    stock.item("SERVICE", is_stock_item=False, reorder_level="5")
    assert stock.get("warehouse", main)["parent"] == site
    stock.submitted(
        "receipt",
        {"item": chair, "quantity": "6", "rate": "20", "target_warehouse": main},
        {"item": chair, "quantity": "3", "rate": "20", "target_warehouse": annex},
        {"item": lamp, "quantity": "5", "rate": "8", "target_warehouse": main},
    )
    record = stock.get("item", chair)
    assert (record["actual_qty"], record["reserved_qty"], record["available_qty"]) == (
        "9.000",
        "0.000",
        "9.000",
    )
    assert record["stock_value"] == "180.00"
    assert record["below_reorder"] is True
    assert stock.get("item", lamp)["below_reorder"] is False

    below = stock.rows("item", below_reorder="true")
    assert [r["sku"] for r in below] == ["CHAIR"]  # the service keeps no stock
    stock.submitted("receipt", {"item": chair, "quantity": "1"}, target_warehouse=annex)
    assert stock.rows("item", below_reorder="true") == []  # 10 is not below 10
    stock.submitted("issue", {"item": lamp, "quantity": "4"}, source_warehouse=main)
    assert [r["sku"] for r in stock.rows("item", below_reorder="true")] == ["LAMP"]

    # the dashboard's tile counts them the way the web UI does (an aggregate with its filter)
    board = load_definitions(settings).dashboards["inventory.stock"]
    tile = next(t for t in board.tiles if t.label == "Items below reorder level")
    assert (tile.entity, tile.measure) == ("inventory.item", "count")
    counted = stock.client.get(f"{API}/item/_aggregate", params=dict(tile.filter))
    assert counted.status_code == 200, counted.text
    assert counted.json()["data"][0]["count"] == 1


def test_price_lists_and_the_accounts_price_list(stock: Stock) -> None:
    chair = stock.item("CHAIR")
    retail = stock.made("price_list", {"name": "Retail", "currency": "EUR"})
    trade = stock.made("price_list", {"name": "Trade", "currency": "USD", "buying": True})
    price = stock.made("item_price", {"price_list": retail, "item": chair, "rate": "49.00"})
    assert stock.get("item_price", price)["code"] == "Retail / CHAIR"
    twice = stock.client.post(
        f"{API}/item_price", json={"price_list": retail, "item": chair, "rate": "45.00"}
    )
    assert twice.status_code == 409, twice.text
    stock.made("item_price", {"price_list": trade, "item": chair, "rate": "30.00"})
    bad = stock.client.post(f"{API}/price_list", json={"name": "X", "currency": "euro"})
    assert bad.status_code == 422

    account = stock.made("account", {"name": "Acme", "price_list": trade}, base=CONTACTS)
    assert stock.get("account", account, base=CONTACTS)["price_list"] == trade
    listed = stock.client.get(f"{CONTACTS}/account", params={"price_list": trade}).json()
    assert [a["name"] for a in listed["data"]] == ["Acme"]
    assert stock.client.delete(f"{API}/price_list/{trade}").status_code == 204
    assert stock.get("account", account, base=CONTACTS)["price_list"] is None


def test_bins_and_the_ledger_are_written_only_by_postings(stock: Stock) -> None:
    chair, main = stock.item("CHAIR"), stock.warehouse("Main")
    receipt = stock.submitted("receipt", {"item": chair, "quantity": "2"}, target_warehouse=main)
    bin_id = stock.bin(chair, main)["id"]
    body = {"item": chair, "warehouse": main, "actual_qty": "100"}
    assert stock.client.post(f"{API}/bin", json=body).status_code == 405
    assert stock.client.patch(f"{API}/bin/{bin_id}", json=body).status_code == 405
    ledger = {**body, "posting_date": "2026-12-01", "qty_change": "5"}
    assert stock.client.post(f"{API}/stock_ledger_entry", json=ledger).status_code == 405
    frozen = stock.client.patch(f"{API}/stock_entry/{receipt}", json={"purpose": "issue"})
    assert frozen.status_code == 409
    assert frozen.json()["code"] == "submitted"
    noted = stock.client.patch(f"{API}/stock_entry/{receipt}", json={"remarks": "checked"})
    assert noted.status_code == 200, noted.text


def test_each_role_does_its_part(inventory: Instance, stock: Stock) -> None:
    chair, main = stock.item("CHAIR"), stock.warehouse("Main")
    client = stock.client
    clerk = bearer(inventory.token("wes", ("warehouse_clerk",)))
    viewer = bearer(inventory.token("vic", ("inventory_viewer",)))
    pricer = bearer(inventory.token("pia", ("pricing_manager",)))
    body = {"purpose": "receipt", "target_warehouse": main}
    body["lines"] = [{"item": chair, "quantity": "3", "rate": "10"}]  # type: ignore[assignment]
    assert client.post(f"{API}/stock_entry", json=body, headers=viewer).status_code == 403
    draft = client.post(f"{API}/stock_entry", json=body, headers=clerk)
    assert draft.status_code == 201, draft.text
    entry = draft.json()["data"]["id"]
    assert client.post(f"{API}/stock_entry/{entry}/_submit", headers=viewer).status_code == 403
    assert client.post(f"{API}/stock_entry/{entry}/_submit", headers=clerk).status_code == 200
    assert client.get(f"{API}/bin", headers=viewer).json()["data"][0]["actual_qty"] == "3.000"
    item = client.get(f"{API}/item/{chair}", headers=pricer).json()["data"]
    assert "stock_value" not in item
    assert client.post(f"{API}/price_list", json={"name": "P"}, headers=pricer).status_code == 201
    assert client.post(f"{API}/price_list", json={"name": "Q"}, headers=clerk).status_code == 403
    assert (
        client.post(f"{API}/bom", json={"name": "B", "item": chair}, headers=clerk).status_code
        == 403
    )
    assert client.post(f"{API}/stock_entry/{entry}/_cancel", headers=clerk).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"sku": "A\x00B", "name": "nul"},
        {"sku": "HUGE", "name": "huge", "standard_rate": "1e400"},
        {"sku": "HUGE2", "name": "huge", "reorder_level": "99999999999999999999999"},
        {"sku": ["A"], "name": "wrong type"},
        {"sku": "NEG", "name": "negative", "standard_rate": "-1"},
    ],
)
def test_hostile_items_are_refused_cleanly(stock: Stock, body: dict[str, object]) -> None:
    response = stock.client.post(f"{API}/item", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"]


def test_a_lone_surrogate_is_refused_cleanly(stock: Stock) -> None:
    body = b'{"sku": "A\\ud800", "name": "lone surrogate"}'
    response = stock.client.post(
        f"{API}/item", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"]


def test_hostile_stock_entries_are_refused_cleanly(stock: Stock) -> None:
    chair, main = stock.item("CHAIR"), stock.warehouse("Main")
    for line, more in [
        ({"item": chair, "quantity": "1e30"}, {}),
        ({"item": chair, "quantity": "NaN"}, {}),
        ({"item": chair, "quantity": "1", "rate": "-5"}, {}),
        ({"item": "99999999999999999999", "quantity": "1"}, {}),
        ({"item": chair, "quantity": "1"}, {"posting_date": "10000-01-01"}),
        ({"item": chair, "quantity": "1"}, {"purpose": "theft"}),
        ({"item": chair, "quantity": "1"}, {"bom": "1\x00"}),
    ]:
        body = {"purpose": "receipt", "target_warehouse": main, "lines": [line], **more}
        response = stock.client.post(f"{API}/stock_entry", json=body)
        assert response.status_code == 422, (body, response.text)
    big = stock.entry("receipt", {"item": chair, "quantity": "999999999999.999", "rate": "9e11"})
    response = stock.act(big)
    assert response.status_code in (409, 422), response.text  # too big for the bin's value
    assert stock.get("stock_entry", big)["docstatus"] == "draft"


def test_groups_services_and_bills_of_materials_are_checked(stock: Stock) -> None:
    site = stock.warehouse("Site", group=True)
    main = stock.warehouse("Main", site)
    client = stock.client
    under_a_store = client.post(f"{API}/warehouse", json={"name": "Shelf", "parent": main})
    assert under_a_store.status_code == 422
    assert under_a_store.json()["errors"][0]["field"] == "parent"
    assert client.patch(f"{API}/warehouse/{site}", json={"parent": site}).status_code == 422

    chair = stock.item("CHAIR")
    service = stock.item("FITTING", is_stock_item=False)
    for body in (
        {
            "purpose": "receipt",
            "target_warehouse": site,
            "lines": [{"item": chair, "quantity": "1"}],
        },
        {
            "purpose": "receipt",
            "lines": [{"item": chair, "quantity": "1", "target_warehouse": site}],
        },
        {
            "purpose": "receipt",
            "target_warehouse": main,
            "lines": [{"item": service, "quantity": "1"}],
        },
    ):
        response = client.post(f"{API}/stock_entry", json=body)
        assert response.status_code == 422, response.text

    own = {"name": "Loop", "item": chair, "lines": [{"item": chair, "quantity": "1"}]}
    assert client.post(f"{API}/bom", json=own).status_code == 422
    assert client.post(f"{API}/bom", json={"name": "Empty", "item": chair}).status_code == 422
    leg = stock.item("LEG")
    bom = stock.made(
        "bom", {"name": "Chair", "item": chair, "lines": [{"item": leg, "quantity": "4"}]}
    )
    with_lines = stock.entry(
        "manufacture",
        {"item": leg, "quantity": "1"},
        bom=bom,
        quantity="1",
        source_warehouse=main,
        target_warehouse=main,
    )
    response = stock.act(with_lines)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "lines"
