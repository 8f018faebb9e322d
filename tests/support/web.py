"""Signing a test client in through the web UI's sign-in form, as a browser does."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx import Response

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
