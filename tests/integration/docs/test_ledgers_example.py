"""The worked example of docs/ledgers.md runs as written, on SQLite and PostgreSQL: the
pack of docs/examples/ledgers/ is loaded as it is, the page's setup commands are run, and
every ``curl`` of the section is sent in order, its answer checked against the status and
the fields the page shows after ``→`` (the parser is docs/documents.md's)."""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

import pytest
import yaml

from runtime.app import build_app
from runtime.settings import Settings
from tests.integration.docs.test_documents_example import Call, _call, contains
from tests.support.cli import REPO, tessera

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PAGE = REPO / "docs" / "ledgers.md"
EXAMPLE = REPO / "docs" / "examples" / "ledgers"
SECTION = "## Worked example: stock and books"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ASSIGN = re.compile(r"^(\w+)=\$\((tessera .*?)(?: 2>/dev/null)?\)$")


def blocks() -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return [m.group(1) for m in _BLOCK.finditer(text[start : end if end != -1 else None])]


def calls() -> list[Call]:
    found: list[Call] = []
    for block in blocks()[1:]:
        command: list[str] = []
        answer: list[str] = []
        for line in [*block.splitlines(), ""]:
            if line.startswith("curl "):
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


def test_the_page_documents_the_whole_flow() -> None:
    statuses = {(c.method, c.url.rsplit("/", 1)[-1], c.status) for c in calls()}
    assert len(calls()) == 25
    assert ("POST", "_submit", 409) in statuses
    assert ("POST", "_submit", 422) in statuses
    assert ("POST", "stock_ledger_entry", 405) in {
        (c.method, c.url.rsplit("/", 1)[-1], c.status) for c in calls()
    }


def test_the_pack_files_are_the_ones_the_page_shows() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for name in ("bin.yaml", "stock_ledger_entry.yaml"):
        for line in (EXAMPLE / "packs" / "books" / "entities" / name).read_text().splitlines():
            if line.startswith(("  key:", "  amounts:", "  date:")):
                assert line.split("#")[0].strip() in text, line


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Path:
    config = yaml.safe_load((EXAMPLE / "tessera.yaml").read_text(encoding="utf-8"))
    config["database_url"] = db_url
    config["module_paths"] = [str(EXAMPLE / path) for path in config["module_paths"]]
    (tmp_path / "tessera.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


@pytest.fixture
def variables(instance: Path) -> dict[str, str]:
    names: dict[str, str] = {}
    for raw in blocks()[0].splitlines():
        line = raw.split("#")[0].strip()
        assigned = _ASSIGN.match(line)
        if not line or line.startswith(("tessera serve", "cd ")):
            continue
        if line.startswith("API="):
            names["API"] = line.removeprefix("API=")
            continue
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


def test_the_worked_example_answers_as_documented(
    client: TestClient, variables: dict[str, str]
) -> None:
    def expand(text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: variables[m[1]], text)

    for call in calls():
        url = expand(call.url).removeprefix("http://127.0.0.1:8000")
        headers = {name: expand(value) for name, value in call.headers.items()}
        response = client.request(call.method, url, headers=headers, content=call.body)
        assert response.status_code == call.status, f"{call.command}\n→ {response.text}"
        if call.shown is not None:
            assert contains(response.json(), call.shown), f"{call.command}\n→ {response.text}"
