"""Child tables on the form, over HTTP on SQLite and PostgreSQL: lines are added, changed
and removed with their parent, in one save; a line's error shows at its cell."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, pack_instance, write_instance
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


@pytest.fixture
def browser(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance: Instance = write_instance(tmp_path / "instance", db_url, ["kitchen"])
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(instance, "ada", PASSWORD) as client:
        yield client


def lines_of(client: TestClient, item: str) -> list[tuple[str, int]]:
    record = client.get(f"/app/kitchen/item/{item}")
    found = re.findall(
        r'name="lines\[(\d+)\]\.description"[^>]*value="([^"]*)".*?name="lines\[\1\]\.qty"[^>]*value="(\d*)"',
        record.text,
        re.S,
    )
    return [(description, int(qty)) for _, description, qty in found if description]


def test_lines_are_added_changed_and_removed_with_their_parent(browser: TestClient) -> None:
    form = browser.get("/app/kitchen/item/new")
    assert 'name="lines[0].description"' in form.text  # the blank row for a first line
    assert 'id="tpl-lines"' in form.text
    token = csrf_of(form)
    made = browser.post(
        "/app/kitchen/item/new",
        data={
            "csrf_token": token,
            "name": "Kettle",
            "lines[0].description": "Body",
            "lines[0].qty": "1",
            "lines[1].description": "Lid",
            "lines[1].qty": "2",
            "lines[2].description": "",
            "lines[2].qty": "",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    item = made.headers["location"].split("/")[-1].split("?")[0]
    assert lines_of(browser, item) == [("Body", 1), ("Lid", 2)]
    page = browser.get(f"/app/kitchen/item/{item}")
    ids = re.findall(r'name="lines\[(\d)\]\.id" value="(\d+)"', page.text)
    assert len(ids) == 2
    version = re.search(r'name="version" value="(\d+)"', page.text)
    assert version
    changed = browser.post(
        f"/app/kitchen/item/{item}",
        data={
            "csrf_token": token,
            "version": version.group(1),
            "lines[0].id": ids[0][1],
            "lines[0].description": "Body",
            "lines[0].qty": "3",
            "lines[1].id": ids[1][1],
            "lines[1].description": "Lid",
            "lines[1].qty": "2",
            "lines[1]._remove": "true",
            "lines[5].description": "Whistle",
            "lines[5].qty": "1",
        },
        follow_redirects=False,
    )
    assert changed.status_code == 303, changed.text
    assert lines_of(browser, item) == [("Body", 3), ("Whistle", 1)]
    api = browser.get(
        f"/api/v1/kitchen/item/{item}",
    )
    assert api.status_code == 401  # the screens' cookie is not an API credential


def test_a_line_error_shows_at_its_cell_and_nothing_is_saved(browser: TestClient) -> None:
    token = csrf_of(browser.get("/app/kitchen/item/new"))
    refused = browser.post(
        "/app/kitchen/item/new",
        data={
            "csrf_token": token,
            "name": "Pot",
            "lines[0].description": "Handle",
            "lines[0].qty": "0",
        },
    )
    assert refused.status_code == 422
    assert 'id="f-lines-0-qty-error"' in refused.text
    assert "Lines, line 1: qty" in refused.text
    assert 'value="Handle"' in refused.text  # the typed line is kept
    assert "Pot" not in browser.get("/app/kitchen/item").text.split("<tbody>")[1]


SHOP = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/product.yaml": """\
title: name
fields:
  name:          {type: string, required: true, unique: true}
  standard_rate: {type: decimal, scale: 2}
""",
    "entities/order.yaml": """\
fields:
  ref:   {type: string, required: true}
  lines: {type: children, entity: order_line}
  total: {type: decimal, scale: 2, computed: "lines | sum(attribute='amount')"}
""",
    "entities/order_line.yaml": """\
fields:
  product:  {type: reference, to: product, required: true}
  qty:      {type: integer, required: true, min: 1}
  amount:   {type: decimal, scale: 2, computed: "qty * product.standard_rate"}
  discount: {type: integer}
  reason:   {type: string, required_if: "discount and discount > 10"}
