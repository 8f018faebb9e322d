"""Signing a test client in through the web UI's sign-in form, as a browser does."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from fastapi.testclient import TestClient

from runtime.app import build_app

if TYPE_CHECKING:
    from collections.abc import Iterator

    from httpx import Response

    from tests.conftest import Instance

_NONCE = re.compile(r'name="nonce" value="([^"]+)"')
_CSRF = re.compile(r'data-csrf="([0-9a-f]+)"')


def sign_in(client: TestClient, username: str, password: str, next_page: str = "") -> Response:
    form = client.get("/login")
    match = _NONCE.search(form.text)
    assert match, form.text
    return client.post(
        "/login",
        data={
            "nonce": match.group(1),
            "username": username,
            "password": password,
            "next": next_page,
        },
        follow_redirects=False,
    )


def csrf_of(page: Response) -> str:
    match = _CSRF.search(page.text)
    assert match, page.text[:2000]
    return match.group(1)


@contextlib.contextmanager
def signed_in(instance: Instance, username: str, password: str) -> Iterator[TestClient]:
    """A client of the instance's app that keeps cookies, signed in through the form."""
    with TestClient(build_app(instance.settings), raise_server_exceptions=False) as client:
        assert sign_in(client, username, password).status_code == 303
        yield client
