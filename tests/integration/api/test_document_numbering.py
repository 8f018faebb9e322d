"""Numbering at submit (``assign: submit`` on an autonumber of a document), on SQLite and
PostgreSQL: drafts take no number, the date tokens come from the document's own date
field, each value of the other tokens has its own series, a refused submit gives its
number back, and parallel submits over HTTP number one after the other, with no gap; with
``gapless: false`` a refused submit keeps its number (a gap), parallel submits take
distinct numbers, and none waits for another's transaction to end."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import Instance, pack_instance, write_instance
from tests.support.identity import bearer
from tests.support.server import serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: billing\nversion: 1.0.0\n",
    "entities/invoice.yaml": """\
title: customer
document: true
fields:
  customer:     {type: string, required: true}
  posting_date: {type: date}
  kind:         {type: enum, values: [sale, refund], default: sale}
  total:        {type: decimal, scale: 2}
  number:
    {type: autonumber, format: "INV-{YYYY}-{#####}", assign: submit, date_field: posting_date}
  ref:
    {type: autonumber, format: "{kind}-{YY}{MM}-{###}", assign: submit, date_field: posting_date}
  draft_no: {type: autonumber, format: "D-{####}"}
""",
    "entities/receipt.yaml": """\
document: true
fields:
  branch:    {type: string, max_length: 100}
  posted_at: {type: datetime}
  number:
    type: autonumber
    format: "{branch}-{YYYY}{MM}{DD}-{##}"
    assign: submit
    date_field: posted_at
""",
    "entities/memo.yaml": """\
fields:
  written_on: {type: date}
  team:       {type: enum, values: [ops, dev]}
  number: {type: autonumber, format: "{team}/{YY}/{###}", date_field: written_on}
""",
    "entities/order.yaml": """\
document: true
fields:
  customer:   {type: string, required: true}
  order_date: {type: date}
  total:      {type: decimal, scale: 2}
  number:
    type: autonumber
    format: "SO-{YYYY}-{####}"
    assign: submit
    date_field: order_date
    gapless: false
""",
    "rules/order.yaml": """\
- name: positive_total
  on: [submit]
  assert: "total is not none and total > 0"
  field: total
  message: "an order needs a positive total to be submitted"
""",
    "rules/invoice.yaml": """\
- name: positive_total
  on: [submit]
  assert: "total is not none and total > 0"
  field: total
  message: "an invoice needs a positive total to be submitted"
