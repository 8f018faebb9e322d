"""An e-mail action with ``attach: {print: <name>}``: the record printed as a PDF reaches a
real SMTP server as an attachment (its text read back with pypdf), through the outbox, on
SQLite and PostgreSQL; a print format the pack lacks stops the load."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import pytest
from pypdf import PdfReader

from metadata import DefinitionError
from tests.conftest import pack_instance

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.receivers import Mailbox

FILES = {
    "module.yaml": "name: shop\nversion: 1.0.0\n",
    "entities/bill.yaml": """\
title: code
fields:
  code:  {type: string, required: true}
  email: {type: email}
  lines: {type: children, entity: bill_line}
""",
    "entities/bill_line.yaml": "fields:\n  description: {type: string}\n",
    "rules/bill.yaml": """\
- name: send_the_bill
  on: create
  actions:
    - email:
        to: "{{ email }}"
        subject: "Your bill {{ code }}"
        body: "Attached."
        attach: {print: bill.print.html}
""",
    "templates/bill.print.html": """\
<html><body><h1>Bill {{ code }}</h1>
{% for line in lines %}<p>{{ line.description }}</p>{% endfor %}</body></html>
""",
}


def test_the_email_attaches_the_printed_pdf(db_url: str, tmp_path: Path, mailbox: Mailbox) -> None:
    instance = pack_instance(
        tmp_path,
        db_url,
        "shop",
        FILES,
        smtp={"host": "127.0.0.1", "port": mailbox.port, "from": "shop@acme.test"},
        outbox={"backoff_seconds": 0.2, "sweep_seconds": 0.2, "max_attempts": 3},
    )
    with instance.client() as client:
        body = {
            "code": "B-7",
            "email": "buyer@acme.test",
            "lines": [{"description": "Seven apples"}],
        }
        response = client.post("/api/v1/shop/bill", json=body)
        assert response.status_code == 201, response.text
        (message,) = mailbox.wait_for(1)
    assert message["Subject"] == "Your bill B-7"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "bill-B-7.pdf"
    reader = PdfReader(io.BytesIO(attachment.get_content()))
    text = reader.pages[0].extract_text()
    assert "Bill B-7" in text
    assert "Seven apples" in text


def test_a_missing_print_format_stops_the_load(db_url: str, tmp_path: Path) -> None:
    files = {**FILES, "templates/bill.print.html": None}
    files = {k: v for k, v in files.items() if v is not None}
    with pytest.raises(DefinitionError, match=r"print format 'bill.print.html' not found"):
        pack_instance(tmp_path, db_url, "shop", files)
