"""The worked example of docs/files.md runs as written, on SQLite and PostgreSQL: the pack
of docs/examples/files/ is loaded as it is, the page's setup commands are run, and every
``curl`` of the section (uploads with ``-F`` and ``--data-binary`` of the example's files)
is sent in order, its answer checked against the status and the fields the page shows;
then the section on line items' files, which continues it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from pathlib import Path

PAGE = REPO / "docs" / "files.md"
EXAMPLE = REPO / "docs" / "examples" / "files"
SECTION = "## Worked example: expense claims"
LINES = "## Files of line items"


def blocks() -> list[str]:
    return doc_examples.blocks(doc_examples.section(PAGE, SECTION))


def test_the_page_uploads_the_example_s_files() -> None:
    sent = doc_examples.calls(blocks()[1:])
    uploads = [c.form_file or c.data_file for c in sent if c.form_file or c.data_file]
    assert uploads == ["receipt.pdf", "fake-receipt.pdf", "notes.txt", "receipt.pdf", "receipt.pdf"]
    for name in set(uploads):
        assert (EXAMPLE / name).is_file()
    assert sorted(c.status for c in sent).count(415) == 1


def test_the_worked_example_answers_as_documented(db_url: str, tmp_path: Path) -> None:
    doc_examples.replay_example(EXAMPLE, db_url, tmp_path, ["expenses"], blocks())
    assert len([p for p in (tmp_path / "files").rglob("*") if p.is_file()]) == 2


def test_the_line_items_section_continues_the_example_as_documented(
    db_url: str, tmp_path: Path
) -> None:
    lines = doc_examples.blocks(doc_examples.section(PAGE, LINES))
    sent = doc_examples.calls(lines)
    assert [c.status for c in sent] == [201, 201, 200, 200, 415, 404, 200, 400, 200]
    assert all("/lines/" in c.url for c in sent if c.method in {"PUT", "DELETE"})
    doc_examples.replay_example(EXAMPLE, db_url, tmp_path, ["expenses"], [*blocks(), *lines])
    # the worked example leaves two files; the ticket was uploaded, then cleared
    assert len([p for p in (tmp_path / "files").rglob("*") if p.is_file()]) == 2
