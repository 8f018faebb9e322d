"""The worked example of docs/ledgers.md "Money: currencies and exchange rates" runs as
written, on SQLite and PostgreSQL: the pack of docs/examples/money/ is loaded as it is (its
tessera.yaml sets the company currency), the page's setup commands are run, and every
``curl`` of the section is sent in order, its answer checked against the status and the
fields the page shows after ``→``."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from tests.support import doc_examples
from tests.support.cli import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

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


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Path:
    return doc_examples.instance(EXAMPLE, db_url, tmp_path, ["money"])


@pytest.fixture
def variables(instance: Path) -> dict[str, str]:
    names = doc_examples.run_setup(blocks()[0], instance)
    assert {"API", "TOKEN"} <= set(names), names
    return names


@pytest.fixture
def client(instance: Path, variables: dict[str, str]) -> Iterator[TestClient]:
    with doc_examples.client(instance) as http:
        yield http


def test_the_worked_example_answers_as_documented(
    client: TestClient, variables: dict[str, str]
) -> None:
    for call in calls():
        doc_examples.replay(client, call, variables)
