"""Rollups under concurrent writes, over a real server: every parallel submit, create and
re-parenting of invoices of the same accounts is counted exactly once (the target rows are
locked before their sources are re-aggregated in a new statement, so that no writer works
from a snapshot older than the last commit), on PostgreSQL and SQLite."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from engine import EngineModel, open_database
from engine.errors import StaleVersion
from engine.writes import WriteContext
from metadata import RuleEvent
from runtime.app import load_definitions
from tests.conftest import pack_instance
from tests.integration.api.test_rollups import FILES
from tests.support.identity import bearer
from tests.support.rollups import assert_no_drift
from tests.support.server import serving

if TYPE_CHECKING:
    from pathlib import Path

INVOICES = "/api/v1/books/invoice"
ACCOUNTS = "/api/v1/books/account"


@pytest.mark.slow  # starts a server and races 80 writes
def test_parallel_submits_creates_and_moves_are_each_counted_once(
    db_url: str, tmp_path: Path
) -> None:
    instance = pack_instance(tmp_path, db_url, "books", FILES)
    headers = bearer(instance.token())
    with httpx.Client(headers=headers, timeout=60) as api, serving(instance.path) as base:
        acme, globex = (
            api.post(f"{base}{ACCOUNTS}", json={"name": name}).json()["data"]["id"]
            for name in ("Acme", "Globex")
        )
        drafts = [
            api.post(f"{base}{INVOICES}", json={"account": acme, "grand_total": f"{n}.01"}).json()[
                "data"
            ]["id"]
            for n in range(1, 21)
        ]
        movable = {
            account: [
                api.post(f"{base}{INVOICES}", json={"account": account, "grand_total": "1"}).json()[
                    "data"
                ]["id"]
                for _ in range(10)
            ]
            for account in (acme, globex)
        }

        async def race() -> list[httpx.Response]:
            async with httpx.AsyncClient(headers=headers, timeout=60) as client:
                calls = [client.post(f"{base}{INVOICES}/{i}/_submit") for i in drafts]
                calls += [
                    client.post(f"{base}{INVOICES}", json={"account": globex, "grand_total": "2"})
                    for _ in range(20)
                ]
                calls += [  # re-parented both ways: locks taken in id order, no deadlock
                    client.patch(f"{base}{INVOICES}/{i}", json={"account": to})
                    for source, to in ((acme, globex), (globex, acme))
                    for i in movable[source]
                ]
                return list(await asyncio.gather(*calls))

        responses = asyncio.run(race())
        assert {r.status_code for r in responses} <= {200, 201}, [
            r.text for r in responses if r.status_code >= 300
        ]
        first = api.get(f"{base}{ACCOUNTS}/{acme}").json()["data"]
        second = api.get(f"{base}{ACCOUNTS}/{globex}").json()["data"]
    assert Decimal(first["lifetime_value"]) == sum(Decimal(f"{n}.01") for n in range(1, 21))
    assert first["invoice_count"] == 30
    assert (Decimal(second["lifetime_value"]), second["invoice_count"]) == (0, 30)
    assert_no_drift(instance.settings)


@pytest.mark.slow  # starts a server and races 20 writes, 3 times
def test_an_order_edited_while_its_lines_are_billed_does_not_deadlock(
    db_url: str, tmp_path: Path
) -> None:
    """A write of an order locks the order, then its lines; billing its lines keeps the
    lines, then the order (a chain of rollups): the order is locked first there too."""
    instance = pack_instance(tmp_path, db_url, "books", FILES)
    headers = bearer(instance.token())
    orders = "/api/v1/books/sales_order"
    with httpx.Client(headers=headers, timeout=60) as api, serving(instance.path) as base:
        acme = api.post(f"{base}{ACCOUNTS}", json={"name": "Acme"}).json()["data"]["id"]
        body = {"name": "SO", "lines": [{"item": "a", "amount": "10"}, {"item": "b"}]}
        order = api.post(f"{base}{orders}", json=body).json()["data"]
        lines = [line["id"] for line in order["lines"]]
        for round_ in range(3):
            drafts = [
                api.post(
                    f"{base}{INVOICES}",
                    json={
                        "account": acme,
                        "lines": [{"order_line": i, "amount": "1"} for i in reversed(lines)],
                    },
                ).json()["data"]["id"]
                for _ in range(10)
            ]

            async def race(drafts: list[str], round_: int = round_) -> list[httpx.Response]:
                async with httpx.AsyncClient(headers=headers, timeout=60) as client:
                    calls = [client.post(f"{base}{INVOICES}/{i}/_submit") for i in drafts]
                    edit = {
                        "lines": [{"id": i, "item": f"r{round_}-{n}"} for n, i in enumerate(lines)]
                    }
                    calls += [
                        client.patch(f"{base}{orders}/{order['id']}", json=edit) for _ in range(10)
                    ]
                    return list(await asyncio.gather(*calls))

            responses = asyncio.run(race(drafts))
            assert {r.status_code for r in responses} <= {200}, [
                r.text for r in responses if r.status_code != 200
            ]
        stored = api.get(f"{base}{orders}/{order['id']}").json()["data"]
    assert Decimal(stored["billed_amount"]) == 60  # 3 rounds x 10 invoices x 2 lines x 1
    assert_no_drift(instance.settings)


CORRECTIONS = {
    **FILES,
    "entities/correction.yaml": """\
