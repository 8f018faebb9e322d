"""The worked example of docs/documents.md runs as written, on SQLite and PostgreSQL: the
pack of docs/examples/purchase_request/ is loaded as it is, the page's ``tessera`` setup
commands are run, and every ``curl`` of the section is sent in order, its answer checked
against the status and the fields the page shows after ``→`` (``…`` stands for fields
left out). Editing the page or the pack without the other fails here."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from runtime.app import build_app
from runtime.settings import Settings
from tests.support.cli import REPO, tessera

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PAGE = REPO / "docs" / "documents.md"
EXAMPLE = REPO / "docs" / "examples" / "purchase_request"
SECTION = "## Worked example: a purchase request approved by a manager"
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ANSWER = re.compile(r"# → (\d{3})(?: (.*))?")
_ASSIGN = re.compile(r"^(\w+)=\$\((tessera .*?)(?: 2>/dev/null)?\)$")


@dataclass(frozen=True)
class Call:
    """One documented ``curl`` and the answer the page shows for it."""

    command: str
    method: str
    url: str
    headers: dict[str, str]
    body: str | None
    status: int
    shown: Any
    """The fields shown, with ``…`` removed: every one must be in the answer."""


def section() -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start : end if end != -1 else len(text)]


def blocks() -> list[str]:
    return [match.group(1) for match in _BLOCK.finditer(section())]


def setup_commands() -> list[str]:
    """The first ``sh`` block: the commands that prepare the instance."""
    return [line.split("#")[0].strip() for line in blocks()[0].splitlines()]


def _shown(text: str | None) -> Any:
    if not text:
        return None
    cleaned = re.sub(r",\s*…", "", text).replace("…", "")
    return yaml.safe_load(cleaned)  # JSON, which YAML reads, with the ellipses gone


def calls() -> list[Call]:
    """Every ``curl`` of the section after the setup block, with its documented answer."""
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


def _call(command: str, answer: str) -> Call:
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl", command
    method, headers, body, url = "GET", {}, None, None
    position = 1
    while position < len(words):
        word = words[position]
        if word in {"-X", "-H", "-d"}:
            value = words[position + 1]
            position += 2
            if word == "-X":
                method = value
            elif word == "-H":
                name, _, header = value.partition(":")
                headers[name.strip()] = header.strip()
            else:
                body = value
        elif word.startswith("-"):
            position += 1  # -s
        else:
            url, position = word, position + 1
    assert url is not None, command
    matched = _ANSWER.fullmatch(answer)
    assert matched, f"no '# → status' after {command!r}: {answer!r}"
    return Call(command, method, url, headers, body, int(matched[1]), _shown(matched[2]))


def contains(answer: Any, shown: Any) -> bool:
    """Whether ``answer`` holds what the page shows: every key shown, with a value that
    holds the shown one; lists item by item, of the same length."""
    if isinstance(shown, dict):
        return isinstance(answer, dict) and all(
            key in answer and contains(answer[key], value) for key, value in shown.items()
        )
    if isinstance(shown, list):
        return (
            isinstance(answer, list)
            and len(answer) == len(shown)
            and all(contains(a, s) for a, s in zip(answer, shown, strict=True))
        )
    return bool(answer == shown)


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Path:
    """The example folder as it is, but for the database: its pack loaded from
    docs/examples, its tessera.yaml with this test's database."""
    config = yaml.safe_load((EXAMPLE / "tessera.yaml").read_text(encoding="utf-8"))
    assert config["modules"] == ["buying"]
    config["database_url"] = db_url
    config["module_paths"] = [str(EXAMPLE / path) for path in config["module_paths"]]
    (tmp_path / "tessera.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return tmp_path


@pytest.fixture
def variables(instance: Path) -> dict[str, str]:
    """The page's setup commands, run in the instance: ``tessera`` ones as a user runs
    them, ``NAME=$(tessera ...)`` capturing the output; ``API`` as the page sets it."""
    names: dict[str, str] = {}
    for line in setup_commands():
        assigned = _ASSIGN.match(line)
        if line.startswith("tessera serve") or line.startswith("cd ") or not line:
            continue
        if line.startswith("API="):
            names["API"] = line.removeprefix("API=")
            continue
        words = shlex.split(assigned[2] if assigned else line)
        done = tessera(*words[1:], cwd=instance)
        assert done.returncode == 0, f"{line}: {done.stderr}"
        if assigned:
            names[assigned[1]] = done.stdout.strip()
    assert {"API", "CARL", "MIA"} <= set(names), names
    return names


@pytest.fixture
def client(instance: Path, variables: dict[str, str]) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    app = build_app(Settings.load(instance / "tessera.yaml"))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def _expand(text: str, names: dict[str, str]) -> str:
    return re.sub(r"\$(\w+)", lambda m: names[m[1]], text)


def test_the_page_documents_the_whole_flow() -> None:
    """The parser finds every request of the section, and the statuses the brief names."""
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
        url = _expand(call.url, variables).removeprefix("http://127.0.0.1:8000")
        headers = {name: _expand(value, variables) for name, value in call.headers.items()}
        response = client.request(call.method, url, headers=headers, content=call.body)
        assert response.status_code == call.status, f"{call.command}\n→ {response.text}"
        if call.shown is not None:
            assert contains(response.json(), call.shown), f"{call.command}\n→ {response.text}"
