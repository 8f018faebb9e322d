"""Property-based fuzzing of the generated API from its own OpenAPI document.

A real ``tessera serve`` process is started on loopback and schemathesis sends generated
valid and invalid requests to every operation; no response may be a 5xx.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.support.identity import bearer
from tests.support.server import serving

if TYPE_CHECKING:
    from tests.conftest import Instance

SCHEMATHESIS = [str(Path(sys.executable).parent / "schemathesis")]


def test_no_server_errors_under_fuzzing(kitchen: Instance, tmp_path: Path) -> None:
    token = kitchen.token()
    with serving(kitchen.path) as base:
        httpx.post(f"{base}/api/v1/kitchen/category", json={"name": "Seed"}, headers=bearer(token))
        result = subprocess.run(
            [
                *SCHEMATHESIS,
                "run",
                f"{base}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--mode",
                "all",
                "--max-examples",
                "40",
                "--seed",
                "20261122",
                "--phases",
                "examples,fuzzing",
                "--no-color",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        )
    summary = result.stdout[-3000:]
    assert result.returncode == 0, summary
    assert " passed" in summary
