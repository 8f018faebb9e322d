"""``tessera`` answers fast because it imports little (issue 15, item 7; bench/cli_startup.py
measures the times): ``--help`` imports neither the engine nor the runtime, and checking
valid definitions does not import jsonschema, whose format checkers take over a second to
import (``rfc3987_syntax`` builds a parser)."""

from __future__ import annotations

import subprocess
import sys

from cli.outbox import STATUSES
from engine.outbox import EventStatus
from tests.support.cli import REPO

HEAVY = ("engine", "runtime", "metadata", "sqlalchemy", "fastapi", "jsonschema", "yaml")


def _modules_after(code: str) -> set[str]:
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return set(result.stdout.split())


def test_the_command_line_imports_only_click_until_a_command_runs() -> None:
    loaded = _modules_after("import cli.main")
    assert "click" in loaded
    assert not [name for name in loaded if name.split(".")[0] in HEAVY]


def test_valid_definitions_load_without_jsonschema() -> None:
    loaded = _modules_after(
        "from pathlib import Path\nfrom metadata import load_project\n"
        f"load_project(['contacts'], [Path({str(REPO / 'modules')!r})], fixture_folders=('demo',))"
    )
    assert "metadata._loader" in loaded
    assert "jsonschema" not in loaded


def test_outbox_statuses_offered_by_the_command_line_are_the_engines() -> None:
    assert tuple(status.value for status in EventStatus) == STATUSES
