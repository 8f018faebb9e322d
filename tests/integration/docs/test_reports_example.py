"""The worked example of docs/reports.md runs as written, on SQLite and PostgreSQL: the
pack of docs/examples/reports/ is loaded as it is, the page's setup commands are run, and
every ``curl`` of the section is sent in order, its answer checked against the status and
the fields the page shows after ``→``; the report the page shows is the pack's file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from pathlib import Path

PAGE = REPO / "docs" / "reports.md"
EXAMPLE = REPO / "docs" / "examples" / "reports"
SECTION = "## Worked example: a cash book's result"


def blocks() -> list[str]:
    return doc_examples.blocks(doc_examples.section(PAGE, SECTION))


def test_the_page_shows_the_pack_s_report() -> None:
    report = (EXAMPLE / "packs" / "shop" / "reports" / "result.yaml").read_text("utf-8")
    body = report.split("\n", 1)[1]  # the file's comment line is the page's heading
    assert body in PAGE.read_text("utf-8")


def test_the_page_documents_good_and_bad_requests() -> None:
    statuses = [c.status for c in doc_examples.calls(blocks()[1:])]
    assert statuses.count(400) == 3
    assert statuses.count(200) == 3


def test_the_worked_example_answers_as_documented(db_url: str, tmp_path: Path) -> None:
    doc_examples.replay_example(EXAMPLE, db_url, tmp_path, ["shop"], blocks())
