"""``tessera user create`` and ``tessera token create|list|revoke`` against a real
database, and the tokens they print opening the API. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from click.testing import CliRunner

from cli.main import main
from tests.conftest import write_instance
from tests.support.cli import tessera, tessera_process
from tests.support.identity import bearer

if TYPE_CHECKING:
    from pathlib import Path


def test_users_and_tokens_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "instance", db_url, ["kitchen"])
    instance.migrate()
    folder = instance.path

    created = tessera(
        "user", "create", "ada", "--password", "s3cret-enough", "--role", "admin", cwd=folder
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("user ada created with id ")
    robot = tessera("user", "create", "robot", "--role", "clerk,viewer", cwd=folder)
    assert "no password: API tokens only" in robot.stdout
    assert "no roles.yaml of this instance declares the role 'clerk'" in robot.stderr

    runner = CliRunner()
    config = ["--config", str(folder / "tessera.yaml")]
    for args, message in [
        (("user", "create", "ada"), "a user named 'ada' already exists"),
        (("user", "create", "no spaces"), "is not a valid user name"),
        (("user", "create", "eve", "--password", "short"), "at least 8 characters"),
        (("user", "create", "eve", "--role", "Not-A-Role"), "not a valid role name"),
        (("token", "create", "nobody"), "no active user named 'nobody'"),
        (("token", "revoke", "999"), "no live token with id 999"),
    ]:
        result = runner.invoke(main, [*args, *config])  # in-process: quicker than a process
        assert result.exit_code == 1, args
        assert message in result.stderr, (args, result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit)

    issued = tessera("token", "create", "robot", "--days", "2", "--label", "ci", cwd=folder)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("tsr_")
    assert len(token) > 40
    assert "for robot, expires " in issued.stderr

    with instance.client(signed_in=False) as client:
        me = client.get("/api/v1/auth/me", headers=bearer(token)).json()["data"]
        assert me["username"] == "robot"
        assert me["roles"] == ["clerk", "viewer"]

        listed = tessera("token", "list", cwd=folder).stdout
        (line,) = [line for line in listed.splitlines() if "robot" in line]
        assert " ci " in line
        assert line.rstrip().endswith("live")
        assert token not in listed
        assert tessera_process("token", "revoke", line.split()[0], cwd=folder).returncode == 0
        assert "revoked" in tessera("token", "list", cwd=folder).stdout
        # revoked from another process: this server trusts its check for at most 5 s
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("the revoked token still worked after 10 s")
