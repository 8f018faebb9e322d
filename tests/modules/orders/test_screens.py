"""The orders pack's screens render with the demo data loaded, for the roles that use them:
a sales clerk's orders (list, board by status, form, new), a warehouse clerk's deliveries
and receipts, a purchaser's purchase orders, and the Orders overview dashboard."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.fixture_records import load_fixtures
from tests.support.identity import issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from tests.conftest import Instance

PASSWORD = "correct horse battery"


def test_the_screens_and_the_dashboard_render(orders: Instance) -> None:
    load_fixtures(orders, "demo")
    url = orders.settings.database_url
    screens = {
        "sales_clerk": [
            "/app/orders/sales_order",
            "/app/orders/sales_order/kanban",
            "/app/orders/sales_order/1",
            "/app/orders/sales_order/new",
        ],
        "warehouse_clerk": [
            "/app/orders/delivery",
            "/app/orders/delivery/3",
            "/app/orders/delivery/new",
            "/app/orders/purchase_receipt",
            "/app/orders/purchase_receipt/1",
        ],
        "purchaser": ["/app/orders/purchase_order", "/app/orders/purchase_order/kanban"],
    }
    for role, paths in screens.items():
        issue_token(url, role, (role,), password=PASSWORD)
        with signed_in(orders, role, PASSWORD) as client:
            for path in paths:
                page = client.get(path)
                assert page.status_code == 200, (role, path, page.text[:300])
            if role == "sales_clerk":
                order = client.get("/app/orders/sales_order/1").text
                assert "SO-2026-00001" in order
                assert "Bill to:" in order
                board = client.get("/app/_dashboards/orders/orders")
                assert board.status_code == 200, board.text[:300]
                for label in ("Orders to deliver", "Open order value", "Sales orders by status"):
                    assert label in board.text
            if role == "warehouse_clerk":
                assert "1Z999AA10123456784" in client.get("/app/orders/delivery").text
