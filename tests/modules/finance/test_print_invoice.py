"""The finance pack's invoice print format (templates/sales_invoice.print.html) through
HTTP, on SQLite and PostgreSQL: number, customer, address, lines, tax and totals, in HTML
and in the PDF's text."""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from click.testing import CliRunner
from pypdf import PdfReader

from cli.main import main
from tests.modules.finance.conftest import CONTACTS, FINANCE, Books
from tests.support.identity import bearer

if TYPE_CHECKING:
    from tests.conftest import Instance


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
    for text in (number, "Acme Corp", "Hauptstraße 1", "Bolt", "Nut", "€102.50", "€19.48"):
        assert text in html.text, text
    assert "€121.98" in html.text  # the instance's locale (en_US by default)

    pdf = books.client.get(url)
    assert pdf.status_code == 200, pdf.text
    # kept for docs/print.md's picture (pytest --basetemp=...)
    (tmp_path / "invoice.html").write_text(html.text, encoding="utf-8")
    (tmp_path / "invoice.pdf").write_bytes(pdf.content)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    for expected in ("INVOICE", number, "Acme Corp", "50667 Köln", "Bolt", "€121.98"):
        assert expected in text, expected
    picture = picture_of_first_page(pdf.content, screenshots_folder(tmp_path))
    assert picture.stat().st_size > 5_000  # docs/print.md's picture is this PDF's page


def screenshots_folder(tmp_path: Path) -> Path:
    """``TESSERA_SCREENSHOTS`` (``docs/screenshots`` to refresh the docs' pictures), else
    the test's temporary folder, as for the browser tests' screenshots."""
    folder = Path(os.environ.get("TESSERA_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def picture_of_first_page(pdf: bytes, folder: Path) -> Path:
    """The PDF's first page as docs/print.md shows it, rendered by PDFium (pypdfium2): the
    PDF itself, not the HTML in a browser, so the picture is what a customer receives."""
    import pypdfium2

    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=1.5).to_pil()
    finally:
        document.close()
    path = folder / "print-sales-invoice.png"
    image.save(path, optimize=True)
    return path


def test_the_invoice_prints_in_the_readers_locale(books: Books, finance: Instance) -> None:
    """A user who chose de_DE (``tessera user preferences``) gets German money and dates in
    the HTML and the PDF; the API's JSON of the same invoice is unchanged."""
    acme = books.customer("Acme Corp")
    bolt = books.item("bolt")
    draft = books.invoice(acme, [(bolt, "1000", "1450.50")], tax_rate="19")
    url = f"{FINANCE}/sales_invoice/{draft['id']}/_print"
    config = str(finance.path / "tessera.yaml")
    chosen = CliRunner().invoke(
        main,
        [
            "user",
            "preferences",
            "tests",
            "--locale",
            "de-de",
            "--timezone",
            "Europe/Berlin",
            "--config",
            config,
        ],
    )
    assert chosen.exit_code == 0, chosen.output
    assert "locale de_DE, time zone Europe/Berlin" in chosen.output
    german = bearer(finance.token())  # a new token: the user as they now are
    html = books.client.get(f"{url}?format=html", headers=german)
    assert html.status_code == 200, html.text
    assert "1.450,50\xa0€" in html.text  # a line's rate
    assert "1.450.500,00\xa0€" in html.text  # its amount
    assert "1.726.095,00\xa0€" in html.text  # the total, tax included
    day = dt.date.fromisoformat(draft["posting_date"])
    assert f"<td>{day:%d.%m.%Y}</td>" in html.text
    pdf = books.client.get(url, headers=german)
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "1.726.095,00" in text, text
    record = books.client.get(f"{FINANCE}/sales_invoice/{draft['id']}", headers=german).json()
    assert record["data"]["grand_total"] == "1726095.00"  # the API keeps its format

    refused = CliRunner().invoke(
        main, ["user", "preferences", "tests", "--locale", "de_XX", "--config", config]
    )
    assert refused.exit_code == 1
    assert "'de_XX' is not a locale" in refused.output
    assert "de_DE" in refused.output  # the locales of that language are suggested
