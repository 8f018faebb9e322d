"""The worked example of docs/rollups.md runs as written, on SQLite and PostgreSQL: the
pack of docs/examples/rollups/ is loaded as it is, the page's setup commands are run, every
``curl`` of the section is sent in order and its answer checked against the status and the
fields the page shows after ``→`` (``…`` stands for fields left out), and the closing
``tessera recompute`` prints what the page says. Editing the page or the pack without the
other fails here."""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from runtime.app import build_app
from runtime.settings import Settings
from tests.integration.docs.test_documents_example import _call, contains
from tests.support.cli import REPO, tessera

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.integration.docs.test_documents_example import Call

PAGE = REPO / "docs" / "rollups.md"
EXAMPLE = REPO / "docs" / "examples" / "rollups"
SECTION = "## Worked example: lifetime value and stock"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ASSIGN = re.compile(r"^(\w+)=\$\((tessera .*?)(?: 2>/dev/null)?\)$")


def section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def blocks() -> list[str]:
    return [match.group(1) for match in _BLOCK.finditer(section())]


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
                found.append(_call("\n".join(command), " ".join(answer)))
                command, answer = [], []
    return found


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Path:
    config = yaml.safe_load((EXAMPLE / "tessera.yaml").read_text(encoding="utf-8"))
    assert config["modules"] == ["shop"]
    config["database_url"] = db_url
    config["module_paths"] = [str(EXAMPLE / path) for path in config["module_paths"]]
    (tmp_path / "tessera.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


@pytest.fixture
def variables(instance: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    for raw in blocks()[0].splitlines():
        line = raw.split("#")[0].strip()
        if not line or line.startswith(("tessera serve", "cd ")):
            continue
        if line.startswith("API="):
            names["API"] = line.removeprefix("API=")
            continue
        assigned = _ASSIGN.match(line)
        words = shlex.split(assigned[2] if assigned else line)
        done = tessera(*words[1:], cwd=instance)
        assert done.returncode == 0, f"{line}: {done.stderr}"
        if assigned:
            names[assigned[1]] = done.stdout.strip()
    assert {"API", "TOKEN"} <= set(names), names
    return names


@pytest.fixture
def client(instance: Path, variables: dict[str, str]) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    app = build_app(Settings.load(instance / "tessera.yaml"))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def _expand(text: str, names: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: names[m[1]], text)


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
        url = _expand(step.url, variables).removeprefix("http://127.0.0.1:8000")
        headers = {name: _expand(value, variables) for name, value in step.headers.items()}
        response = client.request(step.method, url, headers=headers, content=step.body)
        assert response.status_code == step.status, f"{step.command}\n→ {response.text}"
        shown: Any = step.shown
        if shown is not None:
            assert contains(response.json(), shown), f"{step.command}\n→ {response.text}"
