"""The finance pack's daily ``mark_overdue`` selects its invoices in SQL (submitted, with
something outstanding and a due date): drafts and paid invoices are not read. On SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import EngineModel, open_database
from engine.writes import WriteContext
from runtime.app import load_definitions
from tests.modules.finance.conftest import FINANCE, Books

if TYPE_CHECKING:
    from tests.conftest import Instance


def test_mark_overdue_runs_on_the_invoices_its_where_selects(
    books: Books, finance: Instance
) -> None:
    acme = books.customer("Acme")
    bolt = books.item("bolt")
    late = books.invoice(acme, [(bolt, "1", "10.00")], due_date="2026-03-05")
    books.move("sales_invoice", late["id"])
    books.invoice(acme, [(bolt, "1", "10.00")], due_date="2026-03-05")  # a draft
    paid = books.invoice(acme, [(bolt, "1", "10.00")], due_date="2026-03-05")
    books.move("sales_invoice", paid["id"])
    settled = books.payment(acme, "10.00", {paid["id"]: "10.00"})
    books.move("payment", settled["id"])

    async def run() -> int:
        settings = finance.settings
        store = EngineModel.for_url(load_definitions(settings), settings.database_url).store(
            "finance", "sales_invoice"
        )
        assert store.effects.selections["mark_overdue"] is not None  # runs as SQL
        database = await open_database(settings.database_url, pool_size=1)
        try:
            async with database.transaction() as conn:
                return await store.effects.run_scheduled(conn, "mark_overdue", WriteContext())
        finally:
            await database.close()

    assert asyncio.run(run()) == 1
    invoices = {i["id"]: i for i in books.get(f"{FINANCE}/sales_invoice?limit=10")}
    assert invoices[late["id"]]["is_overdue"] is True
    assert invoices[late["id"]]["age_bucket"] == "90+"
    assert invoices[paid["id"]]["is_overdue"] is not True
