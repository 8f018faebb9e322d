"""Running ``tessera`` as a user does, without the caller's TESSERA_ variables.

``tessera`` runs the command in this process with click's runner: same code, same exit
status and outputs, without the second of a fresh interpreter importing the engine.
``tessera_process`` runs it as a real subprocess, for what only a process shows (the entry
point, a separate process's caches, signals); ``serving`` in tests/support/server.py starts
``tessera serve``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import traceback
from pathlib import Path

from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


def tessera(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``tessera ARGS`` in ``cwd``, in this process; an exception that escapes the command is
    printed to its stderr as the interpreter would (tests assert there is no traceback).
    ``timeout`` is accepted for the subprocess variant's callers and not enforced."""
    from cli.main import main

    del timeout
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TESSERA_")}
    runner = CliRunner(env=unset)
    with contextlib.chdir(cwd):
        result = runner.invoke(main, list(args), prog_name="tessera")
    stderr = result.stderr
    code = result.exit_code
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        stderr += "".join(traceback.format_exception(*result.exc_info))
        code = 1
    return subprocess.CompletedProcess(["tessera", *args], code, result.stdout, stderr)


def tessera_process(
    *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``tessera ARGS`` as a separate process, as a user starts it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
