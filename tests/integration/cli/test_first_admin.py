"""The first person in: ``tessera migrate`` makes the first administrator of an instance
that has no user (typed on a terminal, given by a flag, or generated and printed once), and
``tessera user password`` sets a new password. Signed in through the real API afterwards.
On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from typing import TYPE_CHECKING

from tests.conftest import write_instance
from tests.support.cli import REPO, tessera

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Instance

PRINTED = re.compile(r"first administrator: admin \(role admin\); password: (\S+) \(shown only")


def sign_in_status(instance: Instance, username: str, password: str) -> int:
    with instance.client(signed_in=False) as client:
        answer = client.post(
            "/api/v1/auth/token", json={"username": username, "password": password}
        )
        return answer.status_code


def test_a_script_gets_a_generated_password_printed_once(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "i", db_url, ["kitchen"])
    first = tessera("migrate", cwd=instance.path)  # stdin is not a terminal here
    assert first.returncode == 0, first.stderr
    printed = PRINTED.search(first.stdout)
    assert printed, first.stdout
    password = printed.group(1)
    assert len(password) >= 16
    assert sign_in_status(instance, "admin", password) == 200
    assert sign_in_status(instance, "admin", password + "x") == 401

    again = tessera("migrate", cwd=instance.path)
    assert again.returncode == 0, again.stderr
    assert "first administrator" not in again.stdout
    assert sign_in_status(instance, "admin", password) == 200

    changed = tessera(
        "user", "password", "admin", "--password", "a long passphrase", cwd=instance.path
    )
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.strip() == "password of admin changed"
    assert sign_in_status(instance, "admin", password) == 401
    assert sign_in_status(instance, "admin", "a long passphrase") == 200

    for args, message in [
        (("user", "password", "admin", "--password", "short"), "at least 8 characters"),
        (("user", "password", "nobody", "--password", "long enough"), "no active user named"),
    ]:
        refused = tessera(*args, cwd=instance.path)
        assert refused.returncode == 1
        assert message in refused.stderr
        assert "Traceback" not in refused.stderr
    assert sign_in_status(instance, "admin", "a long passphrase") == 200


def test_flags_choose_the_name_and_password_and_bad_ones_change_nothing(
    db_url: str, tmp_path: Path
) -> None:
    instance = write_instance(tmp_path / "i", db_url, ["kitchen"])
    for args, message in [
        (("--admin", "no spaces"), "is not a valid user name for --admin"),
        (("--admin-password", "short"), "--admin-password: a password has at least 8"),
    ]:
        refused = tessera("migrate", *args, cwd=instance.path)
        assert refused.returncode == 1
        assert message in refused.stderr
        assert "create table" not in refused.stdout  # refused before migrating

    none = tessera("migrate", "--no-admin", cwd=instance.path)
    assert none.returncode == 0, none.stderr
    assert "create table" in none.stdout
    assert "first administrator" not in none.stdout

    chosen = tessera(
        "migrate", "--admin", "ada", "--admin-password", "chosen passphrase", cwd=instance.path
    )
    assert chosen.returncode == 0, chosen.stderr
    assert "first administrator: ada (role admin)\n" in chosen.stdout  # a chosen one: not shown
    assert "chosen passphrase" not in chosen.stdout
    assert sign_in_status(instance, "ada", "chosen passphrase") == 200
    with instance.client(signed_in=False) as client:
        token = client.post(
            "/api/v1/auth/token", json={"username": "ada", "password": "chosen passphrase"}
        ).json()["access_token"]
        me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["data"]["roles"] == ["admin"]


def _read_until(fd: int, wanted: str, seen: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while wanted not in "".join(seen):
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted!r} in {''.join(seen)!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                chunk = b""
            assert chunk, f"the command ended before {wanted!r}: {''.join(seen)!r}"
            seen.append(chunk.decode("utf-8", "replace"))


def test_on_a_terminal_the_password_is_asked_for_twice(db_url: str, tmp_path: Path) -> None:
    """A real terminal (a pseudo-terminal as the command's controlling tty): a too short
    password is refused and asked again; the chosen one is never echoed nor printed."""
    instance = write_instance(tmp_path / "i", db_url, ["kitchen"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["PYTHONPATH"] = str(REPO)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, with the pseudo-terminal as its terminal
        os.chdir(instance.path)
        os.execve(sys.executable, [sys.executable, "-m", "cli.main", "migrate"], env)
    seen: list[str] = []
    exited = False
    try:
        answers = [("generate one): ", "short"), ("confirmation: ", "short")]
        answers += [("generate one): ", "terminal passphrase")] * 1
        answers += [("confirmation: ", "terminal passphrase")]
        for prompt, answer in answers:
            _read_until(fd, prompt, seen)
            if answer == "terminal passphrase" and prompt.startswith("generate"):
                assert "at least 8 characters" in "".join(seen)  # "short" was refused
            seen.clear()
            os.write(fd, answer.encode() + b"\n")
        _read_until(fd, "sign in with it", seen)
        _, status = os.waitpid(pid, 0)
        exited = True
    finally:
        if not exited:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        os.close(fd)
    output = "".join(seen)
    assert os.waitstatus_to_exitcode(status) == 0, output
    assert "first administrator: admin (role admin)" in output
    assert "terminal passphrase" not in output
    assert sign_in_status(instance, "admin", "terminal passphrase") == 200
