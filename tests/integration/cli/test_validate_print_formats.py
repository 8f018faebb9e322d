"""``tessera validate`` and ``tessera migrate`` report a print format that does not parse
at its file:line:col, before the server or the database meets it (on SQLite and
PostgreSQL)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from tests.conftest import TEST_PACKS, write_instance
from tests.support.cli import tessera

if TYPE_CHECKING:
    from pathlib import Path


def test_a_print_format_that_does_not_parse_fails_validate_and_migrate(
    db_url: str, tmp_path: Path
) -> None:
    packs = tmp_path / "packs"
    shutil.copytree(TEST_PACKS / "kitchen", packs / "kitchen")  # a template added to a copy
    (packs / "kitchen" / "templates").mkdir(exist_ok=True)
    broken = packs / "kitchen" / "templates" / "note.print.html"
    broken.write_text("<html>\n<p>{{ title }} {% for x in %}</p>\n", encoding="utf-8")
    instance = write_instance(tmp_path / "j", db_url, ["kitchen"], [packs])

    for command in ("validate", "migrate"):
        result = tessera(command, cwd=instance.path)
        assert result.returncode == 1, command
        assert f"{broken}:2:16: Expected an expression" in result.stderr, result.stderr
    broken.write_text("<html>{{ title }}</html>\n", encoding="utf-8")
    assert tessera("validate", cwd=instance.path).returncode == 0
