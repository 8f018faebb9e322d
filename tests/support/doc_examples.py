"""Replaying a worked example of a docs page: the section's ``sh`` blocks, the setup
commands of the first block run in an instance made from the example's folder, and every
``curl`` of the others sent to the app, its answer checked against the status and the
fields the page shows after ``# →`` (``…`` stands for fields left out)."""

from __future__ import annotations

import re
import shlex
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from runtime.app import build_app
from runtime.settings import Settings
from tests.support.cli import tessera

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_ANSWER = re.compile(r"# → (\d{3})(?: (.*))?")
_ASSIGN = re.compile(r"^(\w+)=\$\((tessera .*?)(?: 2>/dev/null)?\)$")
LOCAL = "http://127.0.0.1:8000"


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
    data_file: str | None = None
    """``--data-binary @<file>``: the body is that file of the example's folder."""
    form_file: str | None = None
    """``-F file=@<file>``: a multipart body whose part ``file`` is that file."""


def section(page: Path, title: str) -> str:
    """The text of ``page`` from the heading ``title`` to the next ``## `` heading."""
    text = page.read_text(encoding="utf-8")
    start = text.index(title)
    end = text.find("\n## ", start + len(title))
    return text[start : end if end != -1 else len(text)]


def blocks(text: str) -> list[str]:
    """The ``sh`` code blocks of ``text``."""
    return [match.group(1) for match in _BLOCK.finditer(text)]


def calls(sh_blocks: Iterable[str]) -> list[Call]:
    """Every ``curl`` of ``sh_blocks`` with its documented answer."""
    found: list[Call] = []
    for block in sh_blocks:
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
                found.append(parse_call("\n".join(command), " ".join(answer)))
                command, answer = [], []
    return found


def parse_call(command: str, answer: str) -> Call:
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl", command
    method, headers, body, url = "GET", {}, None, None
    data_file = form_file = None
    position = 1
    while position < len(words):
        word = words[position]
        if word in {"--data-binary", "-F", "-o"}:  # a file sent, or the answer saved
            value = words[position + 1]
            position += 2
            if word == "--data-binary":
                data_file = value.removeprefix("@")
                method = "POST" if method == "GET" else method
            elif word == "-F":
                form_file = value.partition("=@")[2].split(";")[0]
                method = "POST" if method == "GET" else method
        elif word in {"-X", "-H", "-d"}:
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
    return Call(
        command,
        method,
        url,
        headers,
        body,
        int(matched[1]),
        _shown(matched[2]),
        data_file,
        form_file,
    )


def _shown(text: str | None) -> Any:
    if not text:
        return None
    cleaned = re.sub(r",\s*…", "", text).replace("…", "")
    return yaml.safe_load(cleaned)  # JSON, which YAML reads, with the ellipses gone


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


def instance(example: Path, db_url: str, folder: Path, modules: list[str]) -> Path:
    """The example folder as it is, but for the database: its packs loaded from
    ``example``, its tessera.yaml (which enables ``modules``) with this test's database."""
    config = yaml.safe_load((example / "tessera.yaml").read_text(encoding="utf-8"))
    assert config["modules"] == modules
    config["database_url"] = db_url
    config["module_paths"] = [str(example / path) for path in config["module_paths"]]
    (folder / "tessera.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder


def run_setup(setup_block: str, folder: Path) -> dict[str, str]:
    """The setup commands, run in the instance: ``tessera`` ones as a user runs them,
    ``NAME=$(tessera ...)`` capturing the output; ``API`` as the page sets it."""
    names: dict[str, str] = {}
    for raw in setup_block.splitlines():
        line = raw.split("#")[0].strip()
        if not line or line.startswith(("tessera serve", "cd ")):
            continue
        if line.startswith("API="):
            names["API"] = line.removeprefix("API=")
            continue
        assigned = _ASSIGN.match(line)
        words = shlex.split(assigned[2] if assigned else line)
        done = tessera(*words[1:], cwd=folder)
        assert done.returncode == 0, f"{line}: {done.stderr}"
        if assigned:
            names[assigned[1]] = done.stdout.strip()
    return names


@contextmanager
def client(folder: Path) -> Iterator[TestClient]:
    from fastapi.testclient import TestClient

    app = build_app(Settings.load(folder / "tessera.yaml"))
    with TestClient(app, raise_server_exceptions=False) as http:
        yield http


def replay(http: TestClient, call: Call, names: dict[str, str], files: Path | None = None) -> None:
    """Send ``call`` (its ``$NAME``s expanded) and check the answer the page shows; the
    files it uploads are read from the folder ``files``."""

    def expand(text: str) -> str:
        return re.sub(r"\$(\w+)", lambda m: names[m[1]], text)

    url = expand(call.url).removeprefix(LOCAL)
    headers = {name: expand(value) for name, value in call.headers.items()}
    content: str | bytes | None = call.body
    upload = None
    if call.data_file is not None and files is not None:
        content = (files / call.data_file).read_bytes()
    if call.form_file is not None and files is not None:
        upload = {"file": (call.form_file, (files / call.form_file).read_bytes())}
    response = http.request(call.method, url, headers=headers, content=content, files=upload)
    assert response.status_code == call.status, f"{call.command}\n→ {response.text}"
    if call.shown is not None:
        assert contains(response.json(), call.shown), f"{call.command}\n→ {response.text}"


def replay_example(
    example: Path, db_url: str, folder: Path, modules: list[str], sh_blocks: list[str]
) -> None:
    """A page's worked example end to end: the instance of ``example`` with ``modules``, the
    first block's setup commands (which name ``API`` and ``TOKEN``), then every ``curl`` of
    the other blocks replayed in order against what the page shows."""
    folder = instance(example, db_url, folder, modules)
    names = run_setup(sh_blocks[0], folder)
    assert {"API", "TOKEN"} <= set(names), names
    with client(folder) as http:
        for call in calls(sh_blocks[1:]):
            replay(http, call, names, example)
