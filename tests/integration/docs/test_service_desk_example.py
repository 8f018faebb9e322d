"""The worked example of docs/rules.md "Dates and working time" runs as written, on SQLite
and PostgreSQL: the pack of docs/examples/service_desk/ is loaded as it is (its
tessera.yaml sets the instance time zone), the page's setup commands are run, and every
``curl`` of the section is sent in order, its answer checked against what the page shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from engine import dates
from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PAGE = REPO / "docs" / "rules.md"
EXAMPLE = REPO / "docs" / "examples" / "service_desk"
SECTION = "## Dates and working time"


def blocks() -> list[str]:
    return doc_examples.blocks(doc_examples.section(PAGE, SECTION))


def calls() -> list[doc_examples.Call]:
    return doc_examples.calls(blocks()[1:])


def test_the_page_documents_the_whole_flow() -> None:
    statuses = [(c.method, c.status) for c in calls()]
    assert statuses == [("POST", 201), ("PATCH", 200), ("POST", 422)]


def test_the_files_are_the_ones_the_page_shows() -> None:
    text = PAGE.read_text(encoding="utf-8")
    pack = EXAMPLE / "packs" / "helpdesk"
    for name in ("calendars/support.yaml", "entities/ticket.yaml"):
        for line in (pack / name).read_text(encoding="utf-8").splitlines():
            assert line in text, line
    assert "timezone: Europe/Berlin" in (EXAMPLE / "tessera.yaml").read_text(encoding="utf-8")


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Path:
    return doc_examples.instance(EXAMPLE, db_url, tmp_path, ["helpdesk"])


@pytest.fixture
def variables(instance: Path) -> dict[str, str]:
    names = doc_examples.run_setup(blocks()[0], instance)
    assert {"API", "TOKEN"} <= set(names), names
    return names


@pytest.fixture
def client(instance: Path, variables: dict[str, str]) -> Iterator[TestClient]:
    with doc_examples.client(instance) as http:
        yield http
    dates.use_timezone(None)  # the process's other tests: UTC


def test_the_worked_example_answers_as_documented(
    client: TestClient, variables: dict[str, str]
) -> None:
    for call in calls():
        doc_examples.replay(client, call, variables)
