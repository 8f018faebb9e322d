"""The worked example of docs/documents.md runs as written, on SQLite and PostgreSQL: the
pack of docs/examples/purchase_request/ is loaded as it is, the page's ``tessera`` setup
commands are run, and every ``curl`` of the section is sent in order, its answer checked
against the status and the fields the page shows after ``→`` (``…`` stands for fields
left out). Editing the page or the pack without the other fails here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PAGE = REPO / "docs" / "documents.md"
EXAMPLE = REPO / "docs" / "examples" / "purchase_request"
SECTION = "## Worked example: a purchase request approved by a manager"


def section() -> str:
    return doc_examples.section(PAGE, SECTION)


def calls() -> list[doc_examples.Call]:
    """Every ``curl`` of the section after the setup block, with its documented answer."""
    return doc_examples.calls(doc_examples.blocks(section())[1:])


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Path:
    return doc_examples.instance(EXAMPLE, db_url, tmp_path, ["buying"])


@pytest.fixture
def variables(instance: Path) -> dict[str, str]:
    names = doc_examples.run_setup(doc_examples.blocks(section())[0], instance)
    assert {"API", "CARL", "MIA"} <= set(names), names
    return names


@pytest.fixture
def client(instance: Path, variables: dict[str, str]) -> Iterator[TestClient]:
    with doc_examples.client(instance) as http:
        yield http


def test_the_page_documents_the_whole_flow() -> None:
    """The parser finds every request of the section, and the statuses the brief names."""
    contains = doc_examples.contains
    found = calls()
    statuses = [(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in found]
    assert len(found) == section().count("\ncurl ") == 16
    assert ("POST", "_submit", 403) in statuses
    assert ("POST", "_submit", 422) in statuses
    assert ("PATCH", "1", 409) in statuses
    assert ("POST", "_amend", 201) in statuses
    assert contains({"a": [{"b": 1, "c": 2}]}, {"a": [{"b": 1}]})
    assert not contains({"a": [{"b": 1}, {"b": 2}]}, {"a": [{"b": 1}]})
    assert not contains({"a": {"b": 1}}, {"a": {"b": 2}})


def test_the_worked_example_answers_as_documented(
    client: TestClient, variables: dict[str, str]
) -> None:
    for call in calls():
        doc_examples.replay(client, call, variables)