""",
}


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "shop", SHOP)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(instance, "ada", PASSWORD) as client:
        yield client


def test_a_lines_reference_has_the_forms_search_picker(shop: TestClient) -> None:
    token = csrf_of(shop.get("/app/shop/product/new"))
    for name, rate in [("Bolt", "0.25"), ("Nut", "0.10"), ("Washer", "0.05")]:
        made = shop.post(
            "/app/shop/product/new",
            data={"csrf_token": token, "name": name, "standard_rate": rate},
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
    options = shop.get("/app/shop/product/_options").text
    ids = {n: i for i, n in re.findall(r'<option value="(\d+)">([^<]+)</option>', options)}

    form = shop.get("/app/shop/order/new").text
    search = re.search(
        r'<input type="search"[^>]*aria-label="Search for product, line 1"[^>]*>', form
    )
    assert search, form  # the same search box as a reference on the form, per line
    assert 'hx-get="/app/shop/product/_options"' in search.group(0)
    assert 'hx-target="#f-lines-0-product"' in search.group(0)
    assert 'hx-include="#f-lines-0-product"' in search.group(0)
    assert '<select name="lines[0].product" id="f-lines-0-product"' in form
    assert 'aria-label="Search for product, line __NUMBER__"' in form  # rows added later
    assert "<script>" not in form  # no inline script (CSP)

    # what the search box asks as the user types: matches by title, the current choice kept
    typed = shop.get(
        "/app/shop/product/_options", params={"q": "nu", "lines[0].product": ids["Bolt"]}
    )
    assert re.findall(r">([^<]+)</option>", typed.text) == ["—", "Bolt", "Nut"]

    # without JavaScript: the drop-down's value is sent as before
    made = shop.post(
        "/app/shop/order/new",
        data={
            "csrf_token": token,
            "ref": "O-1",
            "lines[0].product": ids["Nut"],
            "lines[0].qty": "4",
            "lines[1].product": ids["Bolt"],
            "lines[1].qty": "2",
        },
        follow_redirects=False,
    )
    assert made.status_code == 303, made.text
    page = shop.get(made.headers["location"]).text
    assert f'<option value="{ids["Nut"]}" selected>Nut</option>' in page  # its title, not #id
    assert f'<option value="{ids["Bolt"]}" selected>Bolt</option>' in page
    assert "0.90" in page  # the total of the lines' amounts, each over its product's rate


def test_required_if_applies_to_a_lines_cell(shop: TestClient) -> None:
    token = csrf_of(shop.get("/app/shop/product/new"))
    shop.post("/app/shop/product/new", data={"csrf_token": token, "name": "Bolt"})
    bolt = re.search(r'<option value="(\d+)">Bolt', shop.get("/app/shop/product/_options").text)
    assert bolt
    line = {"lines[0].product": bolt.group(1), "lines[0].qty": "1", "lines[0].discount": "20"}
    refused = shop.post("/app/shop/order/new", data={"csrf_token": token, "ref": "O-1", **line})
    assert refused.status_code == 422, refused.text
    assert 'id="f-lines-0-reason-error"' in refused.text
    assert "is required when discount and discount &gt; 10" in refused.text
    assert f'<option value="{bolt.group(1)}" selected>Bolt</option>' in refused.text  # kept
    cell = re.search(
        r'<td data-label="Reason" class="invalid" data-required-if="lines\[0\]\.reason">(.*?)</td>',
        refused.text,
        re.S,
    )
    assert cell, refused.text
    assert 'aria-required="true"' in cell.group(1)
    assert '<span class="req" title="Required">*</span>' in cell.group(1)

    # the form asks as the user types; a line's cell answers by its index on the form
    typed = {"lines[0].discount": "20", "lines[3].discount": "5", "lines[4].discount": "50"}
    state = shop.post(
        "/app/shop/order/_conditions",
        data={"csrf_token": token, "ref": "O-1", **typed, "lines[4].reason": "x"},
    )
    assert state.status_code == 200, state.text
    assert state.json()["required"] == ["lines[0].reason", "lines[4].reason"]
    blank = shop.get("/app/shop/order/new").text
    assert 'data-required-if="lines[0].reason"' in blank
    assert 'data-required-if="lines[__INDEX__].reason"' in blank  # rows added later
    assert 'data-conditions="/app/shop/order/_conditions"' in blank
    saved = shop.post(
        "/app/shop/order/new",
        data={"csrf_token": token, "ref": "O-1", **line, "lines[0].reason": "bulk"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
