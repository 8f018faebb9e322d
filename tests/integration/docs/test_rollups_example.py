"""The worked example of docs/rollups.md runs as written, on SQLite and PostgreSQL: the
pack of docs/examples/rollups/ is loaded as it is, the page's setup commands are run, every
``curl`` of the section is sent in order and its answer checked against the status and the
fields the page shows after ``→`` (``…`` stands for fields left out), and the closing
``tessera recompute`` prints what the page says. Editing the page or the pack without the
other fails here."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import pytest

from tests.support import doc_examples
from tests.support.cli import REPO, tessera

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.support.doc_examples import Call

PAGE = REPO / "docs" / "rollups.md"
EXAMPLE = REPO / "docs" / "examples" / "rollups"
SECTION = "## Worked example: lifetime value and stock"


def section() -> str:
    return doc_examples.section(PAGE, SECTION)


def blocks() -> list[str]:
    return doc_examples.blocks(section())


def steps() -> list[Call | tuple[str, str]]:
    """After the setup block: each ``curl`` with its documented answer, and each
    ``tessera`` command with the output the page shows (``# <line>``)."""
    found: list[Call | tuple[str, str]] = []
    for block in blocks()[1:]:
        command: list[str] = []
        answer: list[str] = []
        for line in [*block.splitlines(), ""]:
            if line.startswith("tessera "):
                found.append((line, ""))
            elif found and isinstance(found[-1], tuple) and not command and line.startswith("# "):
                found[-1] = (found[-1][0], line[2:])
            elif line.startswith("curl "):
                command = [line]
            elif command and not answer and not line.startswith("# →"):
                command.append(line)
            elif line.startswith("# →"):
                answer = [line]
            elif answer and line.startswith("#  "):
                answer.append(line[1:].strip())
            if answer and not line.startswith("#"):
                found.append(doc_examples.parse_call("\n".join(command), " ".join(answer)))
                command, answer = [], []
    return found


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Path:
    return doc_examples.instance(EXAMPLE, db_url, tmp_path, ["shop"])


@pytest.fixture
def variables(instance: Path) -> dict[str, str]:
    names = doc_examples.run_setup(blocks()[0], instance)
    assert {"API", "TOKEN"} <= set(names), names
    return names


@pytest.fixture
def client(instance: Path, variables: dict[str, str]) -> Iterator[TestClient]:
    with doc_examples.client(instance) as http:
        yield http


def test_the_page_documents_the_whole_example() -> None:
    found = steps()
    calls = [s for s in found if not isinstance(s, tuple)]
    assert len(calls) == section().count("\ncurl ") == 20
    assert [s for s in found if isinstance(s, tuple)] == [
        ("tessera recompute", "no drift in 4 rollup fields")
    ]
    assert {c.status for c in calls} == {200, 201, 422}


def test_the_worked_example_answers_as_documented(
    client: TestClient, variables: dict[str, str], instance: Path
) -> None:
    for step in steps():
        if isinstance(step, tuple):
            done = tessera(*shlex.split(step[0])[1:], cwd=instance)
            assert (done.returncode, done.stdout.strip()) == (0, step[1]), done.stderr
            continue
        doc_examples.replay(client, step, variables)
