"""The worked example of docs/ledgers.md "Money: currencies and exchange rates" runs as
written, on SQLite and PostgreSQL: the pack of docs/examples/money/ is loaded as it is (its
tessera.yaml sets the company currency), the page's setup commands are run, and every
``curl`` of the section is sent in order, its answer checked against the status and the
fields the page shows after ``→``."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from pathlib import Path


PAGE = REPO / "docs" / "ledgers.md"
EXAMPLE = REPO / "docs" / "examples" / "money"
SECTION = "## Money: currencies and exchange rates"


def blocks() -> list[str]:
    return doc_examples.blocks(doc_examples.section(PAGE, SECTION))


def calls() -> list[doc_examples.Call]:
    return doc_examples.calls(blocks()[1:])


def test_the_page_documents_the_whole_flow() -> None:
    statuses = [(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in calls()]
    assert len(statuses) == 14
    assert ("POST", "sales_invoice", 422) in statuses
    assert ("PATCH", "2", 200) in statuses
    assert ("POST", "_submit", 200) in statuses


def test_the_files_are_the_ones_the_page_shows() -> None:
    text = PAGE.read_text(encoding="utf-8")
    pack = EXAMPLE / "packs" / "money"
    invoice = (pack / "entities" / "sales_invoice.yaml").read_text(encoding="utf-8")
    shown = textwrap.dedent(invoice[invoice.index("  currency:") :])
    for line in shown.splitlines():
        assert line.split("#")[0].rstrip() in text, line
    rules = (pack / "rules" / "sales_invoice.yaml").read_text(encoding="utf-8")
    for line in rules.splitlines():
        if not line.startswith("#"):
            assert line in text, line
    assert "company: {name: Acme GmbH, currency: EUR}" in (EXAMPLE / "tessera.yaml").read_text()


def test_the_worked_example_answers_as_documented(db_url: str, tmp_path: Path) -> None:
    doc_examples.replay_example(EXAMPLE, db_url, tmp_path, ["money"], blocks())
