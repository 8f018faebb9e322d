"""The quote_to_cash pack across sales, orders and finance, through HTTP on SQLite and
PostgreSQL: a won opportunity becomes a draft sales order with its lines and the customer
gets a welcome e-mail (delivered to a real SMTP receiver); the opportunity's order_status
and payment_status follow its order (submit, delivery, billing, cancel) and its invoices
(partial and full payment); no rollup drifts."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import REPO, Instance, write_instance
from tests.support.fixture_records import migrate_with_fixtures
from tests.support.receivers import Mailbox, smtp_server
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

SALES = "/api/v1/sales"
ORDERS = "/api/v1/orders"
FINANCE = "/api/v1/finance"
INVENTORY = "/api/v1/inventory"
CONTACTS = "/api/v1/contacts"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def instance(db_url: str, tmp_path: Path, mailbox: Mailbox) -> Instance:
    instance = write_instance(
        tmp_path / "i",
        db_url,
        ["quote_to_cash"],
        [REPO / "modules"],
        reload_interval=0,
        smtp={"host": "127.0.0.1", "port": mailbox.port, "from": "sales@shop.test"},
        outbox={"backoff_seconds": 0.2, "sweep_seconds": 0.2, "max_attempts": 3},
    )
    migrate_with_fixtures(instance)
    return instance


class Flow:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def made(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post(path, json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.patch(path, json=body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def move(self, path: str, action: str = "submit") -> dict[str, Any]:
        response = self.client.post(f"{path}/_{action}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def opportunity(self, path: str) -> dict[str, Any]:
        data: dict[str, Any] = self.get(path)
        return data


@pytest.fixture
def flow(instance: Instance) -> Iterator[Flow]:
    with instance.client() as client:
        yield Flow(client)
    assert_no_drift(instance.settings)


def setup_stock(flow: Flow) -> tuple[str, str, str]:
    bolt = flow.made(f"{INVENTORY}/item", {"sku": "BOLT", "name": "Bolt", "standard_rate": "2.00"})
    nut = flow.made(f"{INVENTORY}/item", {"sku": "NUT", "name": "Nut", "standard_rate": "0.50"})
    main = flow.made(f"{INVENTORY}/warehouse", {"name": "Main"})
    entry = flow.made(
        f"{INVENTORY}/stock_entry",
        {
            "purpose": "receipt",
            "posting_date": "2026-01-05",
            "lines": [
                {
                    "item": bolt["id"],
                    "target_warehouse": main["id"],
                    "quantity": "100",
                    "rate": "1",
                },
                {
                    "item": nut["id"],
                    "target_warehouse": main["id"],
                    "quantity": "100",
                    "rate": "0.2",
                },
            ],
        },
    )
    flow.move(f"{INVENTORY}/stock_entry/{entry['id']}")
    return bolt["id"], nut["id"], main["id"]


def won_deal(flow: Flow, email: str | None = "buyer@acme.test") -> dict[str, Any]:
    bolt, nut, main = setup_stock(flow)
    acme = flow.made(f"{CONTACTS}/account", {"name": "Acme", "type": "customer", "email": email})
    deal = flow.made(
        f"{SALES}/opportunity",
        {
            "name": "Acme fleet",
            "account": acme["id"],
            "expected_close": "2099-03-31",
            "lines": [
                {"item": bolt, "quantity": "10", "warehouse": main},
                {"item": nut, "quantity": "40", "rate": "0.45", "warehouse": main},
            ],
        },
    )
    assert deal["amount"] == "38.00"
    return flow.patch(f"{SALES}/opportunity/{deal['id']}", {"stage": "closed_won"})


def test_won_makes_a_draft_order_with_its_lines_and_a_welcome_email(
    flow: Flow, mailbox: Mailbox
) -> None:
    won = won_deal(flow)
    order = flow.get(f"{ORDERS}/sales_order/{won['sales_order']}")
    assert (order["docstatus"], order["opportunity"], order["account"]) == (
        "draft",
        won["id"],
        won["account"],
    )
    assert [(line["quantity"], line["rate"], line["amount"]) for line in order["lines"]] == [
        ("10.000", "2.00", "20.00"),
        ("40.000", "0.45", "18.00"),
    ]
    assert (order["total"], order["delivery_date"]) == ("38.00", "2099-03-31")
    assert (won["order_status"], won["payment_status"], won["draft_orders"]) == (
        "draft",
        "none",
        1,
    )
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "buyer@acme.test"
    assert message["Subject"] == "Welcome aboard, Acme"
    assert "Total: 38.00" in message.get_content()
    assert "10.000 x Bolt at 2.00" in message.get_content()
    events = flow.client.get("/api/v1/_outbox").json()["data"]
    assert [e["rule"] for e in events] == ["won_welcomes_the_customer"]
    # winning again changes nothing: one order, one e-mail
    flow.patch(f"{SALES}/opportunity/{won['id']}", {"stage": "negotiation"})
    flow.patch(f"{SALES}/opportunity/{won['id']}", {"stage": "closed_won"})
    assert len(flow.get(f"{ORDERS}/sales_order")) == 1


def test_the_won_order_carries_the_latest_submitted_quotation(flow: Flow) -> None:
    bolt, _nut, main = setup_stock(flow)
    acme = flow.made(f"{CONTACTS}/account", {"name": "Acme"})
    deal = flow.made(
        f"{SALES}/opportunity",
        {
            "name": "Bolts",
            "account": acme["id"],
            "lines": [{"item": bolt, "quantity": 5, "warehouse": main}],
        },
    )

    def quotation(quantity: int, *, submit: bool) -> dict[str, Any]:
        made = flow.made(
            f"{SALES}/quotation",
            {
                "account": acme["id"],
                "opportunity": deal["id"],
                "lines": [{"item": bolt, "quantity": quantity}],
            },
        )
        return flow.move(f"{SALES}/quotation/{made['id']}") if submit else made

    first = quotation(4, submit=True)
    second = quotation(5, submit=True)
    quotation(6, submit=False)  # a draft is no quotation the customer saw
    # an unrelated deal's quotation is not taken either
    other = flow.made(f"{SALES}/opportunity", {"name": "Other", "account": acme["id"]})
    unrelated = flow.made(
        f"{SALES}/quotation",
        {
            "account": acme["id"],
            "opportunity": other["id"],
            "lines": [{"item": bolt, "quantity": 1}],
        },
    )
    flow.move(f"{SALES}/quotation/{unrelated['id']}")
    won = flow.patch(f"{SALES}/opportunity/{deal['id']}", {"stage": "closed_won"})
    order = flow.get(f"{ORDERS}/sales_order/{won['sales_order']}")
    assert order["quotation"] == second["id"] != first["id"]
    # a deal won without a submitted quotation makes an order without one
    bare = flow.made(
        f"{SALES}/opportunity",
        {
            "name": "Bare",
            "account": acme["id"],
            "lines": [{"item": bolt, "quantity": 1, "warehouse": main}],
        },
    )
    bare = flow.patch(f"{SALES}/opportunity/{bare['id']}", {"stage": "closed_won"})
    assert flow.get(f"{ORDERS}/sales_order/{bare['sales_order']}")["quotation"] is None


def test_the_won_order_takes_the_deals_reference(flow: Flow) -> None:
    bolt, _nut, main = setup_stock(flow)
    acme = flow.made(f"{CONTACTS}/account", {"name": "Acme"})
    lines = [{"item": bolt, "quantity": 1, "warehouse": main}]
    deal = flow.made(
        f"{SALES}/opportunity",
        {"name": "Keyed", "reference": "CRM-42", "account": acme["id"], "lines": lines},
    )
    won = flow.patch(f"{SALES}/opportunity/{deal['id']}", {"stage": "closed_won"})
    order = flow.get(f"{ORDERS}/sales_order/{won['sales_order']}")
    assert order["reference"] == "CRM-42"
    # an import keyed on reference finds it
    assert [o["id"] for o in flow.get(f"{ORDERS}/sales_order", reference="CRM-42")] == [order["id"]]
    # a deal whose key another order already holds: the win is refused, nothing written
    flow.made(f"{ORDERS}/sales_order", {"account": acme["id"], "reference": "CRM-43"})
    other = flow.made(
        f"{SALES}/opportunity",
        {"name": "Taken", "reference": "CRM-43", "account": acme["id"], "lines": lines},
    )
    refused = flow.client.patch(f"{SALES}/opportunity/{other['id']}", json={"stage": "closed_won"})
    assert refused.status_code == 409, refused.text
    assert flow.get(f"{SALES}/opportunity/{other['id']}")["sales_order"] is None
    assert len(flow.get(f"{ORDERS}/sales_order")) == 2


def test_a_refused_order_refuses_the_win(flow: Flow) -> None:
    bolt, _nut, _main = setup_stock(flow)
    acme = flow.made(f"{CONTACTS}/account", {"name": "Acme"})
    deal = flow.made(
        f"{SALES}/opportunity",
        {"name": "No warehouse", "account": acme["id"], "lines": [{"item": bolt, "quantity": 1}]},
    )
    response = flow.client.patch(f"{SALES}/opportunity/{deal['id']}", json={"stage": "closed_won"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "lines"
    assert flow.get(f"{ORDERS}/sales_order") == []
    assert flow.get(f"{SALES}/opportunity/{deal['id']}")["stage"] == "prospecting"
    assert flow.client.get("/api/v1/_outbox").json()["data"] == []


def test_order_and_payment_status_follow_the_order_and_its_invoices(flow: Flow) -> None:
    won = won_deal(flow, email=None)
    opportunity = f"{SALES}/opportunity/{won['id']}"
    order_path = f"{ORDERS}/sales_order/{won['sales_order']}"
    order = flow.move(order_path)
    assert flow.get(opportunity)["order_status"] == "to_deliver_and_bill"
    assert flow.get(opportunity)["ordered_amount"] == "38.00"
    bolt_line, nut_line = order["lines"]
    # deliver everything
    delivery = flow.made(
        f"{ORDERS}/delivery",
        {
            "sales_order": order["id"],
            "posting_date": "2026-03-05",
            "lines": [
                {
                    "item": line["item"],
                    "quantity": line["quantity"],
                    "warehouse": line["warehouse"],
                    "sales_order_line": line["id"],
                }
                for line in (bolt_line, nut_line)
            ],
        },
    )
    flow.move(f"{ORDERS}/delivery/{delivery['id']}")
    assert flow.get(opportunity)["order_status"] == "to_bill"
    # bill it
    invoice = flow.made(
        f"{FINANCE}/sales_invoice",
        {
            "account": won["account"],
            "sales_order": order["id"],
            "posting_date": "2026-03-06",
            "lines": [
                {
                    "item": line["item"],
                    "quantity": line["quantity"],
                    "rate": line["rate"],
                    "sales_order_line": line["id"],
                }
                for line in (bolt_line, nut_line)
            ],
        },
    )
    invoice = flow.move(f"{FINANCE}/sales_invoice/{invoice['id']}")
    seen = flow.get(opportunity)
    assert (seen["order_status"], seen["payment_status"]) == ("completed", "unpaid")
    assert (seen["invoiced_amount"], seen["outstanding_amount"]) == ("38.00", "38.00")
    # pay part, then the rest
    payment_body = {
        "account": won["account"],
        "posting_date": "2026-03-10",
        "amount": "10.00",
        "allocations": [{"invoice": invoice["id"], "amount": "10.00"}],
    }
    partial = flow.made(f"{FINANCE}/payment", payment_body)
    flow.move(f"{FINANCE}/payment/{partial['id']}")
    seen = flow.get(opportunity)
    assert (seen["payment_status"], seen["outstanding_amount"]) == ("partly_paid", "28.00")
    rest = flow.made(
        f"{FINANCE}/payment",
        {
            **payment_body,
            "amount": "28.00",
            "allocations": [{"invoice": invoice["id"], "amount": "28.00"}],
        },
    )
    flow.move(f"{FINANCE}/payment/{rest['id']}")
    assert flow.get(opportunity)["payment_status"] == "paid"
    # walking back: the payment cancelled re-opens it
    flow.move(f"{FINANCE}/payment/{rest['id']}", "cancel")
    assert flow.get(opportunity)["payment_status"] == "partly_paid"
    assert Decimal(flow.get(opportunity)["outstanding_amount"]) == Decimal("28.00")


def test_cancelling_the_draft_flow_and_the_order(flow: Flow) -> None:
    won = won_deal(flow, email=None)
    order_path = f"{ORDERS}/sales_order/{won['sales_order']}"
    flow.move(order_path)
    flow.move(order_path, "cancel")
    seen = flow.get(f"{SALES}/opportunity/{won['id']}")
    assert (seen["order_status"], seen["open_orders"], seen["cancelled_orders"]) == (
        "cancelled",
        0,
        1,
    )
