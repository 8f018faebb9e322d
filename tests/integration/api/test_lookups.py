"""Lookups (``lookup:`` on a field, docs/definitions.md#lookups) through the HTTP API, on
SQLite and PostgreSQL: an invoice's exchange rate read from a rate table by its posting
date, a line's rate read from the price list of its parent's account, when each runs again,
and what a client cannot break."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from metadata import DefinitionError
from runtime.settings import Settings
from tests.conftest import pack_instance
from tests.support.identity import bearer, issue_token
from tests.support.server import serving
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

FILES = {
    "module.yaml": "name: shop\nversion: 1.0.0\n",
    "entities/currency_rate.yaml": """\
fields:
  from_currency: {type: string, max_length: 3, required: true}
  to_currency:   {type: string, max_length: 3, required: true}
  date:          {type: date, required: true}
  rate:          {type: decimal, precision: 18, scale: 6, required: true}
""",
    "entities/fx_tick.yaml": """\
fields:
  currency: {type: string, max_length: 3, required: true}
  at:       {type: datetime, required: true}
  rate:     {type: decimal, precision: 18, scale: 6, required: true}
""",
    "entities/price_list.yaml": """\
title: name
fields:
  name: {type: string, unique: true, required: true}
""",
    "entities/account.yaml": """\
title: name
fields:
  name:       {type: string, unique: true, required: true}
  price_list: {type: reference, to: price_list}
""",
    "entities/item.yaml": """\
title: name
fields:
  name: {type: string, unique: true, required: true}
""",
    "entities/item_price.yaml": """\
fields:
  price_list: {type: reference, to: price_list, required: true}
  item:       {type: reference, to: item, required: true}
  rate:       {type: decimal, scale: 2, required: true}
unique: [[price_list, item]]
""",
    "entities/invoice.yaml": """\
document: true
fields:
  account:      {type: reference, to: account, required: true}
  posting_date: {type: date, required: true, allow_on_submit: true}
  currency:     {type: string, max_length: 3, default: "{{ company_currency }}"}
  exchange_rate:
    type: decimal
    precision: 12
    scale: 6
    required: true
    default: 1
    lookup:
      entity: currency_rate
      field: rate
      where: {from_currency: currency, to_currency: company_currency}
      latest: {by: date, on_or_before: posting_date}
      when: "currency != company_currency"
      code: no_exchange_rate
  spot_rate:
    type: decimal
    precision: 12
    scale: 6
    lookup:
      entity: fx_tick
      field: rate
      where: {currency: currency}
      latest: {by: at, on_or_before: posting_date}
  grand_total:      {type: decimal, scale: 2}
  base_grand_total: {type: decimal, scale: 2, computed: "grand_total * exchange_rate"}
  lines:            {type: children, entity: invoice_line}
""",
    "entities/invoice_line.yaml": """\
fields:
  item: {type: reference, to: item, required: true}
  qty:  {type: integer, required: true}
  rate:
    type: decimal
    scale: 2
    lookup:
      entity: item_price
      field: rate
      where: {price_list: parent.account.price_list, item: item}
  amount: {type: decimal, scale: 2, computed: "qty * rate"}
