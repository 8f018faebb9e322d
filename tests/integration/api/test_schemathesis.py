"""Property-based fuzzing of the generated API from its own OpenAPI document.

A real ``tessera serve`` process is started on loopback and schemathesis sends generated
valid and invalid requests to every operation; no response may be a 5xx.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.conftest import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import Instance

import contextlib

SCHEMATHESIS = [str(Path(sys.executable).parent / "schemathesis")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(instance: Instance) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port)],
        cwd=instance.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("tessera serve did not start")
        yield base
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        assert "Traceback" not in output, output


def test_no_server_errors_under_fuzzing(kitchen: Instance, tmp_path: Path) -> None:
    with serving(kitchen) as base:
        httpx.post(f"{base}/api/v1/kitchen/category", json={"name": "Seed"})
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
