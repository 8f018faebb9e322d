"""The walkthrough of docs/packs/finance.md runs as written, on SQLite and PostgreSQL: the
instance of docs/examples/finance/ (the finance pack and its dependencies from modules/),
the page's setup commands (``tessera migrate`` loads the chart), and every ``curl`` of the
section sent in order, its answer checked against what the page shows after ``→``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from pathlib import Path


PAGE = REPO / "docs" / "packs" / "finance.md"
EXAMPLE = REPO / "docs" / "examples" / "finance"
SECTION = "## Walkthrough"


def blocks() -> list[str]:
    return doc_examples.blocks(doc_examples.section(PAGE, SECTION))


def calls() -> list[doc_examples.Call]:
    return doc_examples.calls(blocks()[1:])


def test_the_page_documents_the_flow() -> None:
    statuses = {(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in calls()}
    assert ("POST", "_submit", 422) in statuses  # over-allocation
    assert ("POST", "_cancel", 409) in statuses  # cancel while paid


def test_the_walkthrough_answers_as_documented(db_url: str, tmp_path: Path) -> None:
    doc_examples.replay_example(EXAMPLE, db_url, tmp_path, ["finance"], blocks())
