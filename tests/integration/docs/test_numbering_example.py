"""The worked example of docs/documents.md "Numbers with gaps, for throughput" runs as
written, on SQLite and PostgreSQL: the pack of docs/examples/numbering/ is loaded as it is,
the page's setup commands are run, and every ``curl`` of the section is sent in order, its
answer checked against the status and the fields the page shows after ``→``: the order
(``gapless: false``) keeps a gap where its submit was refused, the invoice none."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from pathlib import Path


PAGE = REPO / "docs" / "documents.md"
EXAMPLE = REPO / "docs" / "examples" / "numbering"
SECTION = "## Numbers with gaps, for throughput"


def blocks() -> list[str]:
    return doc_examples.blocks(doc_examples.section(PAGE, SECTION))


def calls() -> list[doc_examples.Call]:
    return doc_examples.calls(blocks()[1:])


def test_the_page_documents_both_series() -> None:
    found = calls()
    statuses = [(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in found]
    assert len(found) == doc_examples.section(PAGE, SECTION).count("\ncurl ") == 8
    assert statuses.count(("POST", "_submit", 422)) == 2
    numbers = [c.shown["data"]["number"] for c in found if c.status == 200 and "_submit" in c.url]
    assert numbers == ["SO-2026-00002", "INV-2026-00001"]


def test_the_files_are_the_ones_the_page_shows() -> None:
    text = doc_examples.section(PAGE, SECTION)
    order = EXAMPLE / "packs" / "shop" / "entities" / "sales_order.yaml"
    for line in order.read_text(encoding="utf-8").splitlines():
        assert line in text, line
    invoice = (EXAMPLE / "packs" / "shop" / "entities" / "sales_invoice.yaml").read_text()
    assert "gapless" not in invoice
    for name in ("sales_order", "sales_invoice"):
        rules = (EXAMPLE / "packs" / "shop" / "rules" / f"{name}.yaml").read_text()
        assert 'assert: "total is not none and total > 0"' in rules


def test_the_worked_example_answers_as_documented(db_url: str, tmp_path: Path) -> None:
    doc_examples.replay_example(EXAMPLE, db_url, tmp_path, ["shop"], blocks())
