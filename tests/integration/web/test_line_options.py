"""Pickers of references to a line item entity (an invoice line's order line), over HTTP on
SQLite and PostgreSQL: ``/app/<pack>/<line entity>/_options`` offers the lines of the
parents the user may read (row filters included), each labelled with its parent's title
and its own reference's title; a search matches either; the current choice is kept, unless
its parent may not be read; no read access to the parent entity is a 403; the form's
widget asks that endpoint."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.identity import issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"
FILES = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/product.yaml": "title: name\nfields:\n  name: {type: string, required: true}\n",
    "entities/order.yaml": """\
title: ref
fields:
  ref: {type: string}
  owner: {type: string, max_length: 64, default: "{{ user.id if user else none }}"}
  lines: {type: children, entity: order_line}
""",
    "entities/order_line.yaml": """\
fields:
  product: {type: reference, to: product, required: true}
  qty: {type: integer}
""",
    "entities/invoice.yaml": """\
fields:
  ref: {type: string}
  lines: {type: children, entity: invoice_line}
""",
    "entities/invoice_line.yaml": """\
fields:
  order_line: {type: reference, to: order_line}
  qty: {type: integer}
""",
    "roles.yaml": """\
roles:
  clerk:
    grants:
      - {entity: order, actions: [read, create], where: "owner == user.id"}
      - {entity: product, actions: [read]}
      - {entity: invoice, actions: [read, create, update]}
  outsider:
    grants:
      - {entity: invoice, actions: [read, create, update]}
      - {entity: product, actions: [read]}
""",
}
OPTIONS = "/app/shop/order_line/_options"


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "shop", FILES)


@contextlib.contextmanager
def api(instance: Instance, username: str, roles: tuple[str, ...]) -> Iterator[TestClient]:
    """A client of the API as ``username`` (made with ``roles`` and the test password)."""
    token = issue_token(instance.settings.database_url, username, roles, password=PASSWORD)
    with instance.client(signed_in=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client


def made(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/api/v1/shop/{path}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def options(client: TestClient, **params: str) -> list[tuple[str, str]]:
    response = client.get(OPTIONS, params=params)
    assert response.status_code == 200, response.text
    return re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>', response.text)


@pytest.fixture
def orders(shop: Instance) -> Iterator[dict[str, Any]]:
    """Two orders of the clerk's (one with a line per product), one of the admin's."""
    with api(shop, "ada", ("admin",)) as admin, api(shop, "carl", ("clerk",)) as clerk:
        desk = made(admin, "product", {"name": "Desk"})
        lamp = made(admin, "product", {"name": "Lamp"})
        mine = made(
            clerk,
            "order",
            {"ref": "SO-1", "lines": [{"product": desk["id"], "qty": 2}, {"product": lamp["id"]}]},
        )
        second = made(clerk, "order", {"ref": "SO-2", "lines": [{"product": lamp["id"]}]})
        theirs = made(admin, "order", {"ref": "SO-9", "lines": [{"product": desk["id"]}]})
        unnamed = made(clerk, "order", {"lines": [{"product": desk["id"]}]})
        yield {"mine": mine, "second": second, "theirs": theirs, "unnamed": unnamed}


def test_lines_are_offered_through_their_readable_parents(
    shop: Instance, orders: dict[str, Any]
) -> None:
    mine, second, theirs = orders["mine"], orders["second"], orders["theirs"]
    unnamed = orders["unnamed"]
    with signed_in(shop, "carl", PASSWORD) as clerk:
        offered = options(clerk)
        # the newest parents first, each line labelled "<parent title> · <its product>";
        # the admin's order is not the clerk's to read
        assert offered == [
            ("", "—"),
            (unnamed["lines"][0]["id"], f"Order #{unnamed['id']} · Desk"),
            (second["lines"][0]["id"], "SO-2 · Lamp"),
            (mine["lines"][0]["id"], "SO-1 · Desk"),
            (mine["lines"][1]["id"], "SO-1 · Lamp"),
        ]
        # a search matches the parent's title or the line's label
        assert [label for _, label in options(clerk, q="SO-1")[1:]] == [
            "SO-1 · Desk",
            "SO-1 · Lamp",
        ]
        assert [label for _, label in options(clerk, q="lamp")[1:]] == [
            "SO-2 · Lamp",
            "SO-1 · Lamp",
        ]
        assert options(clerk, q="nothing like it") == [("", "—")]
        # the current choice is kept and selected, found through its parent
        selected = clerk.get(OPTIONS, params={"q": "SO-2", "selected": mine["lines"][1]["id"]})
        assert (
            f'<option value="{mine["lines"][1]["id"]}" selected>SO-1 · Lamp</option>'
            in selected.text
        )
        # ... but never a line whose parent the user may not read, nor a made-up id
        # attacker inputs: an error page, never a 500
        for bad in ("%00", "%ED%A0%80", "%25" * 500, "%FF"):  # NUL, a lone surrogate, …
            assert clerk.get(f"{OPTIONS}?q={bad}").status_code in (200, 400)
            assert clerk.get(f"{OPTIONS}?selected={bad}").status_code == 200
        for hidden in (theirs["lines"][0]["id"], "999999", "x", "-1", "1" * 40, "\x00"):
            page = clerk.get(OPTIONS, params={"selected": hidden})
            assert page.status_code == 200
            assert f'value="{hidden}"' not in page.text
            assert "SO-9" not in page.text

    with signed_in(shop, "ada", PASSWORD) as admin:
        everything = [label for _, label in options(admin)[1:]]
        assert "SO-9 · Desk" in everything
        assert len(everything) == 5


def test_without_read_access_to_the_parent_entity_the_picker_is_refused(
    shop: Instance, orders: dict[str, Any]
) -> None:
    with api(shop, "olga", ("outsider",)):
        pass  # the user exists
    with signed_in(shop, "olga", PASSWORD) as outsider:
        assert outsider.get(OPTIONS).status_code == 403
        assert (
            outsider.get(OPTIONS, params={"selected": orders["mine"]["lines"][0]["id"]}).status_code
            == 403
        )
    with signed_in(shop, "ada", PASSWORD) as admin:
        # a line entity of no pack, or a misspelt one: 404
        assert admin.get("/app/shop/order_lines/_options").status_code == 404
        assert admin.get("/app/nope/order_line/_options").status_code == 404


def test_the_form_widget_asks_the_line_endpoint_and_names_the_choice(
    shop: Instance, orders: dict[str, Any]
) -> None:
    line = orders["mine"]["lines"][1]
    with api(shop, "ada", ("admin",)) as admin:
        invoice = made(
            admin, "invoice", {"ref": "INV-1", "lines": [{"order_line": line["id"], "qty": 1}]}
        )
    with signed_in(shop, "ada", PASSWORD) as browser:
        form = browser.get(f"/app/shop/invoice/{invoice['id']}").text
        assert f'hx-get="{OPTIONS}"' in form
        assert f'hx-get="{OPTIONS}?selected={line["id"]}"' in form
        # the current choice shows its label, not "#<id>"
        assert f'<option value="{line["id"]}" selected>SO-1 · Lamp</option>' in form
