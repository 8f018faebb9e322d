"""The worked example of docs/ledgers.md runs as written, on SQLite and PostgreSQL: the
pack of docs/examples/ledgers/ is loaded as it is, the page's setup commands are run, and
every ``curl`` of the section is sent in order, its answer checked against the status and
the fields the page shows after ``→``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from pathlib import Path


PAGE = REPO / "docs" / "ledgers.md"
EXAMPLE = REPO / "docs" / "examples" / "ledgers"
SECTION = "## Worked example: stock and books"


def blocks() -> list[str]:
    return doc_examples.blocks(doc_examples.section(PAGE, SECTION))


def calls() -> list[doc_examples.Call]:
    return doc_examples.calls(blocks()[1:])


def test_the_page_documents_the_whole_flow() -> None:
    statuses = {(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in calls()}
    assert len(calls()) == 25
    assert ("POST", "_submit", 409) in statuses
    assert ("POST", "_submit", 422) in statuses
    assert ("POST", "stock_ledger_entry", 405) in {
        (c.method, c.url.rsplit("/", 1)[-1], c.status) for c in calls()
    }


def test_the_pack_files_are_the_ones_the_page_shows() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name in ("bin.yaml", "stock_ledger_entry.yaml"):
        for line in (EXAMPLE / "packs" / "books" / "entities" / name).read_text().splitlines():
            if line.startswith(("  key:", "  amounts:", "  date:")):
                assert line.split("#")[0].strip() in text, line


def test_the_worked_example_answers_as_documented(db_url: str, tmp_path: Path) -> None:
    doc_examples.replay_example(EXAMPLE, db_url, tmp_path, ["books"], blocks())