fields:
  line: {type: reference, to: invoice_line, required: true}
  amount: {type: decimal, scale: 2, required: true}
""",
    "rules/correction.yaml": """\
- name: correct
  on: [create]
  actions:
    - update: {entity: invoice_line, id: "{{ line }}", values: {amount: "{{ amount }}"}}
""",
}


def _draft_with_a_line(api: httpx.Client) -> tuple[str, str, str, dict[str, Any]]:
    """An order line, and a draft invoice of one line billing 10 of it."""
    acme = api.post(ACCOUNTS, json={"name": "Acme"}).json()["data"]["id"]
    body = {"name": "SO", "lines": [{"item": "a", "amount": "100"}]}
    order = api.post("/api/v1/books/sales_order", json=body).json()["data"]
    order_line = order["lines"][0]["id"]
    invoice = api.post(
        INVOICES,
        json={"account": acme, "lines": [{"order_line": order_line, "amount": "10"}]},
    ).json()["data"]
    return order["id"], order_line, invoice["lines"][0]["id"], invoice


def test_a_line_written_on_its_own_moves_its_documents_version(db_url: str, tmp_path: Path) -> None:
    """A rule's action writing an invoice line changes the invoice: a client holding the
    invoice's old version is refused (412) rather than writing over a line it never saw."""
    instance = pack_instance(tmp_path, db_url, "books", CORRECTIONS)
    with instance.client() as api:
        _, _, line, invoice = _draft_with_a_line(api)
        etag = api.get(f"{INVOICES}/{invoice['id']}").headers["etag"]
        made = api.post("/api/v1/books/correction", json={"line": line, "amount": "20"})
        assert made.status_code == 201, made.text
        after = api.get(f"{INVOICES}/{invoice['id']}")
        assert after.json()["data"]["version"] > invoice["version"]
        assert after.json()["data"]["lines"][0]["amount"] == "20.00"
        stale = api.post(f"{INVOICES}/{invoice['id']}/_submit", headers={"If-Match": etag})
        assert stale.status_code == 412, stale.text
        fresh = api.post(
            f"{INVOICES}/{invoice['id']}/_submit", headers={"If-Match": after.headers["etag"]}
        )
        assert fresh.status_code == 200, fresh.text
    assert_no_drift(instance.settings)


def test_a_submit_racing_a_line_written_on_its_own_never_keeps_the_old_amount(
    db_url: str, tmp_path: Path
) -> None:
    """The race, made certain: a transaction writes an invoice's line on its own (as a
    rule's action does) and holds it open; the invoice's submit starts meanwhile, reads the
    line as it was, and comes to the invoice's row while the first still holds it. Once the
    first commits, the submit must not count the line's old amount into the order line's
    billed amount: on PostgreSQL it is refused (the invoice changed under it: 412), on
    SQLite it waits for the first to finish before reading at all. Either way, nothing
    drifts."""
    instance = pack_instance(tmp_path, db_url, "books", CORRECTIONS)
    with instance.client() as api:
        order, _, line, invoice = _draft_with_a_line(api)
    model = EngineModel.for_url(load_definitions(instance.settings), instance.settings.database_url)
    lines = model.store_for("books.invoice_line")
    invoices = model.store("books", "invoice")

    async def race() -> BaseException | None:
        database = await open_database(instance.settings.database_url, pool_size=2)
        try:
            async with database.transaction() as first:
                await lines.update(first, int(line), {"amount": "20"}, WriteContext())

                async def submit() -> None:
                    async with database.transaction() as second:
                        await invoices.transition(
                            second, int(invoice["id"]), RuleEvent.SUBMIT, WriteContext()
                        )

                submitting = asyncio.create_task(submit())
                await asyncio.sleep(0.5)  # it has read the line and waits for the invoice
                assert not submitting.done()
            try:
                await submitting
            except StaleVersion as exc:
                return exc
            return None
        finally:
            await database.close()

    refused = asyncio.run(race())
    with instance.client() as api:
        stored = api.get(f"{INVOICES}/{invoice['id']}").json()["data"]
        order = api.get(f"/api/v1/books/sales_order/{order}").json()["data"]
    assert stored["lines"][0]["amount"] == "20.00"
    billed = order["lines"][0]["billed_amount"]
    if db_url.startswith("postgresql"):
        assert isinstance(refused, StaleVersion), refused
        assert (stored["docstatus"], billed) == ("draft", "0.00")
    else:
        assert refused is None
        assert (stored["docstatus"], billed) == ("submitted", "20.00")
    assert_no_drift(instance.settings)
