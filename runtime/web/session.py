"""Browser sessions: a session cookie holding an API token, and CSRF tokens derived from it.

Signing in issues an ordinary token (hashed in the tokens table, revocable, expiring like
any other) and puts it in an ``HttpOnly``, ``SameSite=Lax`` cookie, so the browser never
exposes it to scripts and other sites' forms do not carry it. Every state-changing request
must also send the CSRF token: an HMAC of the session token, which a page from this site
can embed and another site cannot compute. Signing out revokes the token.

The sign-in form has no session yet; it is protected by a double-submit value: a random
cookie that the form must repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from engine.identity import User
    from runtime.auth import Authenticator

SESSION_COOKIE = "tessera_session"
LOGIN_COOKIE = "tessera_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_CSRF_CONTEXT = b"tessera web csrf v1"


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    token: str

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    """Whether a secret sent back matches, in constant time; any text may be sent (a form
    field decoded as UTF-7 can hold a lone surrogate)."""
    if given is None:
        return False
    return hmac.compare_digest(_bytes(given), _bytes(expected))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


async def session_of(request: Request, authenticator: Authenticator) -> Session | None:
    """The signed-in user of this browser, if its session token is still valid."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    user = await authenticator.user_for(token)
    return Session(user, token) if user is not None else None


async def csrf_given(request: Request) -> str | None:
    """The CSRF token a request sends: the header (htmx, scripts) or the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    form = await request.form()
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else None


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


def login_nonce(request: Request) -> str:
    """The sign-in form's double-submit value: the browser's, or a new one."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_login_cookie(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
