"""docs/quote-to-cash.md runs as written, on SQLite and PostgreSQL: an instance of the
repository's quote_to_cash pack (with sales, orders, finance, inventory and contacts), the
page's setup commands, then every ``curl`` of its sections in order, its answer checked
against the status and the fields the page shows after ``→``; at the end `tessera
recompute` says what the page says. Editing the page or a pack without the other fails
here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import REPO, write_instance
from tests.support import doc_examples
from tests.support.cli import tessera

if TYPE_CHECKING:
    from pathlib import Path

PAGE = REPO / "docs" / "quote-to-cash.md"
SECTIONS = ["## The journey", "## Walking it back", "## Checking that nothing drifted"]


def test_the_page_runs_as_written(db_url: str, tmp_path: Path) -> None:
    journey, back, check = (doc_examples.blocks(doc_examples.section(PAGE, s)) for s in SECTIONS)
    calls = doc_examples.calls([*journey[1:], *back])
    assert len(calls) == 64
    instance = write_instance(tmp_path / "shop", db_url, ["quote_to_cash"], [REPO / "modules"])
    names = doc_examples.run_setup(journey[0], instance.path)
    assert {"API", "TOKEN"} <= set(names), names
    with doc_examples.client(instance.path) as http:
        for call in calls:
            doc_examples.replay(http, call, names)
    (block,) = check
    command, shown = block.strip().splitlines()
    done = tessera(*command.split()[1:], cwd=instance.path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == shown.removeprefix("# ")
