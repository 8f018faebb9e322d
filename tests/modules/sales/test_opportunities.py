"""Opportunities: amount from the lines (rates from the item), probability by stage unless
set by hand, weighted amount; the kanban by stage and the forecast by month and stage.
Quotations: available stock on each line, and a submit refused at the line that asks for
more than the stock available then. Through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.modules.sales.conftest import SALES, Api
from tests.support.identity import issue_token
from tests.support.rollups import assert_no_drift
from tests.support.web import signed_in

PASSWORD = "a long passphrase for tests"

if TYPE_CHECKING:
    from tests.conftest import Instance


def opportunity(api: Api, account: str, **fields: Any) -> dict[str, Any]:
    return api.made(f"{SALES}/opportunity", {"name": "Deal", "account": account, **fields})


def test_amount_probability_and_weighted_amount(api: Api) -> None:
    bolt = api.item("bolt", "2.50")
    nut = api.item("nut", "0.40")
    acme = api.account("Acme")
    deal = opportunity(
        api,
        acme["id"],
        lines=[
            {"item": bolt["id"], "quantity": "100"},
            {"item": nut["id"], "quantity": "250", "rate": "0.30"},
        ],
    )
    assert [line["rate"] for line in deal["lines"]] == ["2.50", "0.30"]
    assert [line["amount"] for line in deal["lines"]] == ["250.00", "75.00"]
    assert (deal["amount"], deal["stage"], deal["probability"]) == ("325.00", "prospecting", 10)
    assert deal["weighted_amount"] == "32.50"
    assert (deal["order_status"], deal["payment_status"]) == ("none", "none")
    moved = api.changed(f"{SALES}/opportunity/{deal['id']}", {"stage": "proposal"})
    assert (moved["probability"], moved["weighted_amount"]) == (50, "162.50")
    by_hand = api.changed(
        f"{SALES}/opportunity/{deal['id']}", {"stage": "negotiation", "probability": 65}
    )
    assert (by_hand["probability"], by_hand["weighted_amount"]) == (65, "211.25")
    lost = api.client.patch(f"{SALES}/opportunity/{deal['id']}", json={"stage": "closed_lost"})
    assert lost.status_code == 422
    assert lost.json()["errors"][0]["field"] == "lost_reason"
    won = api.changed(f"{SALES}/opportunity/{deal['id']}", {"stage": "closed_won"})
    assert (won["probability"], won["weighted_amount"]) == (100, "325.00")
    empty = opportunity(api, acme["id"])
    refused = api.client.patch(f"{SALES}/opportunity/{empty['id']}", json={"stage": "closed_won"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "lines"


def test_kanban_and_forecast_by_month_and_stage(api: Api) -> None:
    bolt = api.item("bolt", "10.00")
    acme = api.account("Acme")
    plan = [
        ("prospecting", "2026-03-10", "10"),
        ("proposal", "2026-03-20", "20"),
        ("proposal", "2026-04-05", "5"),
        ("negotiation", "2026-04-15", "10"),
    ]
    for stage, close, quantity in plan:
        opportunity(
            api,
            acme["id"],
            stage=stage,
            expected_close=close,
            lines=[{"item": bolt["id"], "quantity": quantity}],
        )
    board = api.get(f"{SALES}/opportunity/_aggregate", group_by="stage", measures="count")
    assert {row["stage"]: row["count"] for row in board} == {
        "prospecting": 1,
        "proposal": 2,
        "negotiation": 1,
    }
    matrix = api.get(
        f"{SALES}/opportunity/_aggregate",
        group_by="expected_close__month,stage",
        measures="amount__sum,weighted_amount__sum",
        sort="expected_close__month,stage",
    )
    cells = {
        (r["expected_close__month"], r["stage"]): (r["amount__sum"], r["weighted_amount__sum"])
        for r in matrix
    }
    assert cells == {
        ("2026-03", "prospecting"): ("100.00", "10.00"),
        ("2026-03", "proposal"): ("200.00", "100.00"),
        ("2026-04", "proposal"): ("50.00", "25.00"),
        ("2026-04", "negotiation"): ("100.00", "80.00"),
    }


def test_the_board_and_the_forecast_dashboard_render(sales: Instance) -> None:
    issue_token(sales.settings.database_url, "maria", ("sales_manager",), password=PASSWORD)
    with sales.client() as client:
        api = Api(client)
        bolt = api.item("bolt", "10.00")
        acme = api.account("Acme")
        for stage, close in [("proposal", "2026-03-20"), ("negotiation", "2026-04-15")]:
            opportunity(
                api,
                acme["id"],
                stage=stage,
                expected_close=close,
                lines=[{"item": bolt["id"], "quantity": "10"}],
            )
    with signed_in(sales, "maria", PASSWORD) as browser:
        board = browser.get("/app/sales/opportunity/kanban")
        assert board.status_code == 200, board.text
        assert "Amount: 100.00" in board.text
        page = browser.get("/app/_dashboards/sales/forecast")
        assert page.status_code == 200, page.text
        rows = re.findall(r"<tr><td>([\w -]+)</td><td class=\"num\">([\d.,]+)</td></tr>", page.text)
        assert ("2026-03", "50.00") in rows  # weighted: 100 at 50 %
        assert ("2026-04", "80.00") in rows  # 100 at 80 %
        assert ("Proposal", "100.00") in rows  # an enum by its label
        grid = re.findall(r'<table class="pivot">(.*?)</table>', page.text, re.DOTALL)
        assert len(grid) == 1
        heads = re.findall(r'<th scope="col">([^<]+)</th>', grid[0])
        assert heads == ["Expected close", "Proposal", "Negotiation"]
        cells = re.findall(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', grid[0])
        assert [(m, re.findall(r'<td class="num">([^<]*)</td>', tds)) for m, tds in cells] == [
            ("2026-03", ["50.00", ""]),
            ("2026-04", ["", "80.00"]),
        ]


def test_quotation_shows_availability_and_refuses_at_the_line(api: Api, sales: Instance) -> None:
    bolt = api.item("bolt", "2.00")
    nut = api.item("nut", "1.00")
    service = api.item("install", "90.00", is_stock_item=False)
    main = api.warehouse("Main")
    spare = api.warehouse("Spare")
    api.stock_in(bolt["id"], main["id"], "30")
    api.stock_in(bolt["id"], spare["id"], "20")
    api.stock_in(nut["id"], main["id"], "5")
    acme = api.account("Acme")
    deal = opportunity(api, acme["id"], stage="qualification")
    quote = api.made(
        f"{SALES}/quotation",
        {
            "account": acme["id"],
            "opportunity": deal["id"],
            "valid_till": "2099-12-31",
            "lines": [
                {"item": bolt["id"], "quantity": "40"},
                {"item": nut["id"], "quantity": "5"},
                {"item": service["id"], "quantity": "3"},
            ],
        },
    )
    assert [line["available_qty"] for line in quote["lines"]] == ["50.000", "5.000", None]
    assert quote["total"] == "355.00"
    assert quote["number"] is None  # numbered at submit
    # stock of the nut leaves after the line was written: the stored copy is stale
    issue = api.made(
        "/api/v1/inventory/stock_entry",
        {
            "purpose": "issue",
            "posting_date": "2026-01-06",
            "lines": [{"item": nut["id"], "source_warehouse": main["id"], "quantity": "2"}],
        },
    )
    issued = api.client.post(f"/api/v1/inventory/stock_entry/{issue['id']}/_submit")
    assert issued.status_code == 200, issued.text
    refused = api.client.post(f"{SALES}/quotation/{quote['id']}/_submit")
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "insufficient_stock"
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("lines[1].quantity", "insufficient_stock")
    ]
    assert api.get(f"{SALES}/quotation/{quote['id']}")["docstatus"] == "draft"
    lines = [
        {"id": line["id"], "item": line["item"], "quantity": q}
        for line, q in zip(quote["lines"], ["40", "3", "3"], strict=True)
    ]
    fixed = api.changed(f"{SALES}/quotation/{quote['id']}", {"lines": lines})
    assert [line["available_qty"] for line in fixed["lines"]] == ["50.000", "3.000", None]
    submitted = api.client.post(f"{SALES}/quotation/{quote['id']}/_submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["data"]["number"].startswith("QTN-")
    moved = api.get(f"{SALES}/opportunity/{deal['id']}")
    assert (moved["stage"], moved["probability"]) == ("proposal", 50)
    assert_no_drift(sales.settings)


def test_line_rates_come_from_the_accounts_price_list(api: Api) -> None:
    bolt = api.item("bolt", "2.50")
    nut = api.item("nut", "0.40")
    trade = api.made("/api/v1/inventory/price_list", {"name": "Trade"})
    api.made(
        "/api/v1/inventory/item_price",
        {"price_list": trade["id"], "item": bolt["id"], "rate": "1.90"},
    )
    dealer = api.made("/api/v1/contacts/account", {"name": "Dealer", "price_list": trade["id"]})
    walk_in = api.account("Walk-in")
    lines = [
        {"item": bolt["id"], "quantity": "10"},
        {"item": nut["id"], "quantity": "10"},
        {"item": bolt["id"], "quantity": "1", "rate": "3.00"},
    ]
    deal = opportunity(api, dealer["id"], lines=lines)
    assert [line["rate"] for line in deal["lines"]] == ["1.90", "0.40", "3.00"]
    assert deal["amount"] == "26.00"
    quote = api.made(f"{SALES}/quotation", {"account": dealer["id"], "lines": lines[:1]})
    assert quote["lines"][0]["rate"] == "1.90"
    retail = opportunity(api, walk_in["id"], lines=lines[:1])
    assert retail["lines"][0]["rate"] == "2.50"
