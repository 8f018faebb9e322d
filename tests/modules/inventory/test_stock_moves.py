"""Stock entries through the HTTP API, on SQLite and PostgreSQL: receipts, issues refused
at the line when the stock is not there (409 insufficient_stock, nothing written),
transfers posting two rows per line, manufacture from a bill of materials, cancels that
reverse everything, and the moving-average value of each bin."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from tests.modules.inventory.conftest import API

if TYPE_CHECKING:
    from tests.modules.inventory.conftest import Stock


def test_receipt_issue_and_insufficient_stock_at_the_line(stock: Stock) -> None:
    bolt, nut = stock.item("BOLT"), stock.item("NUT")
    main = stock.warehouse("Main")
    stock.submitted(
        "receipt",
        {"item": bolt, "quantity": "10", "rate": "2"},
        {"item": nut, "quantity": "5", "rate": "1"},
        target_warehouse=main,
    )
    refused = stock.entry(
        "issue",
        {"item": bolt, "quantity": "3"},
        {"item": nut, "quantity": "6"},
        source_warehouse=main,
    )
    response = stock.act(refused)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["code"] == "insufficient_stock"
    assert [e["field"] for e in problem["errors"]] == ["lines[1].quantity"]
    assert stock.get("stock_entry", refused)["docstatus"] == "draft"
    assert stock.qty_value_rate(bolt, main) == (10, 20, 2)  # nothing of the refusal stayed
    assert len(stock.rows("stock_ledger_entry")) == 2

    issue = stock.submitted("issue", {"item": bolt, "quantity": "4"}, source_warehouse=main)
    rows = stock.rows("stock_ledger_entry", voucher_id=issue)
    assert [(r["qty_change"], r["qty_after"], r["voucher_type"]) for r in rows] == [
        ("-4.000", "6.000", "inventory.stock_entry")
    ]
    assert stock.get("item", bolt)["actual_qty"] == "6.000"
    number = stock.get("stock_entry", issue)["number"]
    assert number.startswith("STE-2026-")


def test_a_line_needs_a_positive_quantity_and_its_warehouse(stock: Stock) -> None:
    bolt = stock.item("BOLT")
    main = stock.warehouse("Main")
    for quantity in ("0", "-1"):
        response = stock.client.post(
            f"{API}/stock_entry",
            json={"purpose": "receipt", "lines": [{"item": bolt, "quantity": quantity}]},
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "lines[0].quantity"
    no_target = stock.entry("receipt", {"item": bolt, "quantity": "1"})
    response = stock.act(no_target)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "target_warehouse"
    empty = stock.entry("issue", source_warehouse=main)
    assert stock.act(empty).status_code == 422


def test_transfer_posts_out_and_in_at_the_same_value(stock: Stock) -> None:
    chair = stock.item("CHAIR")
    site = stock.warehouse("Site", group=True)
    main, annex = stock.warehouse("Main", site), stock.warehouse("Annex", site)
    stock.submitted(
        "receipt", {"item": chair, "quantity": "10", "rate": "30"}, target_warehouse=main
    )
    stock.submitted(
        "receipt", {"item": chair, "quantity": "10", "rate": "36"}, target_warehouse=main
    )
    transfer = stock.submitted(
        "transfer",
        {"item": chair, "quantity": "4"},
        source_warehouse=main,
        target_warehouse=annex,
    )
    rows = stock.rows("stock_ledger_entry", voucher_id=transfer, sort="id")
    assert [(r["warehouse"], r["qty_change"], r["stock_value_difference"]) for r in rows] == [
        (main, "-4.000", "-132.00"),
        (annex, "4.000", "132.00"),
    ]
    assert stock.qty_value_rate(chair, main) == (16, Decimal("528.00"), 33)
    assert stock.qty_value_rate(chair, annex) == (4, Decimal("132.00"), 33)

    too_many = stock.entry(
        "transfer", {"item": chair, "quantity": "5"}, source_warehouse=annex, target_warehouse=main
    )
    response = stock.act(too_many)
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "lines[0].quantity"

    assert stock.act(transfer, "cancel").status_code == 200
    assert stock.qty_value_rate(chair, main) == (20, Decimal("660.00"), 33)
    assert stock.qty_value_rate(chair, annex)[:2] == (0, 0)


def test_valuation_after_two_rates_an_issue_and_cancels(stock: Stock) -> None:
    lamp = stock.item("LAMP")
    main = stock.warehouse("Main")
    stock.submitted("receipt", {"item": lamp, "quantity": "10", "rate": "5"}, target_warehouse=main)
    second = stock.submitted(
        "receipt", {"item": lamp, "quantity": "10", "rate": "7"}, target_warehouse=main
    )
    assert stock.qty_value_rate(lamp, main) == (20, Decimal("120.00"), 6)
    issue = stock.submitted("issue", {"item": lamp, "quantity": "5"}, source_warehouse=main)
    row = stock.rows("stock_ledger_entry", voucher_id=issue)[0]
    assert (row["stock_value_difference"], row["valuation_rate"]) == ("-30.00", "6.000000")
    assert stock.qty_value_rate(lamp, main) == (15, Decimal("90.00"), 6)

    # cancelling the issue, then the second receipt, takes the bin back exactly
    assert stock.act(issue, "cancel").status_code == 200
    assert stock.qty_value_rate(lamp, main) == (20, Decimal("120.00"), 6)
    assert stock.act(second, "cancel").status_code == 200
    assert stock.qty_value_rate(lamp, main) == (10, Decimal("50.00"), 5)
    reversal = stock.rows("stock_ledger_entry", voucher_id=second, is_reversal="true")[0]
    assert (reversal["qty_change"], reversal["stock_value_difference"]) == ("-10.000", "-70.00")

    # a receipt without a rate comes in at the bin's rate; emptying the bin takes its value
    stock.submitted("receipt", {"item": lamp, "quantity": "2"}, target_warehouse=main)
    assert stock.qty_value_rate(lamp, main) == (12, Decimal("60.00"), 5)
    stock.submitted("issue", {"item": lamp, "quantity": "12"}, source_warehouse=main)
    assert stock.qty_value_rate(lamp, main) == (0, 0, 5)  # keeps its last rate
    assert stock.get("item", lamp)["stock_value"] == "0.00"


def test_manufacture_from_a_bill_of_materials(stock: Stock) -> None:
    top, frame, screw = stock.item("TOP"), stock.item("FRAME"), stock.item("SCREW")
    desk = stock.item("DESK")
    stores, goods = stock.warehouse("Stores"), stock.warehouse("Finished goods")
    stock.submitted(
        "receipt",
        {"item": top, "quantity": "10", "rate": "80"},
        {"item": frame, "quantity": "10", "rate": "110"},
        {"item": screw, "quantity": "2", "rate": "4.50"},
        target_warehouse=stores,
    )
    bom = stock.made(
        "bom",
        {
            "name": "Desk",
            "item": desk,
            "quantity": "2",  # the lines make two desks
            "lines": [
                {"item": top, "quantity": "2"},
                {"item": frame, "quantity": "2"},
                {"item": screw, "quantity": "0.4"},
            ],
        },
    )
    made = stock.submitted(
        "manufacture", bom=bom, quantity="3", source_warehouse=stores, target_warehouse=goods
    )
    assert stock.qty_value_rate(top, stores)[:2] == (7, Decimal("560.00"))
    assert stock.qty_value_rate(frame, stores)[:2] == (7, Decimal("770.00"))
    assert stock.qty_value_rate(screw, stores)[:2] == (Decimal("1.4"), Decimal("6.30"))
    # the desks are worth exactly what was consumed: 240 + 330 + 2.70
    assert stock.qty_value_rate(desk, goods) == (3, Decimal("572.70"), Decimal("190.9"))
    rows = stock.rows("stock_ledger_entry", voucher_id=made)
    assert sum(Decimal(r["stock_value_difference"]) for r in rows) == 0

    too_many = stock.entry(
        "manufacture", bom=bom, quantity="8", source_warehouse=stores, target_warehouse=goods
    )
    response = stock.act(too_many)
    assert response.status_code == 409, response.text
    assert response.json()["errors"][0]["field"] == "quantity"
    no_bom = stock.entry("manufacture", quantity="1", source_warehouse=stores)
    assert stock.act(no_bom).status_code == 422

    assert stock.act(made, "cancel").status_code == 200
    assert stock.qty_value_rate(top, stores)[:2] == (10, Decimal("800.00"))
    assert stock.qty_value_rate(desk, goods)[:2] == (0, 0)