""",
}
API = "/api/v1/shop"
_NUMBERS = itertools.count(1)


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(
        tmp_path, db_url, "shop", FILES, company={"currency": "EUR"}, reload_interval=0
    )


@pytest.fixture
def client(shop: Instance) -> Iterator[TestClient]:
    with shop.client() as client:
        for date, rate in (("2026-01-01", "0.90"), ("2026-02-01", "0.92"), ("2026-03-01", "0.95")):
            post(
                client,
                "currency_rate",
                from_currency="USD",
                to_currency="EUR",
                date=date,
                rate=rate,
            )
        post(
            client,
            "currency_rate",
            from_currency="GBP",
            to_currency="USD",
            date="2026-01-01",
            rate="1.3",
        )
        yield client


def post(client: TestClient, entity: str, **values: Any) -> dict[str, Any]:
    response = client.post(f"{API}/{entity}", json=values)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["data"]
    return record


def invoice(client: TestClient, **values: Any) -> httpx.Response:
    account = (
        values.pop("account", None) or post(client, "account", name=f"A{next(_NUMBERS)}")["id"]
    )
    body = {"account": account, "posting_date": "2026-02-15", "grand_total": "100.00", **values}
    # as json.dumps writes it: a lone surrogate travels as a \ud800 escape
    content = json.dumps(body)
    return client.post(
        f"{API}/invoice", content=content, headers={"content-type": "application/json"}
    )


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["data"]
    return record


def errors(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(e["field"], e["code"]) for e in response.json()["errors"]]


def test_the_rate_is_the_latest_on_or_before_the_posting_date(client: TestClient) -> None:
    mid_february = created(invoice(client, currency="USD"))
    assert mid_february["exchange_rate"] == "0.920000"
    assert mid_february["base_grand_total"] == "92.00"  # computed fields see the rate
    on_the_day = created(invoice(client, currency="USD", posting_date="2026-03-01"))
    assert on_the_day["exchange_rate"] == "0.950000"
    last_day_before = created(invoice(client, currency="USD", posting_date="2026-02-28"))
    assert last_day_before["exchange_rate"] == "0.920000"


def test_a_value_sent_wins_and_the_company_currency_takes_the_default(
    client: TestClient,
) -> None:
    typed = created(invoice(client, currency="USD", exchange_rate="1.5"))
    assert typed["exchange_rate"] == "1.500000"
    assert typed["base_grand_total"] == "150.00"
    home = created(invoice(client))  # currency: the company's (EUR), when: false → default
    assert (home["currency"], home["exchange_rate"]) == ("EUR", "1.000000")


def test_no_rate_is_a_422_with_the_lookups_code_at_the_field(client: TestClient) -> None:
    before_any = invoice(client, currency="USD", posting_date="2025-12-31")
    assert errors(before_any) == [("exchange_rate", "no_exchange_rate")]
    message = before_any.json()["errors"][0]["message"]
    assert "shop.currency_rate" in message
    assert "date on or before '2025-12-31'" in message
    assert errors(invoice(client, currency="CHF")) == [("exchange_rate", "no_exchange_rate")]
    # a rate from GBP to USD is not one to EUR
    assert errors(invoice(client, currency="GBP")) == [("exchange_rate", "no_exchange_rate")]
    assert client.get(f"{API}/invoice").json()["data"] == []


def test_a_line_takes_its_rate_from_the_price_list_of_its_parents_account(
    client: TestClient,
) -> None:
    retail = post(client, "price_list", name="Retail")
    wholesale = post(client, "price_list", name="Wholesale")
    bolt, nut, gear = (post(client, "item", name=n)["id"] for n in ("bolt", "nut", "gear"))
    post(client, "item_price", price_list=retail["id"], item=bolt, rate="2.50")
    post(client, "item_price", price_list=wholesale["id"], item=bolt, rate="1.75")
    post(client, "item_price", price_list=retail["id"], item=nut, rate="0.40")
    shop_account = post(client, "account", name="Shop", price_list=retail["id"])
    lines = [
        {"item": bolt, "qty": 4},
        {"item": {"name": "nut"}, "qty": 10},  # named by a unique field
        {"item": nut, "qty": 1, "rate": "0.35"},  # typed: wins
        {"item": gear, "qty": 2},  # no price: empty, and so is its amount
    ]
    record = created(invoice(client, account=shop_account["id"], lines=lines))
    assert [(line["rate"], line["amount"]) for line in record["lines"]] == [
        ("2.50", "10.00"),
        ("0.40", "4.00"),
        ("0.35", "0.35"),
        (None, None),
    ]
    trade = post(client, "account", name="Trade", price_list=wholesale["id"])
    record = created(invoice(client, account=trade["id"], lines=[{"item": bolt, "qty": 1}]))
    assert record["lines"][0]["rate"] == "1.75"
    no_list = post(client, "account", name="Walk-in")
    record = created(invoice(client, account=no_list["id"], lines=[{"item": bolt, "qty": 1}]))
    assert record["lines"][0]["rate"] is None


def test_a_line_sent_again_without_its_rate_is_looked_up_again(client: TestClient) -> None:
    retail = post(client, "price_list", name="Retail")
    bolt = post(client, "item", name="bolt")["id"]
    post(client, "item_price", price_list=retail["id"], item=bolt, rate="2.50")
    account = post(client, "account", name="Shop", price_list=retail["id"])["id"]
    record = created(
        invoice(client, account=account, lines=[{"item": bolt, "qty": 1, "rate": "9.00"}])
    )
    line = record["lines"][0]
    kept = client.patch(
        f"{API}/invoice/{record['id']}",
        json={"lines": [{"id": line["id"], "item": bolt, "qty": 2}]},
    )
    assert kept.status_code == 200, kept.text
    assert (kept.json()["data"]["lines"][0]["rate"], kept.json()["data"]["lines"][0]["amount"]) == (
        "2.50",
        "5.00",
    )


def test_a_draft_looks_up_again_when_an_input_changes(client: TestClient) -> None:
    record = created(invoice(client, currency="USD"))
    url = f"{API}/invoice/{record['id']}"

    def patch(**values: Any) -> dict[str, Any]:
        response = client.patch(url, json=values)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    assert patch(posting_date="2026-03-05")["exchange_rate"] == "0.950000"
    post(
        client,
        "currency_rate",
        from_currency="USD",
        to_currency="EUR",
        date="2026-03-02",
        rate="0.97",
    )
    unchanged = patch(grand_total="200.00")  # no input changed: the stored rate stays
    assert (unchanged["exchange_rate"], unchanged["base_grand_total"]) == ("0.950000", "190.00")
    assert patch(posting_date="2026-03-06")["exchange_rate"] == "0.970000"
    assert patch(posting_date="2026-03-07", exchange_rate="1.01")["exchange_rate"] == "1.010000"
    assert patch(currency="EUR")["exchange_rate"] == "1.000000"  # when: false → the default
    assert patch(currency="USD")["exchange_rate"] == "0.970000"
    refused = client.patch(url, json={"posting_date": "2025-06-01"})
    assert errors(refused) == [("exchange_rate", "no_exchange_rate")]

    submitted = client.post(f"{url}/_submit")
    assert submitted.status_code == 200, submitted.text
    after = patch(posting_date="2026-01-15")  # allow_on_submit: a submitted rate never changes
    assert (after["posting_date"], after["exchange_rate"]) == ("2026-01-15", "0.970000")


def test_a_bulk_create_looks_up_each_record(client: TestClient) -> None:
    account = post(client, "account", name="Bulk")["id"]
    body = [
        {"account": account, "posting_date": day, "currency": "USD", "grand_total": "10.00"}
        for day in ("2026-01-20", "2026-02-20", "2026-03-20")
    ]
    response = client.post(f"{API}/invoice/_bulk", json=body)
    assert response.status_code == 201, response.text
    assert [r["exchange_rate"] for r in response.json()["data"]] == [
        "0.900000",
        "0.920000",
        "0.950000",
    ]
    body[1]["posting_date"] = "2025-01-01"
    refused = client.post(f"{API}/invoice/_bulk", json=body)
    assert refused.status_code == 422, refused.text
    assert [(e["index"], e["field"], e["code"]) for e in refused.json()["errors"]] == [
        (1, "exchange_rate", "no_exchange_rate")
    ]


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"currency": "U\u0000D"}, "currency"),
        ({"currency": "\ud800SD"}, "currency"),
        ({"posting_date": "10000-01-01"}, "posting_date"),
        ({"posting_date": "0000-12-31"}, "posting_date"),
        ({"exchange_rate": "1e400"}, "exchange_rate"),
        ({"exchange_rate": "9" * 40}, "exchange_rate"),
        ({"exchange_rate": {"rate": 1}}, "exchange_rate"),
        ({"grand_total": "9" * 30}, "grand_total"),
    ],
)
def test_hostile_inputs_are_422_not_500(
    client: TestClient, values: dict[str, Any], field: str
) -> None:
    response = invoice(client, **{"currency": "USD", **values})
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_hostile_line_inputs_are_422_not_500(client: TestClient) -> None:
    for item in ({"name": "\u0000"}, {"name": "\udfff"}, "99999999999999999999999", -1):
        response = invoice(client, lines=[{"item": item, "qty": 1}])
        assert response.status_code == 422, response.text
        fields = [e["field"] for e in response.json()["errors"]]
        assert any(f.startswith("lines[0].item") for f in fields), response.text


def test_a_rate_that_does_not_fit_the_field_is_a_422_at_the_field(client: TestClient) -> None:
    post(
        client,
        "currency_rate",
        from_currency="JPY",
        to_currency="EUR",
        date="2026-01-01",
        rate="12345678.5",  # fits the rate table (18 digits), not exchange_rate (12)
    )
    response = invoice(client, currency="JPY")
    assert errors(response) == [("exchange_rate", "max")]
    assert response.json()["errors"][0]["message"].startswith("looked-up value must have")


RACERS = 24


def test_parallel_creates_each_read_their_rate(shop: Instance) -> None:
    token = shop.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(shop.path) as base:
        for date, rate in (("2026-01-01", "0.90"), ("2026-02-01", "0.92")):
            body = {"from_currency": "USD", "to_currency": "EUR", "date": date, "rate": rate}
            assert api.post(f"{base}{API}/currency_rate", json=body).status_code == 201
        account = api.post(f"{base}{API}/account", json={"name": "Racer"}).json()["data"]["id"]

        async def race() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, headers=bearer(token), timeout=60) as c:
                bodies = [
                    {
                        "account": account,
                        "currency": "USD",
                        "posting_date": "2026-01-15" if i % 2 else "2026-02-15",
                        "grand_total": "10.00",
                    }
                    for i in range(RACERS)
                ]
                return list(
                    await asyncio.gather(*(c.post(f"{API}/invoice", json=b) for b in bodies))
                )

        responses = asyncio.run(race())
    assert [r.status_code for r in responses] == [201] * RACERS, [r.text for r in responses]
    for i, response in enumerate(responses):
        assert response.json()["data"]["exchange_rate"] == ("0.900000" if i % 2 else "0.920000")


def test_the_web_form_leaves_an_empty_lookup_field_to_the_lookup(shop: Instance) -> None:
    with shop.client() as api:
        for date, rate in (("2026-01-01", "0.90"), ("2026-02-01", "0.92")):
            post(api, "currency_rate", from_currency="USD", to_currency="EUR", date=date, rate=rate)
        account = post(api, "account", name="Web")["id"]
    issue_token(shop.settings.database_url, "ada", ("admin",), password="correct horse battery")
    with signed_in(shop, "ada", "correct horse battery") as browser:
        form = browser.get("/app/shop/invoice/new")
        made = browser.post(
            "/app/shop/invoice/new",
            data={
                "csrf_token": csrf_of(form),
                "account": account,
                "posting_date": "2026-02-03",
                "currency": "USD",
                "exchange_rate": "",
                "grand_total": "10.00",
            },
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
        record_id = made.headers["location"].split("/")[-1].split("?")[0]
    with shop.client() as api:
        record = api.get(f"{API}/invoice/{record_id}").json()["data"]
    assert (record["exchange_rate"], record["base_grand_total"]) == ("0.920000", "9.20")


@pytest.mark.parametrize(
    ("company", "message"),
    [
        ({"currency": "euro"}, "company: currency 'euro' is not a currency code"),
        ({"currency": 978}, "company: 'currency' must be text"),
        ({"colour": "red"}, "company: unknown key(s): colour; known: name, currency"),
        ("EUR", "company: expected a mapping"),
    ],
)
def test_the_company_setting_is_checked(tmp_path: Path, company: Any, message: str) -> None:
    (tmp_path / "tessera.yaml").write_text(json.dumps({"company": company}), encoding="utf-8")
    with pytest.raises(DefinitionError) as raised:
        Settings.load(tmp_path / "tessera.yaml")
    assert message in str(raised.value.problems[0])


def test_the_company_setting_names_expressions(tmp_path: Path) -> None:
    config = {"company": {"name": "Acme GmbH", "currency": "EUR"}}
    (tmp_path / "tessera.yaml").write_text(json.dumps(config), encoding="utf-8")
    settings = Settings.load(tmp_path / "tessera.yaml")
    assert settings.company.instance_names() == {
        "company_name": "Acme GmbH",
        "company_currency": "EUR",
    }


def test_latest_by_a_datetime_takes_the_whole_day_of_a_date(client: TestClient) -> None:
    for at, rate in (
        ("2026-02-14T09:00:00+00:00", "1.10"),
        ("2026-02-15T23:59:59+00:00", "1.20"),
        ("2026-02-16T00:00:00+00:00", "1.30"),
    ):
        post(client, "fx_tick", currency="USD", at=at, rate=rate)
    record = created(invoice(client, currency="USD", posting_date="2026-02-15"))
    assert record["spot_rate"] == "1.200000"
    record = created(invoice(client, currency="USD", posting_date="2026-02-14"))
    assert record["spot_rate"] == "1.100000"
    record = created(invoice(client, currency="USD", posting_date="2026-02-13"))
    assert record["spot_rate"] is None  # not required: nothing found leaves it empty


def test_the_meta_api_says_which_fields_are_looked_up(client: TestClient) -> None:
    entities = client.get("/api/v1/_meta/entities").json()["data"]
    invoice = next(e for e in entities if e["name"] == "shop.invoice")
    fields = {f["name"]: f for f in invoice["fields"]}
    assert fields["exchange_rate"]["lookup"] == {"entity": "shop.currency_rate", "field": "rate"}
    assert "lookup" not in fields["currency"]
