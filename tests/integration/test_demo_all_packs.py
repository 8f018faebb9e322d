"""The demo `make run` serves: an instance of every shipped pack (contacts, inventory, sales,
orders, finance, quote_to_cash), migrated and loaded with `tessera demo` as the Makefile
does, on SQLite and PostgreSQL. The packs' demos load together in dependency order and tell
one story (the same customers, items and warehouses throughout); loading them again changes
no record; the books balance, every bin equals its stock ledger, `tessera recompute` finds
no drift; every pack's lists and dashboards answer."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal
from email import message_from_bytes, policy
from typing import TYPE_CHECKING, Any

import yaml

from tests.conftest import REPO, write_instance
from tests.support.cli import tessera
from tests.support.receivers import wait_until
from tests.support.web import signed_in

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

# what the Makefile's `make run` enables
(DEMO_PACKS,) = re.findall(r"^DEMO_PACKS = (.+)$", (REPO / "Makefile").read_text(), re.M)
ALL_PACKS = DEMO_PACKS.split(",")
# and the mail transport it writes into the demo's tessera.yaml
(DEMO_MAIL_LINE,) = re.findall(r"^DEMO_MAIL = (.+)$", (REPO / "Makefile").read_text(), re.M)
DEMO_MAIL = yaml.safe_load(DEMO_MAIL_LINE)["mail"]
# the records compared between the two loads (documents with their lines)
SNAPSHOT = [
    "contacts/account",
    "contacts/contact",
    "contacts/address",
    "inventory/item",
    "inventory/warehouse",
    "inventory/bin",
    "inventory/stock_entry",
    "inventory/stock_ledger_entry",
    "inventory/item_price",
    "sales/lead",
    "sales/opportunity",
    "sales/quotation",
    "orders/sales_order",
    "orders/delivery",
    "orders/purchase_order",
    "orders/purchase_receipt",
    "finance/sales_invoice",
    "finance/purchase_invoice",
    "finance/payment",
    "finance/journal_entry",
    "finance/gl_entry",
    "finance/budget",
]
DASHBOARDS = [
    "_dashboards/contacts/overview",
    "_dashboards/inventory/stock",
    "_dashboards/sales/forecast",
    "_dashboards/orders/orders",
    "_dashboards/finance/finance",
]
# audit stamps a second upsert may touch without changing anything a user sees
STAMPS = {"created_at", "created_by", "updated_at", "updated_by", "version"}


def get(client: TestClient, path: str, **params: Any) -> Any:
    response = client.get(f"/api/v1/{path}", params=params)
    assert response.status_code == 200, (path, response.text)
    return response.json()["data"]


def unstamped(record: dict[str, Any], *, line: bool = False) -> dict[str, Any]:
    """The record without its audit stamps; a draft's lines without their ids too (an
    upsert sends a draft's lines whole, which writes them again)."""
    dropped = STAMPS | ({"id"} if line else set())
    return {
        key: [unstamped(x, line=True) for x in value]
        if isinstance(value, list) and value and isinstance(value[0], dict)
        else value
        for key, value in record.items()
        if key not in dropped
    }


def snapshot(client: TestClient) -> dict[str, list[dict[str, Any]]]:
    records = {path: get(client, path, sort="id", limit=1000) for path in SNAPSHOT}
    assert all(len(rows) < 1000 for rows in records.values())  # none cut off by the page
    return {path: [unstamped(record) for record in rows] for path, rows in records.items()}


def demo_instance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "demo", db_url, ALL_PACKS, [REPO / "modules"], mail=DEMO_MAIL
    )
    migrated = tessera("migrate", "--admin-password", "tessera-demo", cwd=instance.path)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return instance


def load_demo(instance: Instance) -> str:
    loaded = tessera("demo", cwd=instance.path)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "rejected" not in loaded.stdout + loaded.stderr
    return loaded.stdout


def assert_books_and_stock(client: TestClient) -> None:
    rows = get(
        client, "finance/gl_entry/_aggregate", group_by="account", measures="debit__sum,credit__sum"
    )
    debit = sum((Decimal(r["debit__sum"]) for r in rows), Decimal(0))
    credit = sum((Decimal(r["credit__sum"]) for r in rows), Decimal(0))
    assert debit == credit > 0, (debit, credit)
    reserved: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for order in get(client, "orders/sales_order", docstatus="submitted", limit=1000):
        for line in order["lines"]:
            pending = Decimal(line["quantity"]) - Decimal(line["delivered_qty"] or 0)
            reserved[line["item"], line["warehouse"]] += max(pending, Decimal(0))
    entries = get(client, "inventory/stock_ledger_entry", limit=1000)
    qty: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    value: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for entry in entries:
        key = (entry["item"], entry["warehouse"])
        qty[key] += Decimal(entry["qty_change"])
        value[key] += Decimal(entry["stock_value_difference"])
    bins = get(client, "inventory/bin", limit=1000)
    assert bins
    for row in bins:
        key = (row["item"], row["warehouse"])
        assert Decimal(row["actual_qty"]) == qty[key] >= 0, row
        assert Decimal(row["stock_value"] or 0) == value[key], row
        assert Decimal(row["reserved_qty"]) == reserved[key], row


