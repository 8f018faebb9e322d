"""The web UI's sign-in form against names and passwords no user can have (a NUL byte, a
lone surrogate smuggled in through a multipart form's charset): the sign-in page with an
error, never a 500 or a dropped connection; throttled and audited like any wrong password.
On SQLite and PostgreSQL (where a NUL byte used to reach the database and fail)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from runtime.app import build_app
from tests.conftest import Instance, write_instance
from tests.integration.api.test_auth import rows
from tests.support.identity import issue_token
from tests.support.web import sign_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from httpx import Response

PASSWORD = "correct horse battery"
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "instance",
        db_url,
        ["kitchen"],
        auth={"login_attempts": 3, "login_window_seconds": 60},
    )
    instance.migrate()
    issue_token(db_url, "ada", ("admin",), password=PASSWORD)
    return instance


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with TestClient(build_app(instance.settings), raise_server_exceptions=False) as client:
        yield client


def multipart_utf7(client: TestClient, fields: dict[str, bytes]) -> Response:
    """The sign-in form posted as multipart/form-data declaring ``charset=utf-7``, whose
    ``+2AA-`` decodes to a lone surrogate (Starlette decodes parts in the declared charset)."""
    nonce = _NONCE.search(client.get("/login").text)
    assert nonce
    parts = {"nonce": nonce.group(1).encode(), **fields}
    body = b"".join(
        b'--XyZ\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (name.encode(), v)
        for name, v in parts.items()
    )
    return client.post(
        "/login",
        content=body + b"--XyZ--\r\n",
        headers={"content-type": "multipart/form-data; charset=utf-7; boundary=XyZ"},
        follow_redirects=False,
    )


def login_failures(instance: Instance) -> list[tuple[str, dict[str, Any]]]:
    found = rows(
        instance.settings.database_url,
        "SELECT record_id, changes FROM tessera_audit WHERE action = 'login_failed' ORDER BY id",
    )
    return [(str(n), {k: v[1] for k, v in json.loads(str(c)).items()}) for n, c in found]


def test_a_nul_byte_in_the_name_is_a_wrong_sign_in(instance: Instance, client: TestClient) -> None:
    for _ in range(3):
        page = sign_in(client, "ad\x00min", PASSWORD)
        assert page.status_code == 401, page.text[:500]
        assert "text/html" in page.headers["content-type"]
        assert "Wrong user name or password." in page.text
    throttled = sign_in(client, "ad\x00min", PASSWORD)
    assert throttled.status_code == 429
    assert "too many failed sign-ins" in throttled.text
    failures = login_failures(instance)
    assert [name for name, _ in failures] == [r"ad\x00min"] * 4
    assert [d["reason"] for _, d in failures][-1] == "throttled"
    assert "tessera_session" not in client.cookies


def test_lone_surrogates_in_a_form_are_wrong_sign_ins(
    instance: Instance, client: TestClient
) -> None:
    name = multipart_utf7(client, {"username": b"+2AA-", "password": b"whatever"})
    assert name.status_code == 401, name.text[:500]
    assert "Wrong user name or password." in name.text
    password = multipart_utf7(client, {"username": b"ada", "password": b"x+2AA-y"})
    assert password.status_code == 401, password.text[:500]
    forged = multipart_utf7(client, {"nonce": b"+2AA-", "username": b"ada", "password": b"x"})
    assert forged.status_code == 400, forged.text[:500]
    assert "The form expired" in forged.text
    # the right password, and a next page that is not text: signed in, sent home
    done = multipart_utf7(
        client,
        {"username": b"ada", "password": PASSWORD.encode(), "next": b"/app/+2AA-"},
    )
    assert done.status_code == 303, done.text[:500]
    assert done.headers["location"] == "/app"
    assert [name for name, _ in login_failures(instance)] == [r"\ud800", "ada"]