""",
}
URL = "/api/v1/billing/invoice"
RECEIPTS = "/api/v1/billing/receipt"
MEMOS = "/api/v1/billing/memo"
ORDERS = "/api/v1/billing/order"


@pytest.fixture
def billing(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "billing", FILES)


@pytest.fixture
def api(billing: Instance) -> Iterator[TestClient]:
    with billing.client() as client:
        yield client


def draft(api: TestClient, url: str = URL, **values: Any) -> dict[str, Any]:
    body = {"customer": "Acme", "posting_date": "2025-03-10", "total": "10.00", **values}
    if url != URL:
        body = values
    response = api.post(url, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def submit(api: TestClient, record: dict[str, Any], url: str = URL) -> httpx.Response:
    response: httpx.Response = api.post(f"{url}/{record['id']}/_submit")
    return response


def submitted(api: TestClient, record: dict[str, Any], url: str = URL) -> dict[str, Any]:
    response = submit(api, record, url)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_drafts_take_no_number_and_clients_cannot_write_one(api: TestClient) -> None:
    record = draft(api)
    assert (record["number"], record["ref"]) == (None, None)
    assert record["draft_no"] == "D-0001"  # numbered at insert, as before
    made = api.post(f"{URL}/_bulk", json=[{"customer": "B"}, {"customer": "C"}]).json()["data"]
    assert [(r["number"], r["draft_no"]) for r in made] == [(None, "D-0002"), (None, "D-0003")]
    created = api.post(URL, json={"customer": "X", "number": "INV-1"})
    patched = api.patch(f"{URL}/{record['id']}", json={"ref": "sale-1"})
    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["code"] == "read_only"
    assert api.get(URL, params={"number__isnull": "true"}).json()["data"]


def test_imported_drafts_take_no_number_until_submitted(billing: Instance, api: TestClient) -> None:
    from tests.support.cli import tessera

    path = billing.path / "invoices.jsonl"
    path.write_text(
        '{"customer": "A", "posting_date": "2025-05-05", "total": "3.00"}\n'
        '{"customer": "B", "posting_date": "2025-05-06", "total": "4.00"}\n',
        encoding="utf-8",
    )
    result = tessera("import", "billing.invoice", str(path), cwd=billing.path)
    assert result.returncode == 0, result.stdout + result.stderr
    records = api.get(URL, params={"sort": "id"}).json()["data"]
    assert [(r["customer"], r["number"]) for r in records] == [("A", None), ("B", None)]
    assert submitted(api, records[1])["number"] == "INV-2025-00001"


def test_submit_numbers_from_the_posting_date_a_series_per_year_and_token(
    api: TestClient,
) -> None:
    march = submitted(api, draft(api, posting_date="2025-03-10"))
    assert (march["number"], march["ref"]) == ("INV-2025-00001", "sale-2503-001")
    january = submitted(api, draft(api, posting_date="2026-01-05"))
    assert (january["number"], january["ref"]) == ("INV-2026-00001", "sale-2601-001")
    december = submitted(api, draft(api, posting_date="2025-12-31"))
    assert (december["number"], december["ref"]) == ("INV-2025-00002", "sale-2512-001")
    refund = submitted(api, draft(api, posting_date="2025-03-20", kind="refund"))
    assert (refund["number"], refund["ref"]) == ("INV-2025-00003", "refund-2503-001")
    again = submitted(api, draft(api, posting_date="2025-03-01"))
    assert (again["number"], again["ref"]) == ("INV-2025-00004", "sale-2503-002")
    history = api.get(f"{URL}/{march['id']}/_history").json()["data"]
    assert history[-1]["action"] == "submit"
    assert history[-1]["changes"] == {
        "docstatus": ["draft", "submitted"],
        "number": [None, "INV-2025-00001"],
        "ref": [None, "sale-2503-001"],
    }
    found = api.get(URL, params={"number": "INV-2025-00002"}).json()["data"]
    assert [r["id"] for r in found] == [december["id"]]


def test_a_refused_submit_takes_no_number(api: TestClient) -> None:
    first = submitted(api, draft(api))
    assert first["number"] == "INV-2025-00001"
    zero = draft(api, total="0.00")
    refused = submit(api, zero)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "total"
    undated = draft(api, posting_date=None)
    refused = submit(api, undated)
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("posting_date", "required")]
    assert "INV-{YYYY}-{#####}" in errors[0]["message"]
    stale = api.post(f"{URL}/{zero['id']}/_submit", headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    for record in (zero, undated):
        stored = api.get(f"{URL}/{record['id']}").json()["data"]
        assert (stored["docstatus"], stored["number"]) == ("draft", None)
    api.patch(f"{URL}/{zero['id']}", json={"total": "5.00"}).raise_for_status()
    api.patch(f"{URL}/{undated['id']}", json={"posting_date": "2025-06-01"}).raise_for_status()
    assert submitted(api, zero)["number"] == "INV-2025-00002"
    assert submitted(api, undated)["number"] == "INV-2025-00003"


def test_an_amendment_is_a_draft_without_a_number_numbered_at_its_own_submit(
    api: TestClient,
) -> None:
    original = submitted(api, draft(api))
    submitted(api, draft(api))
    cancelled = api.post(f"{URL}/{original['id']}/_cancel")
    assert cancelled.json()["data"]["number"] == "INV-2025-00001"  # kept with the facts
    copy = api.post(f"{URL}/{original['id']}/_amend").json()["data"]
    assert (copy["number"], copy["ref"], copy["amended_from"]) == (None, None, original["id"])
    assert submitted(api, copy)["number"] == "INV-2025-00003"
    assert submit(api, original).status_code == 409  # a cancelled one is never renumbered


def test_date_tokens_of_a_datetime_are_its_utc_date_and_field_tokens_are_checked(
    api: TestClient,
) -> None:
    late = draft(api, RECEIPTS, branch="north", posted_at="2025-12-31T23:30:00-02:00")
    assert submitted(api, late, RECEIPTS)["number"] == "north-20260101-01"
    other = draft(api, RECEIPTS, branch="south", posted_at="2026-01-01T10:00:00Z")
    assert submitted(api, other, RECEIPTS)["number"] == "south-20260101-01"
    nameless = draft(api, RECEIPTS, posted_at="2026-01-01T10:00:00Z")
    refused = submit(api, nameless, RECEIPTS)
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("branch", "required")]
    long = draft(api, RECEIPTS, branch="b" * 60, posted_at="2026-01-01T10:00:00Z")
    refused = submit(api, long, RECEIPTS)
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("branch", "too_long")]
    odd = draft(api, RECEIPTS, branch="{##}\U0001f600", posted_at="0001-01-01T00:00:00Z")
    assert submitted(api, odd, RECEIPTS)["number"] == "{##}\U0001f600-00010101-01"


def test_numbers_drawn_at_insert_may_take_a_date_field_and_field_tokens_too(
    api: TestClient,
) -> None:
    first = draft(api, MEMOS, written_on="2024-05-01", team="ops")
    assert first["number"] == "ops/24/001"
    assert draft(api, MEMOS, written_on="2024-12-01", team="dev")["number"] == "dev/24/001"
    assert draft(api, MEMOS, written_on="2024-01-09", team="ops")["number"] == "ops/24/002"
    refused = api.post(MEMOS, json={"team": "ops"})
    assert refused.status_code == 422, refused.text
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        ("written_on", "required")
    ]
    bulk = api.post(f"{MEMOS}/_bulk", json=[{"written_on": "2024-02-02", "team": "ops"}, {}])
    assert bulk.status_code == 422, bulk.text
    assert draft(api, MEMOS, written_on="2024-03-03", team="ops")["number"] == "ops/24/003"


def test_the_schemas_say_the_number_is_read_only_and_may_be_null_and_when_it_is_drawn(
    api: TestClient,
) -> None:
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    read = next(s for n, s in schemas.items() if n.endswith("Invoice"))
    number = read["properties"]["number"]
    assert {"type": "null"} in number["anyOf"]
    assert number["anyOf"][0]["readOnly"] is True
    create = next(s for n, s in schemas.items() if n.endswith("InvoiceCreate"))
    assert "number" not in create["properties"]
    meta = {e["name"]: e for e in api.get("/api/v1/_meta/entities").json()["data"]}
    fields = {f["name"]: f for f in meta["billing.invoice"]["fields"]}
    assert (fields["number"]["assign"], fields["number"]["date_field"]) == (
        "submit",
        "posting_date",
    )
    assert fields["draft_no"]["assign"] == "insert"
    assert "date_field" not in fields["draft_no"]
    assert fields["number"]["gapless"] is True
    orders = {f["name"]: f for f in meta["billing.order"]["fields"]}
    assert orders["number"]["gapless"] is False


def test_parallel_submits_number_one_after_the_other_without_gaps(
    db_url: str, tmp_path: Path
) -> None:
    pack_instance(tmp_path, db_url, "billing", FILES)
    instance = write_instance(tmp_path / "i", db_url, ["billing"], [tmp_path / "packs"])
    token = instance.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(instance.path) as base:
        body = {"customer": "Acme", "posting_date": "2026-02-01", "total": "1.00"}
        ids = [api.post(f"{base}{URL}", json=body).json()["data"]["id"] for _ in range(20)]
        refused = api.post(f"{base}{URL}", json={**body, "total": "0"}).json()["data"]["id"]

        async def race() -> list[httpx.Response]:
            async with httpx.AsyncClient(headers=bearer(token), timeout=120) as client:
                calls = [client.post(f"{base}{URL}/{i}/_submit") for i in [*ids, refused]]
                calls += [client.post(f"{base}{URL}/{ids[0]}/_submit") for _ in range(3)]
                return list(await asyncio.gather(*calls))

        responses = asyncio.run(race())
        assert [r.status_code for r in responses[:20]] == [200] * 20, [
            r.text for r in responses if r.status_code >= 500
        ]
        assert responses[20].status_code == 422
        assert {r.status_code for r in responses[21:]} <= {200, 409, 412}
        numbers = sorted(r.json()["data"]["number"] for r in responses[:20])
        assert numbers == [f"INV-2026-{n:05d}" for n in range(1, 21)]
        refs = sorted(r.json()["data"]["ref"] for r in responses[:20])
        assert refs == [f"sale-2602-{n:03d}" for n in range(1, 21)]
        stored = api.get(f"{base}{URL}", params={"limit": 100}).json()["data"]
        assert sorted(r["number"] for r in stored if r["number"]) == numbers
        late = api.post(f"{base}{URL}", json=body).json()["data"]["id"]
        after = api.post(f"{base}{URL}/{late}/_submit").json()["data"]
        assert after["number"] == "INV-2026-00021"


def order(api: TestClient, **values: Any) -> dict[str, Any]:
    body = {"customer": "Acme", "order_date": "2026-02-01", "total": "10.00", **values}
    response = api.post(ORDERS, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_gapless_false_keeps_the_number_of_a_refused_submit_the_default_gives_it_back(
    api: TestClient,
) -> None:
    assert submitted(api, order(api), ORDERS)["number"] == "SO-2026-0001"
    zero = order(api, total="0.00")
    refused = submit(api, zero, ORDERS)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "total"
    stale = api.post(f"{ORDERS}/{zero['id']}/_submit", headers={"If-Match": '"7"'})
    assert stale.status_code == 412, stale.text
    stored = api.get(f"{ORDERS}/{zero['id']}").json()["data"]
    assert (stored["docstatus"], stored["number"]) == ("draft", None)
    api.patch(f"{ORDERS}/{zero['id']}", json={"total": "5.00"}).raise_for_status()
    # the refused submit drew 0002 and the stale one 0003, and neither gave it back: two
    # gaps, on SQLite as on PostgreSQL
    assert submitted(api, zero, ORDERS)["number"] == "SO-2026-0004"
    assert submitted(api, order(api), ORDERS)["number"] == "SO-2026-0005"
    # the default (gapless) series of the invoices, refused the same way: no gap
    assert submitted(api, draft(api))["number"] == "INV-2025-00001"
    free = draft(api, total="0.00")
    assert submit(api, free).status_code == 422
    api.patch(f"{URL}/{free['id']}", json={"total": "5.00"}).raise_for_status()
    assert submitted(api, free)["number"] == "INV-2025-00002"


def test_parallel_submits_of_a_series_with_gaps_take_distinct_numbers(
    db_url: str, tmp_path: Path
) -> None:
    pack_instance(tmp_path, db_url, "billing", FILES)
    instance = write_instance(tmp_path / "i", db_url, ["billing"], [tmp_path / "packs"])
    token = instance.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(instance.path) as base:
        body = {"customer": "Acme", "order_date": "2026-02-01", "total": "1.00"}
        ids = [api.post(f"{base}{ORDERS}", json=body).json()["data"]["id"] for _ in range(20)]
        refused = api.post(f"{base}{ORDERS}", json={**body, "total": "0"}).json()["data"]["id"]

        async def race() -> list[httpx.Response]:
            async with httpx.AsyncClient(headers=bearer(token), timeout=120) as client:
                calls = [client.post(f"{base}{ORDERS}/{i}/_submit") for i in [*ids, refused]]
                return list(await asyncio.gather(*calls))

        responses = asyncio.run(race())
        assert [r.status_code for r in responses[:20]] == [200] * 20, [
            r.text for r in responses if r.status_code >= 500
        ]
        assert responses[20].status_code == 422
        numbers = [r.json()["data"]["number"] for r in responses[:20]]
        counters = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
        assert len(set(counters)) == 20  # unique; the refused submit's number is a gap
        assert set(counters) < set(range(1, 22))
        stored = api.get(f"{base}{ORDERS}", params={"limit": 100}).json()["data"]
        assert sorted(r["number"] for r in stored if r["number"]) == sorted(numbers)
        late = api.post(f"{base}{ORDERS}", json=body).json()["data"]["id"]
        after = api.post(f"{base}{ORDERS}/{late}/_submit").json()["data"]
        assert after["number"] == "SO-2026-0022"  # 21 drawn before it, one of them refused


@pytest.mark.only_on("postgresql")
def test_a_submit_holding_its_transaction_holds_up_only_gapless_series(
    db_url: str, tmp_path: Path
) -> None:
    """One submit, run by the engine here, draws its number and keeps its transaction open;
    meanwhile another submit of the same series is sent to a real server. An order's
    (``gapless: false``) completes at once; an invoice's (gap-free) waits for the first
    to commit, and then takes the number after it."""
    from engine import EngineModel, WriteContext, open_database
    from metadata import RuleEvent
    from runtime.app import load_definitions

    pack_instance(tmp_path, db_url, "billing", FILES)
    instance = write_instance(tmp_path / "i", db_url, ["billing"], [tmp_path / "packs"])
    token = instance.token()
    model = EngineModel.for_url(load_definitions(instance.settings), db_url)

    async def held(url: str, body: dict[str, Any]) -> tuple[str, str, bool]:
        """The held submit's number, the other's, and whether the other completed while
        the first was held."""
        store = model.store("billing", url.rsplit("/", 1)[1])
        database = await open_database(db_url, pool_size=2)
        try:
            async with httpx.AsyncClient(headers=bearer(token), timeout=60) as client:
                first, second = [
                    (await client.post(f"{base}{url}", json=body)).json()["data"]["id"]
                    for _ in range(2)
                ]
                async with database.transaction() as conn:
                    record = await store.transition(
                        conn, int(first), RuleEvent.SUBMIT, WriteContext()
                    )
                    other = asyncio.ensure_future(client.post(f"{base}{url}/{second}/_submit"))
                    done, _ = await asyncio.wait({other}, timeout=5)
                    completed = bool(done)
                response = await other
        finally:
            await database.close()
        assert response.status_code == 200, response.text
        return str(record["number"]), str(response.json()["data"]["number"]), completed

    with serving(instance.path) as base:
        orders = {"customer": "Acme", "order_date": "2026-02-01", "total": "1.00"}
        invoices = {"customer": "Acme", "posting_date": "2026-02-01", "total": "1.00"}
        assert asyncio.run(held(ORDERS, orders)) == ("SO-2026-0001", "SO-2026-0002", True)
        assert asyncio.run(held(URL, invoices)) == ("INV-2026-00001", "INV-2026-00002", False)
