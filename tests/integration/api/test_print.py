"""Print formats through HTTP, on SQLite and PostgreSQL: a pack's template renders a record
with its lines and expanded references to HTML and PDF (the PDF's text read back with
pypdf), the caller's grants hold (no read: 404; a grant's where; hidden fields never
printed), a generic layout without a template, and bad inputs answer 4xx problems."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest
from pypdf import PdfReader

from tests.conftest import Instance, pack_instance
from tests.support.identity import bearer

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: shop\nversion: 1.0.0\n",
    "entities/customer.yaml": """\
title: name
fields:
  name:   {type: string, required: true}
  city:   {type: string}
  rating: {type: integer}
""",
    "entities/order.yaml": """\
title: code
fields:
  code:     {type: string, required: true}
  customer: {type: reference, to: customer}
  status:   {type: enum, values: [open, secret], default: open}
  margin:   {type: decimal, scale: 2}
  lines:    {type: children, entity: order_line}
""",
    "entities/order_line.yaml": """\
fields:
  description: {type: string}
  quantity:    {type: integer}
""",
    "roles.yaml": """\
roles:
  clerk:
    grants:
      - {entity: order, actions: [read], where: "status != 'secret'", hidden_fields: [margin]}
      - {entity: customer, actions: [read], hidden_fields: [rating]}
  outsider:
    grants:
      - {entity: customer, actions: [read]}
""",
    "templates/order.print.html": """\
