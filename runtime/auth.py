"""Who is calling: bearer tokens on every API request, and the sign-in throttle.

Every path under ``/api/`` needs ``Authorization: Bearer <token>`` except the token issue
itself; ``/healthz`` and the API documentation are open. The user a token belongs to is
checked against the database and then trusted for ``token_cache_seconds`` (never past the
token's expiry), so a request costs a dictionary lookup, not a query.
"""

from __future__ import annotations

import collections
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # noqa: TC002 - FastAPI reads the annotation

from engine.audit import AuditAction
from engine.identity import IssuedToken, User, token_digest
from runtime.api.problems import ApiProblem

if TYPE_CHECKING:
    from starlette.types import Scope

    from engine.audit import AuditLog
    from engine.identity import Identity
    from runtime.api.records import DatabaseHolder
    from runtime.settings import AuthSettings

log = logging.getLogger("tessera.security")

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
_OPEN_PATHS = frozenset({TOKEN_PATH})
_USER_KEY = "tessera.user"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tessera"'}
_CACHE_LIMIT = 10_000


def needs_authentication(path: str) -> bool:
    return path.startswith("/api/") and path not in _OPEN_PATHS


def current_user(request: Request) -> User:
    """The authenticated caller; every request that reaches an API handler has one."""
    user = request.scope.get(_USER_KEY)
    if not isinstance(user, User):
        raise ApiProblem(401, "authentication required", headers=_CHALLENGE)
    return user


async def require_admin(request: Request) -> User:
    user = current_user(request)
    if not user.is_admin:
        path = request.url.path
        log.warning("denied: %s (not admin) %s %s", user.username, request.method, path)
        authenticator: Authenticator = request.app.authenticator
        details = {"request": f"{request.method} {path}", "reason": "needs the admin role"}
        await authenticator.record_event(AuditAction.DENIED, "admin", "", user, details)
        raise ApiProblem(403, "this needs the admin role")
    return user


class Authenticator:
    def __init__(
        self,
        settings: AuthSettings,
        identity: Identity,
        database: DatabaseHolder,
        audit: AuditLog,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self.database = database
        self.audit = audit
        self.throttle = LoginThrottle(settings.login_attempts, settings.login_window_seconds)
        self._trusted: dict[str, tuple[User, float]] = {}

    async def sign_in(
        self, username: str, password: str, address: str, purpose: str
    ) -> IssuedToken:
        """A new token for a user name and password (``purpose`` names it: ``sign-in``,
        ``web session``); 429 while the name or the address is throttled, 401 if wrong.
        Both refusals go to the audit trail."""
        now = time.time()
        wait = self.throttle.retry_after(username, address, now)
        if wait is not None:
            log.warning("sign-in throttled: %r from %s", username, address)
            details = {"address": address, "throttled": True}
            await self.record_event(AuditAction.LOGIN_FAILED, "auth", username, None, details)
            raise ApiProblem(
                429,
                "too many failed sign-ins; try again later",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        async with self.database.get().transaction() as conn:
            user = await self.identity.authenticate(conn, username, password)
            if user is not None:
                lifetime = self.settings.token_hours * 3600
                issued = await self.identity.issue_token(
                    conn, user, purpose, lifetime_seconds=lifetime
                )
        if user is None:
            self.throttle.failed(username, address, now)
            log.warning("failed sign-in: %r from %s", username, address)
            await self.record_event(
                AuditAction.LOGIN_FAILED, "auth", username, None, {"address": address}
            )
            raise ApiProblem(401, "wrong user name or password", headers=_CHALLENGE)
        self.throttle.succeeded(username)
        return issued

    async def sign_out(self, token: str) -> None:
        """Revoke ``token`` and stop trusting it in this process."""
        async with self.database.get().connection() as conn:
            await self.identity.revoke_token_text(conn, token)
        self.forget(token)

    async def record_event(
        self,
        action: AuditAction,
        entity: str,
        record_id: str,
        user: User | None,
        details: dict[str, Any],
    ) -> None:
        """A security event in the audit trail, in a transaction of its own (the refused
        request's work, if any, is rolled back). Never fails the response."""
        row = self.audit.row(
            entity,
            record_id[:40],
            action,
            {k: [None, v] for k, v in details.items()},
            str(user.id) if user is not None else None,
        )
        try:
            async with self.database.get().transaction() as conn:
                await self.audit.add(conn, row)
        except Exception as exc:  # noqa: BLE001 - the event is logged below in any case
            log.warning("could not record %s in the audit trail: %s", action.value, exc)

    async def authenticate(self, scope: Scope) -> None:
        """Put the caller in the request scope, or raise 401."""
        token = _bearer(scope)
        if token is None:
            raise ApiProblem(
                401,
                "authentication required: send 'Authorization: Bearer <token>'",
                headers=_CHALLENGE,
            )
        user = await self.user_for(token)
        if user is None:
            log.warning("rejected token from %s", _address(scope))
            raise ApiProblem(401, "the token is invalid, expired or revoked", headers=_CHALLENGE)
        scope[_USER_KEY] = user

    async def user_for(self, token: str) -> User | None:
        now = time.time()
        digest = token_digest(token)
        trusted = self._trusted.get(digest)
        if trusted is not None and trusted[1] > now:
            return trusted[0]
        async with self.database.get().connection() as conn:
            found = await self.identity.user_for_token(conn, token, now)
        if found is None:
            self._trusted.pop(digest, None)
            return None
        user, expires_at = found
        until = now + self.settings.token_cache_seconds
        if expires_at is not None:
            until = min(until, expires_at)
        if len(self._trusted) >= _CACHE_LIMIT:
            self._trusted.clear()
        self._trusted[digest] = (user, until)
        return user

    def forget(self, token: str | None = None) -> None:
        """Stop trusting one token (or all): after a revocation through this process."""
        if token is None:
            self._trusted.clear()
        else:
            self._trusted.pop(token_digest(token), None)


class LoginThrottle:
    """Failed sign-ins in a sliding window, per user name and per client address.

    Kept in the server process: with several worker processes each counts on its own,
    so the effective limit is multiplied by their number (documented in docs/security.md).
    """

    def __init__(self, attempts: int, window_seconds: float) -> None:
        self.window = window_seconds
        self._limits = {"user": attempts, "address": attempts * 4}
        self._failures: dict[tuple[str, str], collections.deque[float]] = {}

    def retry_after(self, username: str, address: str, now: float) -> float | None:
        """Seconds until a sign-in may be tried again, or None if it may now."""
        waits = []
        for key in (("user", username), ("address", address)):
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self._limits[key[0]]:
                waits.append(failures[0] + self.window - now)
        return max(waits) if waits else None

    def failed(self, username: str, address: str, now: float) -> None:
        for key in (("user", username), ("address", address)):
            self._failures.setdefault(key, collections.deque()).append(now)
        if len(self._failures) > _CACHE_LIMIT:
            for stale in [k for k in self._failures if self._recent(k, now) is None]:
                del self._failures[stale]

    def succeeded(self, username: str) -> None:
        self._failures.pop(("user", username), None)

    def _recent(self, key: tuple[str, str], now: float) -> collections.deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, credentials = text.partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def client_address(request: Request) -> str:
    return _address(request.scope)
