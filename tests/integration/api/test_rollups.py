"""Rollups over the API, on SQLite and PostgreSQL: an account's lifetime value, invoice
count and last invoice date kept by its invoices, an order line's billed amount kept by
invoice lines and its order's by its lines, correct after every kind of write (create,
update, re-parenting, delete, submit, cancel, amend, lines added, changed and removed, a
rule's action writing a line on its own), read-only to clients, filterable and sortable;
and no drift after any of it (``tests.support.rollups``)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.rollups import assert_no_drift, drift_of

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: books\nversion: 1.0.0\n",
    "entities/account.yaml": """\
title: name
fields:
  name: {type: string, required: true}
  lifetime_value: {type: decimal, scale: 2}
  invoice_count: {type: integer}
  last_invoice: {type: date}
  smallest: {type: decimal, scale: 2}
  paid: {type: decimal, scale: 2}
""",
    "entities/invoice.yaml": """\
document: true
fields:
  account: {type: reference, to: account, required: true}
  posting_date: {type: date}
  grand_total: {type: decimal, scale: 2}
  is_return: {type: boolean, default: false}
  lines: {type: children, entity: invoice_line}
rollups:
  - to: account.lifetime_value
    via: account
    sum: grand_total
    where: {docstatus: submitted, is_return: false}
  - to: account.invoice_count
    via: account
    count: true
    where: {docstatus__in: [draft, submitted]}
  - {to: account.last_invoice, via: account, max: posting_date}
  - {to: account.smallest, via: account, min: grand_total, where: {docstatus: submitted}}
""",
    "entities/invoice_line.yaml": """\
fields:
  order_line: {type: reference, to: order_line}
  amount: {type: decimal, scale: 2}
rollups:
  - to: order_line.billed_amount
    via: order_line
    sum: amount
    where: {_parent__docstatus: submitted}
  - {to: order_line.invoiced_lines, via: order_line, count: true}
""",
    "entities/sales_order.yaml": """\
fields:
  name: {type: string}
  billed_amount: {type: decimal, scale: 2}
  delivered: {type: integer}
  total: {type: decimal, scale: 2, computed: "lines | sum(attribute='amount')"}
  billed_percent: {type: decimal, scale: 2, computed: "total and billed_amount / total * 100"}
  lines: {type: children, entity: order_line}
""",
    "entities/order_line.yaml": """\
fields:
  item: {type: string}
  quantity: {type: integer}
  amount: {type: decimal, scale: 2, default: 0}
  billed_amount: {type: decimal, scale: 2}
  invoiced_lines: {type: integer}
  delivered: {type: integer, default: 0}
rollups:
  - {to: sales_order.billed_amount, via: _parent, sum: billed_amount}
  - {to: sales_order.delivered, via: _parent, sum: delivered}
""",
    "entities/delivery.yaml": """\
fields:
  order_line: {type: reference, to: order_line, required: true}
  quantity: {type: integer, required: true}
""",
    "entities/payment.yaml": """\
fields:
  account: {type: reference, to: account, required: true}
  amount: {type: decimal, scale: 2}
rollups:
  - {to: account.paid, via: account, sum: amount}
""",
    "entities/receipt.yaml": """\
fields:
  account: {type: reference, to: account, required: true}
  amount: {type: decimal, scale: 2}
""",
    "rules/receipt.yaml": """\
- name: pay
  on: [create]
  actions:
    - create: {entity: payment, values: {account: "{{ account }}", amount: "{{ amount }}"}}
""",
    "rules/delivery.yaml": """\
- name: deliver
  on: [create]
  actions:
    - update: {entity: order_line, id: "{{ order_line }}", values: {delivered: "{{ quantity }}"}}