def assert_the_quarter(records: dict[str, list[dict[str, Any]]]) -> None:
    """A quarter of business: a few dozen customers and items, orders, invoices and
    payments; the won deals followed to cash through their orders and quotations; each
    account's rollups the sums of its invoices."""
    counts = {path: len(rows) for path, rows in records.items()}
    assert counts["contacts/account"] >= 30
    assert counts["inventory/item"] >= 24
    assert counts["orders/sales_order"] >= 30
    assert counts["finance/sales_invoice"] >= 25
    assert counts["finance/payment"] >= 15
    orders = {o["id"]: o for o in records["orders/sales_order"]}
    dates = sorted(o["order_date"] for o in orders.values())
    assert (dates[0][:7], dates[-1][:7]) == ("2026-10", "2026-12")
    quotations = {q["id"]: q for q in records["sales/quotation"]}
    won = {d["name"]: d for d in records["sales/opportunity"] if d["stage"] == "closed_won"}
    assert {name: (d["order_status"], d["payment_status"]) for name, d in won.items()} == {
        "Soleira reception area": ("completed", "paid"),
        "Andes reception area": ("completed", "partly_paid"),
        "Maple reception area": ("to_deliver_and_bill", "unpaid"),
    }
    for name in ("Soleira reception area", "Andes reception area", "Maple reception area"):
        order = orders[won[name]["sales_order"]]
        assert quotations[order["quotation"]]["opportunity"] == won[name]["id"]
        assert quotations[order["quotation"]]["docstatus"] == "submitted"
    statuses = {o["status"] for o in orders.values()}
    assert statuses >= {"completed", "to_bill", "to_deliver", "to_deliver_and_bill", "draft"}
    invoices = records["finance/sales_invoice"]
    assert {i["status"] for i in invoices} >= {"paid", "partly_paid", "unpaid", "overdue"}
    billed_orders = {i["sales_order"] for i in invoices if i["sales_order"]}
    assert len(billed_orders) >= 20
    for account in records["contacts/account"]:
        own = [i for i in invoices if i["account"] == account["id"]]
        submitted = [i for i in own if i["docstatus"] == "submitted"]
        total = sum((Decimal(i["base_grand_total"]) for i in submitted), Decimal(0))
        owed = sum((Decimal(i["base_outstanding"]) for i in submitted), Decimal(0))
        assert (Decimal(account["lifetime_value"]), Decimal(account["outstanding"])) == (
            total,
            owed,
        ), account["name"]
        sales = [i for i in submitted if not i["is_return"]]  # a credit note is no order
        last = max((i["posting_date"] for i in sales), default=None)
        assert account["last_order_date"] == last, account["name"]


def test_the_demo_of_every_pack_loads_twice_and_tells_one_story(
    db_url: str, tmp_path: Path
) -> None:
    instance = demo_instance(db_url, tmp_path)
    load_demo(instance)
    with instance.client() as client:
        first = snapshot(client)
        assert_books_and_stock(client)

        # one story: the orders, invoices and deals are the contacts demo's customers'
        customers = {a["id"]: a["name"] for a in first["contacts/account"]}
        for path in ("sales/opportunity", "orders/sales_order", "finance/sales_invoice"):
            assert first[path], path
            assert {r["account"] for r in first[path]} <= customers.keys(), path
        # won deals became draft sales orders (quote_to_cash), linked both ways
        won = [o for o in first["sales/opportunity"] if o["stage"] == "closed_won"]
        assert won
        orders = {o["id"]: o for o in first["orders/sales_order"]}
        for deal in won:
            order = orders[deal["sales_order"]]
            assert (order["opportunity"], order["account"]) == (deal["id"], deal["account"])
            assert order["lines"]
            assert deal["order_status"] != "none"
        # converted leads point at their account, contact and opportunity
        converted = [lead for lead in first["sales/lead"] if lead["status"] == "converted"]
        assert converted
        assert all(lead["converted_opportunity"] for lead in converted)
        # invoices kept the customers' lifetime value and outstanding amount
        assert any(Decimal(a["lifetime_value"]) > 0 for a in first["contacts/account"])
        assert any(Decimal(a["outstanding"]) > 0 for a in first["contacts/account"])
        assert_the_quarter(first)

    # the welcome e-mail of the won deal whose customer has an address, as a file
    with instance.client():
        folder = instance.path / DEMO_MAIL["path"]
        wait_until(lambda: folder.is_dir() and any(folder.glob("*.eml")), timeout=30)
        (mail,) = folder.glob("*.eml")
        message = message_from_bytes(mail.read_bytes(), policy=policy.default)
        assert message["To"] == "encomendas@soleira-texteis.example"
        assert message["Subject"] == "Welcome aboard, Soleira Têxteis Lda"

    # every pack's lists and dashboards answer in the web UI, for the demo administrator
    with signed_in(instance, "admin", "tessera-demo") as browser:
        for path in [*SNAPSHOT, *DASHBOARDS]:
            page = browser.get(f"/app/{path}")
            assert page.status_code == 200, (path, page.text[:300])

    # a second load changes nothing: no record, no ledger row, no e-mail more
    load_demo(instance)
    with instance.client() as client:
        second = snapshot(client)
        changed = [
            (path, before.get("id"), key, before.get(key), after.get(key))
            for path in SNAPSHOT
            for before, after in zip(first[path], second[path], strict=False)
            for key in before.keys() | after.keys()
            if before.get(key) != after.get(key)
        ]
        assert not changed, changed
        assert {p: len(r) for p, r in second.items()} == {p: len(r) for p, r in first.items()}
        assert_books_and_stock(client)
    recomputed = tessera("recompute", cwd=instance.path)
    assert recomputed.returncode == 0, recomputed.stdout + recomputed.stderr
    assert "no drift" in recomputed.stdout
