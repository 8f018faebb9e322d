"""A real ``tessera serve`` process on a free loopback port, for tests that need one."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import httpx

from tests.support.cli import REPO

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(instance_dir: Path, *args: str) -> Iterator[str]:
    """Start ``tessera serve`` in ``instance_dir``; yield its base URL; stop it and check
    that it printed no traceback."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["PYTHONPATH"] = str(REPO)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--port", str(port), *args],
        cwd=instance_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    # drain the server's output as it comes: a full pipe would block its event loop
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lines.extend, args=(process.stdout,), daemon=True)
    reader.start()
    try:
        # one client for the polls: each httpx.get would load the CA bundle again (~20 ms of
        # CPU), and a slow start polls dozens of times; plain HTTP on loopback verifies nothing
        with httpx.Client(verify=False, trust_env=False) as http:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    reader.join(timeout=5)
                    raise AssertionError("tessera serve exited:\n" + "".join(lines))
                try:
                    if http.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                raise AssertionError("tessera serve did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=30)
        process.stdout.close()
        output = "".join(lines)
        assert "Traceback" not in output, output
