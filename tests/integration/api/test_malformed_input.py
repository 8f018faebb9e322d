"""Malformed input never answers 500 or a silently wrong 200 (issue 14, item 3).

NUL characters and unpaired surrogates, numbers a column cannot hold, integers and ids
beyond 64 bits, datetimes whose offset leaves the representable range: in filters, ``q``,
cursors, aggregates, exports, the web list and JSON bodies, on SQLite and PostgreSQL alike.
Each is a 400 (a parameter) or a 422 (a body's field) problem naming what was wrong, and
the boundary values a column does hold still filter, sort and page correctly.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from engine.errors import BadQuery
from engine.fieldtypes import InvalidValue
from engine.fieldtypes.numeric import fit_decimal, parse_integer
from runtime.app import TesseraApp, build_app
from tests.support.identity import issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient
    from httpx import Response

    from tests.conftest import Instance

ITEMS = "/api/v1/kitchen/item"
CATEGORIES = "/api/v1/kitchen/category"
READS = (ITEMS, f"{ITEMS}/_aggregate", f"{ITEMS}/_export")
INT64_MAX = 2**63 - 1
PASSWORD = "correct horse battery"
BIG = "9" * 5000  # more digits than Python converts to an int


@pytest.fixture(autouse=True)
def no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No request of these tests may reach the server's unexpected-error log."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [f"{r.name}: {r.getMessage()}" for r in errors]


@pytest.fixture
def api(kitchen: Instance) -> Iterator[TestClient]:
    with kitchen.client() as client:
        category = client.post(CATEGORIES, json={"name": "Tools"}).json()["data"]["id"]
        for item in SEED:
            made = client.post(ITEMS, json={**item, "category": category})
            assert made.status_code == 201, made.text
        yield client


SEED: list[dict[str, Any]] = [
    {
        "name": "Anvil",
        "code": "A-1",
        "quantity": 1,
        "price": "5.00",
        "rate": "-1.5",
        "due": "2024-01-01",
        "seen_at": "2024-01-01T00:00:00Z",
    },
    {  # the largest values each column holds, the earliest dates
        "name": "Bolt",
        "code": "B-1",
        "quantity": INT64_MAX,
        "price": "999999999999.99",
        "rate": "999.999999",
        "due": "0001-01-01",
        "seen_at": "0001-01-01T00:00:00Z",
    },
    {  # the smallest steps, the latest dates
        "name": "Chisel",
        "code": "C-1",
        "quantity": INT64_MAX,
        "price": "0.01",
        "rate": "-999.999999",
        "due": "9999-12-31",
        "seen_at": "9999-12-31T23:59:59.999999Z",
    },
]


def get(client: TestClient, path: str, params: list[tuple[str, str]]) -> Response:
    """GET with the query string encoded here, byte for byte (NUL and all)."""
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    return client.get(f"{path}?{query}")


def send(client: TestClient, method: str, path: str, body: Any) -> Response:
    """A JSON body as ``json.dumps`` writes it: unpaired surrogates as ``\\ud800`` escapes."""
    return client.request(
        method, path, content=json.dumps(body), headers={"content-type": "application/json"}
    )


def assert_problem(response: Response, status: int, name: str) -> None:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    named = [problem["detail"], *(e["field"] for e in problem.get("errors", []))]
    assert any(name in text for text in named), (name, problem)


def names(response: Response) -> list[str]:
    assert response.status_code == 200, response.text[:500]
    return sorted(record["name"] for record in response.json()["data"])


def cursor(payload: str) -> str:
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


# -- query parameters ------------------------------------------------------------------


NUL_PARAMETERS = [
    ("name", "a\x00b"),
    ("q", "\x00"),
    ("name__contains", "a\x00b"),
    ("notes__icontains", "\x00"),
    ("name__startswith", "\x00"),
    ("name__in", "a\x00b,c"),
    ("name__nin", "c,\x00"),
    ("status", "open\x00"),
    ("number", "IT\x00"),
    ("email__ne", "\x00@x.io"),
    ("category__name", "Tools\x00"),
    ("created_by", "\x00"),
    ("sort", "name\x00"),
    ("fields", "\x00"),
    ("na\x00me", "x"),
]


def test_nul_in_any_parameter_is_a_400_naming_it(api: TestClient) -> None:
    for key, value in NUL_PARAMETERS:
        for path in READS:
            response = get(api, path, [(key, value)])
            assert_problem(response, 400, key.replace("\x00", "\\u0000"))
    assert_problem(get(api, f"{ITEMS}/_aggregate", [("group_by", "\x00")]), 400, "group_by")


def test_invalid_utf8_in_a_query_string_is_only_text(api: TestClient) -> None:
    # Percent-escapes that are not UTF-8 (a CESU-8 surrogate, a lone continuation byte)
    # decode to U+FFFD: text that matches nothing, never an error.
    for query in ("name=%ED%A0%80", "q=%ED%A0%80", "q=%80", "name__in=%FF,%C0%80"):
        for path in READS:
            response = api.get(f"{path}?{query}")
            assert response.status_code == 200, (path, query, response.text[:300])
    assert names(api.get(f"{ITEMS}?q=%ED%A0%80")) == []


def test_unpaired_surrogates_reach_no_query(kitchen: Instance) -> None:
    """Query strings cannot carry a surrogate over HTTP (they decode to U+FFFD), but the
    parsers refuse one from any caller (the web UI, the CLI) before it reaches SQL."""
    app = build_app(kitchen.settings)
    assert isinstance(app, TesseraApp)
    store = app.live.current.model.store("kitchen", "item")
    for key, value in [("name", "x\ud800"), ("q", "\udfff"), ("x\ud800", "1")]:
        with pytest.raises(BadQuery, match="unpaired surrogates"):
            store.parser.parse([(key, value)])
    with pytest.raises(BadQuery, match="group_by"):
        store.aggregate_parser.parse([("group_by", "\ud800")])


def test_a_crafted_cursor_is_a_400(api: TestClient) -> None:
    crafted = [
        ("name", '{"s":"name","v":["a\\u0000",1]}'),
        ("name", '{"s":"name","v":["a\\ud800",1]}'),
        ("seen_at", '{"s":"seen_at","v":["0001-01-01T00:00:00+01:00",1]}'),
        ("seen_at", '{"s":"seen_at","v":["9999-12-31T23:59:59-01:00",1]}'),
        ("due", '{"s":"due","v":["0000-01-01",1]}'),
        ("price", '{"s":"price","v":["1e131072",1]}'),
        ("price", '{"s":"price","v":[1e131072,1]}'),
        ("price", '{"s":"price","v":["5.001",1]}'),
        ("price", '{"s":"price","v":["NaN",1]}'),
        ("quantity", '{"s":"quantity","v":["99999999999999999999",1]}'),
        ("quantity", '{"s":"quantity","v":[1,99999999999999999999]}'),
        ("quantity", '{"s":"quantity","v":[1,"' + BIG + '"]}'),
        ("name", "not base64 at all \x00"),
    ]
    for sort, payload in crafted:
        response = get(api, ITEMS, [("sort", sort), ("cursor", cursor(payload))])
        assert_problem(response, 400, "cursor")


def test_cursors_walk_the_boundary_values(api: TestClient) -> None:
    for sort in ("seen_at", "-seen_at", "due", "-due", "-price", "rate", "-quantity", "name"):
        assert walk(api, sort) == ["Anvil", "Bolt", "Chisel"], sort


def walk(api: TestClient, sort: str) -> list[str]:
    seen: list[str] = []
    params = [("sort", sort), ("limit", "1")]
    while True:
        page = get(api, ITEMS, params)
        assert page.status_code == 200, page.text
        seen += [r["name"] for r in page.json()["data"]]
        token = page.json()["meta"]["next_cursor"]
        if token is None:
            break
        params = [("sort", sort), ("limit", "1"), ("cursor", token)]
    return sorted(seen)


# -- numbers ---------------------------------------------------------------------------


UNFIT_DECIMALS = [
    "100000000000000",  # 15 digits; price is decimal(14, 2)
    "1000000000000",  # 13 digits before the point
    "1e999999999",
    "1e131072",
    "-1e131072",
    "1e-999999999",
    "5.001",  # PostgreSQL would round it to 5.00: price__lt=5.001 would miss 5.00
    "NaN",
    "Infinity",
    "-inf",
    "1e",
    "0x10",
]


def test_decimal_filters_the_column_cannot_hold_are_a_400(api: TestClient) -> None:
    for value in UNFIT_DECIMALS:
        for path in READS:
            for op in ("", "__gt", "__lte", "__ne"):
                assert_problem(get(api, path, [(f"price{op}", value)]), 400, f"price{op}")
            assert_problem(get(api, path, [("price__in", f"5,{value}")]), 400, "price__in")
            assert_problem(get(api, path, [("price__nin", f"{value},5")]), 400, "price__nin")


def test_decimal_filters_within_the_column_are_exact(api: TestClient) -> None:
    assert names(get(api, ITEMS, [("price__gt", "-0")])) == ["Anvil", "Bolt", "Chisel"]
    assert names(get(api, ITEMS, [("price__gt", "999999999999.98")])) == ["Bolt"]
    assert names(get(api, ITEMS, [("price__lte", "999999999999.99")])) == [
        "Anvil",
        "Bolt",
        "Chisel",
    ]
    assert names(get(api, ITEMS, [("price__in", "5,0.01")])) == ["Anvil", "Chisel"]
    assert names(get(api, ITEMS, [("price__lt", "5.00")])) == ["Chisel"]
    assert names(get(api, ITEMS, [("price", "5.0")])) == ["Anvil"]
    assert names(get(api, ITEMS, [("rate__lt", "-999.999998")])) == ["Chisel"]
    assert_problem(get(api, ITEMS, [("rate__gt", "1000")]), 400, "rate__gt")
    assert_problem(get(api, ITEMS, [("rate", "0.0000001")]), 400, "rate")


def test_integers_and_ids_beyond_64_bits(api: TestClient) -> None:
    for path in READS:
        for key, value in [
            ("quantity__gt", str(INT64_MAX + 1)),
            ("quantity", str(-(2**63) - 1)),
            ("quantity__in", f"1,{2**64}"),
            ("quantity", BIG),
            ("quantity", "1e3"),
            ("id", "99999999999999999999"),
            ("id__in", f"1,{BIG}"),
            ("category", "99999999999999999999"),
            ("category", "0"),
            ("version", BIG),
        ]:
            assert_problem(get(api, path, [(key, value)]), 400, key)
    assert names(get(api, ITEMS, [("quantity", str(INT64_MAX))])) == ["Bolt", "Chisel"]
    for key in ("limit", "offset"):
        assert_problem(get(api, ITEMS, [(key, BIG)]), 400, key)
    for record_id in ("99999999999999999999", BIG, "-1", "0", "1e3"):
        assert api.get(f"{ITEMS}/{record_id}").status_code == 404
        assert send(api, "PATCH", f"{ITEMS}/{record_id}", {"name": "x"}).status_code == 404
        assert api.delete(f"{ITEMS}/{record_id}").status_code == 404


def test_bodies_with_numbers_beyond_their_columns_are_a_422(api: TestClient) -> None:
    started = time.monotonic()
    for body, field in [
        ('{"name": "x", "quantity": 1e999999999}', "quantity"),  # not built as an int
        ('{"name": "x", "quantity": 9223372036854775808}', "quantity"),
        ('{"name": "x", "quantity": 1.5}', "quantity"),
        ('{"name": "x", "price": 1e131072}', "price"),
        ('{"name": "x", "price": "1000000000000"}', "price"),
        ('{"name": "x", "price": 0.001}', "price"),
        ('{"name": "x", "category": 99999999999999999999}', "category"),
        ('{"name": "x", "attributes": {"a": 1e999}}', "attributes"),
        ('{"name": "x", "attributes": [99999999999999999999999]}', "attributes"),
        ('{"name": "x", "attributes": 9223372036854775808}', "attributes"),
        ('{"name": "x", "attributes": ' + "[" * 100 + "]" * 100 + "}", "attributes"),
    ]:
        response = api.post(ITEMS, content=body, headers={"content-type": "application/json"})
        assert_problem(response, 422, field)
    assert time.monotonic() - started < 10
    made = send(api, "POST", ITEMS, {"name": "x", "price": "-0", "attributes": {"a": [[1.5]]}})
    assert made.status_code == 201, made.text
    assert made.json()["data"]["price"] == "0.00"
    for value in (0, 1.5, -7, 2**63 - 1, "12", True):  # a bare number: SQLite gives it back
        stored = send(api, "POST", ITEMS, {"name": "bare", "attributes": value})
        assert stored.status_code == 201, stored.text
        again = api.get(f"{ITEMS}/{stored.json()['data']['id']}").json()["data"]
        assert again["attributes"] == value


def test_aggregates_beyond_64_bits_are_exact(api: TestClient) -> None:
    response = get(
        api,
        f"{ITEMS}/_aggregate",
        [("measures", "quantity__sum,quantity__avg,price__sum,rate__sum,rate__avg")],
    )
    assert response.status_code == 200, response.text
    (row,) = response.json()["data"]
    assert row["quantity__sum"] == str(2 * INT64_MAX + 1)  # a string: JSON loses it
    assert Decimal(row["quantity__avg"]) == Decimal(2 * INT64_MAX + 1) / 3
    assert row["price__sum"] == "1000000000005.00"
    assert row["rate__sum"] == "-1.500000"
    assert row["rate__avg"] == "-0.500000"
    ordered = get(
        api,
        f"{ITEMS}/_aggregate",
        [("group_by", "name"), ("measures", "quantity__sum"), ("sort", "-quantity__sum")],
    )
    assert [r["name"] for r in ordered.json()["data"]][-1] == "Anvil"


# -- dates and datetimes -----------------------------------------------------------------


OUT_OF_RANGE_DATES = [
    ("seen_at__gt", "0001-01-01T00:00:00+01:00"),  # the year 0 in UTC
    ("seen_at__lt", "9999-12-31T23:59:59-01:00"),  # the year 10000 in UTC
    ("created_at__gt", "0001-01-01T00:00:00+01:00"),
    ("updated_at", "9999-12-31T23:00:00-23:59"),
    ("seen_at__in", "2024-01-01T00:00:00Z,0001-01-01T00:59:59+01:00"),
    ("seen_at", "0000-01-01T00:00:00Z"),
    ("seen_at", "2024-01-01T24:00:00Z"),
    ("seen_at", "2024-01-01T00:00:00+99:00"),
    ("due", "0000-01-01"),
    ("due", "10000-01-01"),
    ("due__gte", "2024-02-30"),
]


def test_datetimes_outside_the_range_are_a_400(api: TestClient) -> None:
    for key, value in OUT_OF_RANGE_DATES:
        for path in READS:
            assert_problem(get(api, path, [(key, value)]), 400, key)


def test_boundary_datetimes_filter_group_and_sort(api: TestClient) -> None:
    assert names(get(api, ITEMS, [("seen_at__lte", "0001-01-01T00:00:00Z")])) == ["Bolt"]
    assert names(get(api, ITEMS, [("seen_at__lt", "0001-01-01T23:00:00-22:00")])) == ["Bolt"]
    assert names(get(api, ITEMS, [("seen_at__gte", "9999-12-31T23:59:59Z")])) == ["Chisel"]
    assert names(get(api, ITEMS, [("due", "9999-12-31")])) == ["Chisel"]
    years = get(
        api,
        f"{ITEMS}/_aggregate",
        [("group_by", "seen_at__year"), ("measures", "seen_at__min,due__max")],
    )
    assert years.status_code == 200, years.text
    assert [r["seen_at__year"] for r in years.json()["data"]] == ["0001", "2024", "9999"]
    export = get(api, f"{ITEMS}/_export", [("seen_at__lt", "2000-01-01T00:00:00Z")])
    assert export.status_code == 200
    assert "0001-01-01" in export.text
    too_early = send(api, "POST", ITEMS, {"name": "x", "seen_at": "0001-01-01T00:00:00+01:00"})
    assert_problem(too_early, 422, "seen_at")


def _set_time_zone(url: str, zone: str | None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        database = sql.Identifier(row[0])
        if zone is None:
            conn.execute(sql.SQL("ALTER DATABASE {} RESET TimeZone").format(database))
        else:
            statement = sql.SQL("ALTER DATABASE {} SET TimeZone TO {}")
            conn.execute(statement.format(database, sql.Literal(zone)))


def test_date_buckets_are_utc_days_whatever_the_servers_time_zone(
    kitchen: Instance, backend: str
) -> None:
    url = kitchen.settings.database_url.replace("+psycopg", "")
    if backend == "postgresql":  # sessions 14 hours ahead of UTC
        _set_time_zone(url, "Pacific/Kiritimati")
    try:
        with kitchen.client() as client:
            for when in ("2024-12-31T20:00:00Z", "9999-12-31T23:59:59Z"):
                made = send(client, "POST", ITEMS, {"name": when, "seen_at": when})
                assert made.status_code == 201, made.text
            days = get(client, f"{ITEMS}/_aggregate", [("group_by", "seen_at__day")])
            assert days.status_code == 200, days.text
            buckets = [r["seen_at__day"] for r in days.json()["data"]]
            assert buckets == ["2024-12-31", "9999-12-31"]
    finally:
        if backend == "postgresql":
            _set_time_zone(url, None)


# -- bodies ----------------------------------------------------------------------------


def test_unpaired_surrogates_in_bodies_are_a_422_naming_the_field(api: TestClient) -> None:
    before = get(api, ITEMS, [("count", "true")]).json()["meta"]["count"]
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", ITEMS, {"name": "x\ud800y"}, "name"),
        ("POST", ITEMS, {"name": "x", "notes": "\udfff"}, "notes"),
        ("POST", ITEMS, {"name": "x", "status": "\ud800"}, "status"),
        ("POST", ITEMS, {"name": "x", "\ud800": 1}, ""),
        ("POST", ITEMS, {"name": "x", "attributes": {"k": ["\ud800"]}}, "attributes.k[0]"),
        ("POST", ITEMS, {"name": "x", "attributes": {"\ud800": 1}}, "attributes"),
        ("POST", ITEMS, {"name": "x", "category": {"name": "\ud800"}}, "category.name"),
        ("POST", ITEMS, {"name": "x", "category": {"\ud800": "Tools"}}, "category"),
        (
            "POST",
            ITEMS,
            {"name": "x", "lines": [{"description": "\ud800", "qty": 1}]},
            "lines[0].description",
        ),
        ("PATCH", f"{ITEMS}/1", {"name": "\ud800"}, "name"),
        ("PUT", f"{ITEMS}/by/code/NEW-1", {"name": "\ud800"}, "name"),
        ("PUT", f"{CATEGORIES}/by/name/Tools", {"name": "\ud800"}, "name"),
        ("POST", f"{ITEMS}/_bulk", [{"name": "ok"}, {"name": "\ud800"}], "name"),
    ]
    for method, path, body, field in cases:
        response = send(api, method, path, body)
        assert_problem(response, 422, field)
        assert "unpaired surrogate" in response.text
    bulk = send(api, "POST", f"{ITEMS}/_bulk", [{"name": "ok"}, {"name": "\ud800"}])
    assert [e.get("index") for e in bulk.json()["errors"]] == [1]
    assert get(api, ITEMS, [("count", "true")]).json()["meta"]["count"] == before
    assert api.get(f"{ITEMS}/1").json()["data"]["name"] == "Anvil"
    paired = send(api, "POST", ITEMS, {"name": "emoji \U0001f600", "notes": "\u00e9"})
    assert paired.status_code == 201, paired.text
    assert paired.json()["data"]["name"] == "emoji \U0001f600"


def test_nul_in_bodies_is_a_422_on_both_databases(api: TestClient) -> None:
    before = get(api, ITEMS, [("count", "true")]).json()["meta"]["count"]
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", ITEMS, {"name": "x\x00y"}, "name"),
        ("POST", ITEMS, {"name": "x", "notes": "\x00"}, "notes"),
        ("POST", ITEMS, {"name": "x", "email": "a\x00@x.io"}, "email"),
        ("POST", ITEMS, {"name": "x", "status": "open\x00"}, "status"),
        ("POST", ITEMS, {"name": "x", "na\x00me": 1}, "na\x00me"),
        ("POST", ITEMS, {"name": "x", "attributes": {"k": "\x00"}}, "attributes"),
        ("POST", ITEMS, {"name": "x", "attributes": {"\x00": 1}}, "attributes"),
        ("POST", ITEMS, {"name": "x", "category": {"name": "Tools\x00"}}, "category"),
        ("POST", ITEMS, {"name": "x", "lines": [{"description": "\x00", "qty": 1}]}, "lines"),
        ("PATCH", f"{ITEMS}/1", {"notes": "a\x00"}, "notes"),
        ("PUT", f"{ITEMS}/by/code/NEW-1", {"name": "a\x00"}, "name"),
        ("PUT", f"{CATEGORIES}/by/name/a%00b", {}, "name"),
        ("PUT", f"{ITEMS}/by/code/A%00", {"name": "x"}, "code"),
        ("POST", f"{ITEMS}/_bulk", [{"name": "\x00"}], "name"),
    ]
    for method, path, body, field in cases:
        assert_problem(send(api, method, path, body), 422, field)
    assert get(api, ITEMS, [("count", "true")]).json()["meta"]["count"] == before


# -- the web UI's list -------------------------------------------------------------------


def test_the_web_list_answers_bad_filters_with_a_400_page(kitchen: Instance) -> None:
    issue_token(kitchen.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(kitchen, "ada", PASSWORD) as browser:
        assert browser.get("/app/kitchen/item").status_code == 200
        for key, value in [
            ("name", "a\x00b"),
            ("q", "\x00"),
            ("seen_at__gt", "0001-01-01T00:00:00+01:00"),
            ("due", "0000-01-01"),
            ("price__gt", "1e131072"),
            ("quantity", BIG),
            ("cursor", cursor('{"s":"id","v":["' + BIG + '"]}')),
        ]:
            for path in ("/app/kitchen/item", "/app/kitchen/item/export.csv"):
                page = get(browser, path, [(key, value)])
                assert page.status_code == 400, (path, key, page.text[:300])
                assert "text/html" in page.headers["content-type"]
        assert browser.get("/app/kitchen/item?q=%ED%A0%80").status_code == 200


# -- the value parsers -------------------------------------------------------------------


def test_value_parsers_bound_their_work() -> None:
    for value in (BIG, Decimal("1e999999999"), Decimal("Infinity"), float("inf"), 1e300):
        with pytest.raises(InvalidValue):
            parse_integer(value)
    assert parse_integer(Decimal("1E+3")) == 1000
    assert fit_decimal(Decimal("1234567890123456789012345678.9"), 38, 2) == Decimal(
        "1234567890123456789012345678.90"
    )
    assert str(fit_decimal(Decimal("-0"), 14, 2)) == "0.00"
    with pytest.raises(InvalidValue, match="decimal places"):
        fit_decimal(Decimal("1.005"), 14, 2)
