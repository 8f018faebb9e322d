"""The worked example of docs/packs/orders.md runs as written, on SQLite and PostgreSQL:
an instance of the repository's orders pack, the page's setup commands, then every
``curl`` in order, its answer checked against what the page shows after ``→``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import REPO, write_instance
from tests.support import doc_examples
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from pathlib import Path

PAGE = REPO / "docs" / "packs" / "orders.md"
SECTION = "## Worked example"


def test_the_page_runs_as_written(db_url: str, tmp_path: Path) -> None:
    sh = doc_examples.blocks(doc_examples.section(PAGE, SECTION))
    calls = doc_examples.calls(sh[1:])
    assert len(calls) == 39
    statuses = {(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in calls}
    assert ("POST", "_submit", 422) in statuses
    instance = write_instance(tmp_path / "i", db_url, ["orders"], [REPO / "modules"])
    names = doc_examples.run_setup(sh[0], instance.path)
    assert {"API", "TOKEN"} <= set(names), names
    with doc_examples.client(instance.path) as http:
        for call in calls:
            doc_examples.replay(http, call, names)
    assert_no_drift(instance.settings)
