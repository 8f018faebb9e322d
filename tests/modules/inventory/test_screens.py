"""The inventory pack's screens render for a signed-in clerk, with the demo data loaded:
the lists (items filtered to those below their reorder level), a stock entry's form, the
bins and the ledger, and the Stock dashboard with every tile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.modules.inventory.test_demo import load_demo
from tests.support.identity import issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from tests.conftest import Instance

PASSWORD = "correct horse battery"


def test_the_screens_and_the_dashboard_render(inventory: Instance) -> None:
    load_demo(inventory)
    url = inventory.settings.database_url
    issue_token(url, "wes", ("warehouse_clerk",), password=PASSWORD)
    with signed_in(inventory, "wes", PASSWORD) as client:
        for path in (
            "/app/inventory/item",
            "/app/inventory/warehouse",
            "/app/inventory/bin",
            "/app/inventory/stock_ledger_entry",
            "/app/inventory/stock_entry",
            "/app/inventory/stock_entry/1",
            "/app/inventory/stock_entry/new",
            "/app/inventory/item/1",
        ):
            page = client.get(path)
            assert page.status_code == 200, (path, page.text[:300])
        below = client.get("/app/inventory/item", params={"below_reorder": "true"})
        assert below.status_code == 200
        assert "Screw M6 x 20 (box of 100)" in below.text  # the demo's one item below reorder
        assert "Office desk 160 cm" not in below.text
        board = client.get("/app/_dashboards/inventory/stock")
        assert board.status_code == 200, board.text[:300]
        for label in ("Items below reorder level", "Stock value by warehouse", "Stock moves"):
            assert label in board.text
