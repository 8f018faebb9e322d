"""Signing the benchmarks in: every request under ``/api/`` needs ``Authorization: Bearer``,
so a benchmark makes an admin user and an API token with the command line, as an operator
would, once the instance's database is migrated."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

USER = "bench"


def _cli(folder: Path, env: Mapping[str, str], *words: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *words],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"tessera {' '.join(words)}: {done.stderr.strip()}")
    return done.stdout


def bench_token(folder: Path, env: Mapping[str, str]) -> str:
    """Create the admin user ``bench`` in the migrated instance of ``folder`` (its
    ``tessera.yaml``, or ``TESSERA_CONFIG`` in ``env``) and return a new API token for it."""
    return user_token(folder, env, USER, "admin")


def user_token(folder: Path, env: Mapping[str, str], name: str, role: str) -> str:
    """Create the user ``name`` with ``role`` (``admin``, or comma-separated roles of the
    packs' ``roles.yaml``) in the migrated instance of ``folder``, and return a new API token
    for it."""
    _cli(folder, env, "user", "create", name, "--role", role)
    return _cli(folder, env, "token", "create", name).strip()


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request in with ``token``."""
    return {"Authorization": f"Bearer {token}"}
