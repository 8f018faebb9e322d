"""The finance pack's invoice print format (templates/sales_invoice.print.html) through
HTTP, on SQLite and PostgreSQL: number, customer, address, lines, tax and totals, in HTML
and in the PDF's text."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from pypdf import PdfReader

from tests.modules.finance.conftest import CONTACTS, FINANCE, Books

if TYPE_CHECKING:
    from pathlib import Path


def test_a_submitted_invoice_prints_with_its_number_lines_and_totals(
    books: Books, tmp_path: Path
) -> None:
    address = books.made(
        f"{CONTACTS}/address",
        {"label": "Acme Corp", "street": "Hauptstraße 1", "postal_code": "50667", "city": "Köln"},
    )
    acme = books.customer("Acme Corp", billing_address=address["id"])
    bolt = books.item("bolt")
    nut = books.item("nut")
    draft = books.invoice(
        acme,
        [(bolt, "2", "50.00"), (nut, "10", "0.25")],
        tax_rate="19",
    )
    number = books.move("sales_invoice", draft["id"])["number"]
    url = f"{FINANCE}/sales_invoice/{draft['id']}/_print"

    html = books.client.get(f"{url}?format=html")
    assert html.status_code == 200, html.text
    for text in (number, "Acme Corp", "Hauptstraße 1", "Bolt", "Nut", "102.50", "19.48"):
        assert text in html.text, text
    assert "121.98 EUR" in html.text

    pdf = books.client.get(url)
    assert pdf.status_code == 200, pdf.text
    # kept for docs/print.md's picture (pytest --basetemp=...)
    (tmp_path / "invoice.html").write_text(html.text, encoding="utf-8")
    (tmp_path / "invoice.pdf").write_bytes(pdf.content)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    for expected in ("INVOICE", number, "Acme Corp", "50667 Köln", "Bolt", "121.98 EUR"):
        assert expected in text, expected