""",
}
ACCOUNTS = "/api/v1/books/account"
INVOICES = "/api/v1/books/invoice"
ORDERS = "/api/v1/books/sales_order"


@pytest.fixture
def books(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "books", FILES)


@pytest.fixture
def api(books: Instance) -> Iterator[TestClient]:
    with books.client() as client:
        yield client
    assert_no_drift(books.settings)  # whatever the test did


def made(api: TestClient, url: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(url, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def account(api: TestClient, record_id: str) -> dict[str, Any]:
    data: dict[str, Any] = api.get(f"{ACCOUNTS}/{record_id}").json()["data"]
    return data


def kept(api: TestClient, record_id: str) -> tuple[Any, ...]:
    data = account(api, record_id)
    value = data["lifetime_value"]
    return (
        Decimal(value) if value is not None else None,
        data["invoice_count"],
        data["last_invoice"],
        Decimal(data["smallest"]) if data["smallest"] is not None else None,
    )


def move(api: TestClient, record_id: str, action: str) -> dict[str, Any]:
    response = api.post(f"{INVOICES}/{record_id}/_{action}")
    assert response.status_code in {200, 201}, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_an_account_is_kept_by_its_invoices_through_their_lifecycle(api: TestClient) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    assert kept(api, acme) == (Decimal(0), 0, None, None)
    first = made(
        api, INVOICES, {"account": acme, "posting_date": "2026-03-01", "grand_total": "100.10"}
    )
    assert kept(api, acme) == (Decimal(0), 1, "2026-03-01", None)  # a draft is counted, not summed
    move(api, first["id"], "submit")
    assert kept(api, acme) == (Decimal("100.10"), 1, "2026-03-01", Decimal("100.10"))
    second = made(
        api, INVOICES, {"account": acme, "posting_date": "2026-01-05", "grand_total": "0.20"}
    )
    move(api, second["id"], "submit")
    assert kept(api, acme) == (Decimal("100.30"), 2, "2026-03-01", Decimal("0.20"))
    returned = made(
        api,
        INVOICES,
        {"account": acme, "posting_date": "2026-04-01", "grand_total": "9", "is_return": True},
    )
    move(api, returned["id"], "submit")
    assert kept(api, acme) == (Decimal("100.30"), 3, "2026-04-01", Decimal("0.20"))
    move(api, first["id"], "cancel")
    assert kept(api, acme) == (Decimal("0.20"), 2, "2026-04-01", Decimal("0.20"))
    copy = move(api, first["id"], "amend")
    assert kept(api, acme)[1] == 3
    move(api, copy["id"], "submit")
    assert kept(api, acme) == (Decimal("100.30"), 3, "2026-04-01", Decimal("0.20"))


def test_updates_re_parenting_and_deletes_keep_the_old_and_the_new_account(
    api: TestClient,
) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    globex = made(api, ACCOUNTS, {"name": "Globex"})["id"]
    draft = made(api, INVOICES, {"account": acme, "posting_date": "2026-02-02", "grand_total": "5"})
    changed = api.patch(f"{INVOICES}/{draft['id']}", json={"posting_date": "2026-02-03"})
    assert changed.status_code == 200, changed.text
    assert kept(api, acme)[1:3] == (1, "2026-02-03")
    moved = api.patch(f"{INVOICES}/{draft['id']}", json={"account": globex})
    assert moved.status_code == 200, moved.text
    assert kept(api, acme) == (Decimal(0), 0, None, None)
    assert kept(api, globex) == (Decimal(0), 1, "2026-02-03", None)
    assert api.delete(f"{INVOICES}/{draft['id']}").status_code == 204
    assert kept(api, globex) == (Decimal(0), 0, None, None)


def test_the_version_changes_only_when_a_kept_value_does(api: TestClient) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    assert account(api, acme)["version"] == 1
    draft = made(api, INVOICES, {"account": acme, "grand_total": "5"})
    assert account(api, acme)["version"] == 2  # invoice_count 0 -> 1
    api.patch(f"{INVOICES}/{draft['id']}", json={"grand_total": "6"})
    assert account(api, acme)["version"] == 2  # a draft's total is in no kept value
    response = api.get(f"{ACCOUNTS}/{acme}")
    assert response.headers["ETag"] == '"2"'
    move(api, draft["id"], "submit")
    assert account(api, acme)["version"] == 3  # lifetime value and smallest, one update


def test_kept_fields_are_read_only_and_lists_filter_and_sort_on_them(api: TestClient) -> None:
    names = {}
    for name, total in (("Small", "10"), ("Big", "300"), ("Mid", "50")):
        names[name] = made(api, ACCOUNTS, {"name": name})["id"]
        invoice = made(api, INVOICES, {"account": names[name], "grand_total": total})
        move(api, invoice["id"], "submit")
    refused = api.patch(f"{ACCOUNTS}/{names['Big']}", json={"lifetime_value": "1"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "read_only"
    refused = api.post(ACCOUNTS, json={"name": "X", "invoice_count": 3})
    assert refused.status_code == 422
    listed = api.get(ACCOUNTS, params={"lifetime_value__gte": "50", "sort": "-lifetime_value"})
    assert [r["name"] for r in listed.json()["data"]] == ["Big", "Mid"]


def test_a_refused_write_leaves_every_kept_value_as_it_was(api: TestClient) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    invoice = made(api, INVOICES, {"account": acme, "grand_total": "5"})
    move(api, invoice["id"], "submit")
    stale = api.patch(
        f"{INVOICES}/{invoice['id']}", json={"grand_total": "7"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code in {409, 412}
    missing = api.post(INVOICES, json={"account": "999999", "grand_total": "5"})
    assert missing.status_code == 422
    assert kept(api, acme)[:2] == (Decimal(5), 1)


def order_with_lines(api: TestClient, *items: str) -> dict[str, Any]:
    body = {"name": "SO", "lines": [{"item": i, "quantity": 1, "amount": "50"} for i in items]}
    return made(api, ORDERS, body)


def percent(api: TestClient, order_id: str) -> str:
    order = api.get(f"{ORDERS}/{order_id}").json()["data"]
    return str(order["billed_percent"])


def billed(api: TestClient, order_id: str) -> tuple[Decimal, list[tuple[Decimal, int]]]:
    order = api.get(f"{ORDERS}/{order_id}").json()["data"]
    return Decimal(order["billed_amount"]), [
        (Decimal(line["billed_amount"]), line["invoiced_lines"]) for line in order["lines"]
    ]


def test_lines_keep_order_lines_which_keep_their_order(api: TestClient) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    order = order_with_lines(api, "bolt", "nut")
    bolt, nut = (line["id"] for line in order["lines"])
    assert billed(api, order["id"]) == (Decimal(0), [(Decimal(0), 0), (Decimal(0), 0)])
    invoice = made(
        api,
        INVOICES,
        {
            "account": acme,
            "lines": [{"order_line": bolt, "amount": "10"}, {"order_line": bolt, "amount": "2.5"}],
        },
    )
    assert billed(api, order["id"]) == (Decimal(0), [(Decimal(0), 2), (Decimal(0), 0)])
    assert percent(api, order["id"]) == "0.00"
    move(api, invoice["id"], "submit")  # the parent's docstatus is in the lines' where
    assert billed(api, order["id"]) == (Decimal("12.5"), [(Decimal("12.5"), 2), (Decimal(0), 0)])
    assert percent(api, order["id"]) == "12.50"  # a computed field over the rollup
    resent = [{"id": line["id"], "item": "renamed", "amount": "50"} for line in order["lines"]]
    edited = api.patch(f"{ORDERS}/{order['id']}", json={"lines": resent})
    assert edited.status_code == 200, edited.text  # read-only kept fields of kept lines stay
    assert billed(api, order["id"]) == (Decimal("12.5"), [(Decimal("12.5"), 2), (Decimal(0), 0)])
    move(api, invoice["id"], "cancel")
    assert billed(api, order["id"]) == (Decimal(0), [(Decimal(0), 2), (Decimal(0), 0)])
    assert percent(api, order["id"]) == "0.00"
    draft = move(api, invoice["id"], "amend")
    lines = draft["lines"]
    assert billed(api, order["id"])[1] == [(Decimal(0), 4), (Decimal(0), 0)]
    # a line re-parented to another order line, one removed, one added
    body = {
        "lines": [
            {"id": lines[0]["id"], "order_line": nut, "amount": "10"},
            {"order_line": nut, "amount": "1"},
        ]
    }
    patched = api.patch(f"{INVOICES}/{draft['id']}", json=body)
    assert patched.status_code == 200, patched.text
    assert billed(api, order["id"])[1] == [(Decimal(0), 2), (Decimal(0), 2)]
    move(api, draft["id"], "submit")
    assert billed(api, order["id"]) == (Decimal(11), [(Decimal(0), 2), (Decimal(11), 2)])
    assert api.delete(f"{INVOICES}/{invoice['id']}").status_code == 409  # cancelled: kept
    assert billed(api, order["id"])[1] == [(Decimal(0), 2), (Decimal(11), 2)]


def test_deleting_a_parent_removes_its_lines_from_what_they_kept(api: TestClient) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    order = order_with_lines(api, "bolt")
    (bolt,) = (line["id"] for line in order["lines"])
    invoice = made(api, INVOICES, {"account": acme, "lines": [{"order_line": bolt}]})
    assert billed(api, order["id"])[1] == [(Decimal(0), 1)]
    assert api.delete(f"{INVOICES}/{invoice['id']}").status_code == 204
    assert billed(api, order["id"])[1] == [(Decimal(0), 0)]


def test_a_line_written_on_its_own_keeps_its_parent(api: TestClient) -> None:
    order = order_with_lines(api, "bolt", "nut")
    bolt, nut = (line["id"] for line in order["lines"])
    made(api, "/api/v1/books/delivery", {"order_line": bolt, "quantity": 3})
    made(api, "/api/v1/books/delivery", {"order_line": nut, "quantity": 4})
    got = api.get(f"{ORDERS}/{order['id']}").json()["data"]
    assert got["delivered"] == 7
    assert [line["delivered"] for line in got["lines"]] == [3, 4]


def test_an_order_written_with_its_lines_answers_with_its_kept_values(api: TestClient) -> None:
    order = made(
        api, ORDERS, {"name": "SO", "lines": [{"item": "a", "delivered": 2}, {"item": "b"}]}
    )
    assert order["delivered"] == 2  # kept in the write, and answered with it
    stored = api.get(f"{ORDERS}/{order['id']}")
    assert stored.json()["data"]["delivered"] == 2
    assert stored.headers["ETag"] == f'"{order["version"]}"'


def test_drift_is_found_when_a_value_is_changed_behind_the_engine(
    books: Instance, api: TestClient
) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    made(api, INVOICES, {"account": acme, "grand_total": "5"})
    assert drift_of(books.settings) == []
    _sql(books, "UPDATE books_account SET invoice_count = 7")
    (found,) = drift_of(books.settings)
    assert (found.field, found.record_id, found.stored, found.expected) == (
        "books.account.invoice_count",
        int(acme),
        7,
        1,
    )
    _sql(books, "UPDATE books_account SET invoice_count = 1")


def _sql(instance: Instance, statement: str) -> None:
    url = instance.settings.database_url
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            conn.execute(statement)
        return
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def test_a_record_a_rule_creates_keeps_its_rollups(api: TestClient) -> None:
    acme = made(api, ACCOUNTS, {"name": "Acme"})["id"]
    for amount in ("10.00", "2.50"):  # the payment is created by the receipt's create rule
        made(api, "/api/v1/books/receipt", {"account": acme, "amount": amount})
    assert account(api, acme)["paid"] == "12.50"