<html><body><h1>Order {{ code }}</h1>
<p class="customer">{{ customer.name }} ({{ customer.city }}) rating={{ customer.rating }}</p>
<p>margin={{ margin }}</p>
{% for line in lines %}<div class="line">{{ line.description }} x {{ line.quantity }}</div>
{% endfor %}</body></html>
""",
    "templates/broken_at_run.print.html": "{{ nothing.deeper.than_this }}",
}
ORDERS = "/api/v1/shop/order"


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "shop", FILES)


def _order(client: TestClient, status: str = "open") -> str:
    customer = client.post(
        "/api/v1/shop/customer", json={"name": "Acme <b>GmbH</b>", "city": "Köln", "rating": 7}
    )
    assert customer.status_code == 201, customer.text
    body = {
        "code": "SO-0042",
        "customer": customer.json()["data"]["id"],
        "status": status,
        "margin": "12.34",
        "lines": [
            {"description": "Blue widget", "quantity": 3},
            {"description": "Red gadget", "quantity": 5},
        ],
    }
    response = client.post(ORDERS, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_a_template_prints_the_record_with_lines_and_references(shop: Instance) -> None:
    with shop.client() as client:
        order = _order(client)
        html = client.get(f"{ORDERS}/{order}/_print?format=html")
        assert html.status_code == 200, html.text
        assert html.headers["content-type"].startswith("text/html")
        assert "Order SO-0042" in html.text
        assert "Acme &lt;b&gt;GmbH&lt;/b&gt; (Köln)" in html.text  # escaped, expanded
        assert "Blue widget x 3" in html.text
        assert "Red gadget x 5" in html.text

        pdf = client.get(f"{ORDERS}/{order}/_print")  # PDF by default
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        text = _pdf_text(pdf.content)
        assert "Order SO-0042" in text
        assert "Blue widget x 3" in text
        assert "Red gadget x 5" in text

        named = client.get(f"{ORDERS}/{order}/_print?format=html&template=order.print.html")
        assert named.status_code == 200
        assert "Order SO-0042" in named.text


def test_the_generic_layout_lists_fields_and_lines(shop: Instance) -> None:
    with shop.client() as client:
        order = _order(client)
        customer = client.get(f"{ORDERS}/{order}").json()["data"]["customer"]
        html = client.get(f"/api/v1/shop/customer/{customer}/_print?format=html")
        assert html.status_code == 200, html.text
        assert "Köln" in html.text
        assert "City" in html.text
        pdf = client.get(f"/api/v1/shop/customer/{customer}/_print?format=pdf")
        assert "Köln" in _pdf_text(pdf.content)


def test_prints_honour_the_callers_grants(shop: Instance) -> None:
    with shop.client() as admin:
        order = _order(admin)
        secret = _order(admin, status="secret")
    with shop.client(signed_in=False) as client:
        client.headers.update(bearer(shop.token("clara", ("clerk",))))
        html = client.get(f"{ORDERS}/{order}/_print?format=html")
        assert html.status_code == 200, html.text
        assert "margin=12.34" not in html.text
        assert "12.34" not in html.text
        assert "rating=7" not in html.text  # hidden on the linked record too
        assert "Blue widget" in html.text
        pdf = client.get(f"{ORDERS}/{order}/_print")
        assert "12.34" not in _pdf_text(pdf.content)
        hidden = client.get(f"{ORDERS}/{secret}/_print?format=html")  # outside the where
        assert hidden.status_code == 404
        assert hidden.headers["content-type"].startswith("application/problem+json")

        client.headers.update(bearer(shop.token("olaf", ("outsider",))))
        refused = client.get(f"{ORDERS}/{order}/_print?format=html")
        assert refused.status_code in {403, 404}
        assert "SO-0042" not in refused.text


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("template=nope.print.html", 404),
        ("template=../../etc/passwd", 404),
        ("template=..%2F..%2Fetc%2Fpasswd", 404),
        ("template=order.print.html%00", 404),
        ("template=%ED%A0%80", 404),
        ("template=" + "a" * 5000, 404),
        ("template=/etc/passwd", 404),
        ("format=docx", 400),
        ("format=", 400),
        ("format=html&format=pdf", 400),
        ("format=html%00", 400),
        ("colour=red", 400),
        ("template=broken_at_run.print.html&format=html", 422),
        ("template=broken_at_run.print.html", 422),
    ],
)
def test_bad_print_requests_are_problems(shop: Instance, query: str, status: int) -> None:
    with shop.client() as client:
        order = _order(client)
        response = client.get(f"{ORDERS}/{order}/_print?{query}")
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "root:" not in response.text
        for bad_id in ("999999", "abc", "1%00", "99999999999999999999999"):
            assert client.get(f"{ORDERS}/{bad_id}/_print").status_code == 404


def test_a_template_that_does_not_parse_stops_the_load(db_url: str, tmp_path: Path) -> None:
    from metadata import DefinitionError
    from runtime.app import load_definitions
    from runtime.printing import PrintFormats

    files = {**FILES, "templates/bad.print.html": "<p>\n{% for x in %}</p>"}
    instance = pack_instance(tmp_path, db_url, "shop", files)
    with pytest.raises(DefinitionError, match=r"bad\.print\.html:2:1: "):
        PrintFormats(load_definitions(instance.settings))


def test_the_forms_print_button_opens_the_pdf(shop: Instance) -> None:
    from tests.support.identity import issue_token
    from tests.support.web import signed_in

    with shop.client() as admin:
        order = _order(admin)
        secret = _order(admin, status="secret")
    issue_token(shop.settings.database_url, "clara", ("clerk",), password="clara-secret-pw")
    with signed_in(shop, "clara", "clara-secret-pw") as client:
        form = client.get(f"/app/shop/order/{order}")
        assert form.status_code == 200, form.text
        assert f'href="/app/shop/order/{order}/print"' in form.text
        pdf = client.get(f"/app/shop/order/{order}/print")
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        text = _pdf_text(pdf.content)
        assert "Order SO-0042" in text
        assert "12.34" not in text
        assert client.get(f"/app/shop/order/{secret}/print").status_code == 404
        assert client.get(f"/app/shop/order/{order}/print?template=../x").status_code == 404


def test_a_print_format_broken_on_disk_keeps_the_served_definitions(
    shop: Instance, tmp_path: Path
) -> None:
    import asyncio

    from runtime.live import LiveDefinitions, load_definitions
    from runtime.plumbing import DatabaseHolder

    live = LiveDefinitions(shop.settings, load_definitions(shop.settings), DatabaseHolder())
    served = live.current
    template = tmp_path / "packs" / "shop" / "templates" / "order.print.html"
    template.write_text("{% for x in %}", encoding="utf-8")
    assert asyncio.run(live.reload(7)) is False
    assert live.current is served
    assert live.generation == 7
