"""Who is calling: bearer tokens on every API request, and the sign-in throttle.

Every path under ``/api/`` needs ``Authorization: Bearer <token>`` except the token issue
itself; ``/healthz`` and the API documentation are open. The user a token belongs to is
checked against the database and then trusted for ``token_cache_seconds`` (never past the
token's expiry), so a request costs a dictionary lookup, not a query. With a broker the
throttle counts and revocations are shared by every process (``runtime.shared_auth``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # noqa: TC002 - FastAPI reads the annotation

from engine.audit import AuditAction
from engine.identity import IssuedToken, User, printable_name, token_digest
from runtime.api.problems import ApiProblem
from runtime.shared_auth import SharedUnavailable

if TYPE_CHECKING:
    from starlette.types import Scope

    from engine.audit import AuditLog
    from engine.identity import Identity
    from runtime.plumbing import DatabaseHolder
    from runtime.settings import AuthSettings
    from runtime.shared_auth import SharedAuth

log = logging.getLogger("tessera.security")

TOKEN_PATH = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret
_OPEN_PATHS = frozenset({TOKEN_PATH})
_USER_KEY = "tessera.user"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tessera"'}
_CACHE_LIMIT = 10_000
_LOGGED_NAME = 160
WRONG_PASSWORD = "wrong user name or password"  # noqa: S105 - a reason, not a secret
REFUSALS_EVERY = 60.0
"""Seconds between audit rows of one throttled user name (or address): the attempts refused
in between are counted in the next row."""


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
        shared: SharedAuth | None = None,
    ) -> None:
        self.settings = settings
        self.shared = shared
        """Redis, with a broker: throttle counts and revocations of every process."""
        self.identity = identity
        self.database = database
        self.audit = audit
        self.throttle = LoginThrottle(settings.login_attempts, settings.login_window_seconds)
        self._trusted: dict[str, tuple[User, float]] = {}
        self._refusals: dict[tuple[str, str], _Refusals] = {}
        self._next_sweep = 0.0

    async def sign_in(
        self, username: str, password: str, address: str, purpose: str
    ) -> IssuedToken:
        """A new token for a user name and password (``purpose`` names it: ``sign-in``,
        ``web session``); 429 while the name or the address is throttled, 401 if wrong.
        Both refusals go to the audit trail (throttled ones aggregated).

        The attempt is counted before the password is checked, so parallel attempts for
        one name get at most ``login_attempts`` checks; the check itself runs in a thread.
        Any text is accepted as a name: one no user can have is not looked up, and is
        logged and stored escaped (``printable_name``)."""
        now = time.time()
        if now >= self._next_sweep:
            await self._sweep_refusals(now)
        refusal, ticket = await self._attempt(username, address, now)
        if refusal is not None:
            await self._refused(refusal, username, address, now)
            raise ApiProblem(
                429,
                "too many failed sign-ins; try again later",
                headers={"Retry-After": str(max(1, round(refusal.wait)))},
            )
        async with self.database.get().connection() as conn:
            candidate = await self.identity.sign_in_candidate(conn, username)
        user = await self.identity.verify(candidate, password)
        if user is None:
            name = printable_name(username)
            log.warning("failed sign-in: '%s' from %s", name[:_LOGGED_NAME], address)
            details = {"address": address, "reason": WRONG_PASSWORD}
            await self.record_event(AuditAction.LOGIN_FAILED, "auth", name, None, details)
            raise ApiProblem(401, "wrong user name or password", headers=_CHALLENGE)
        async with self.database.get().transaction() as conn:
            lifetime = self.settings.token_hours * 3600
            issued = await self.identity.issue_token(conn, user, purpose, lifetime_seconds=lifetime)
        await self._succeeded(username, address, now, ticket)
        return issued

    async def _attempt(
        self, username: str, address: str, now: float
    ) -> tuple[Refusal | None, str | None]:
        """The throttle's judgement of an attempt: the shared one's (with its ticket), or,
        without a broker or while Redis is down, this process's (no ticket)."""
        if self.shared is not None:
            try:
                refused, ticket = await self.shared.attempt(username, address, now)
            except SharedUnavailable:
                pass
            else:
                return (Refusal(*refused) if refused is not None else None), ticket
        return self.throttle.attempt(username, address, now), None

    async def _succeeded(self, username: str, address: str, now: float, ticket: str | None) -> None:
        if ticket is not None and self.shared is not None:
            with contextlib.suppress(SharedUnavailable):
                await self.shared.succeeded(username, address, ticket)
            return
        self.throttle.succeeded(username, address, now)

    async def _refused(self, refusal: Refusal, username: str, address: str, now: float) -> None:
        """A throttled attempt, in the audit trail and the log without flooding them: the
        first refusal of a lock (per user name, or per address) is written at once, the
        next ones are counted and written as one row (``refused``: how many) at most every
        ``REFUSALS_EVERY`` seconds, and when the server stops (``close``)."""
        key = (refusal.lock, username if refusal.lock == "user" else address)
        pending = self._refusals.get(key)
        if pending is None or now - pending.written_at >= REFUSALS_EVERY:
            count = 1 + (pending.count if pending is not None else 0)
            self._refusals[key] = _Refusals(now)
            await self._write_refusals(refusal.lock, username, address, count)
        else:
            pending.count += 1
            pending.username, pending.address = username, address
        if len(self._refusals) > _CACHE_LIMIT:
            await self._sweep_refusals(now)

    async def _sweep_refusals(self, now: float) -> None:
        """Write the counts of locks whose last row is older than ``REFUSALS_EVERY``, and
        forget those locks."""
        self._next_sweep = now + REFUSALS_EVERY
        due = [(k, p) for k, p in self._refusals.items() if now - p.written_at >= REFUSALS_EVERY]
        for key, _pending in due:
            del self._refusals[key]
        for key, pending in due:
            if pending.count:
                await self._write_refusals(key[0], pending.username, pending.address, pending.count)

    async def _write_refusals(self, lock: str, username: str, address: str, count: int) -> None:
        name = printable_name(username)
        log.warning(
            "sign-in throttled (%s locked): '%s' from %s, %d refused",
            lock,
            name[:_LOGGED_NAME],
            address,
            count,
        )
        details = {"address": address, "reason": "throttled", "lock": lock, "refused": count}
        await self.record_event(AuditAction.LOGIN_FAILED, "auth", name, None, details)

    async def close(self) -> None:
        """At shutdown: write the refused attempts not written yet."""
        self._next_sweep = 0.0
        await self._sweep_refusals(float("inf"))
        if self.shared is not None:
            await self.shared.close()

    async def sign_out(self, token: str) -> None:
        """Revoke ``token`` and stop trusting it in this process, and, with a broker, in
        every other at once."""
        async with self.database.get().connection() as conn:
            await self.identity.revoke_token_text(conn, token)
        self.forget(token)
        if self.shared is not None:
            # Redis down: the others stop trusting it within token_cache_seconds
            with contextlib.suppress(SharedUnavailable):
                await self.shared.mark_revoked(token_digest(token))

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
            if self.shared is None or not await self._revoked_elsewhere(digest):
                return trusted[0]
            self._trusted.pop(digest, None)
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

    async def _revoked_elsewhere(self, digest: str) -> bool:
        """Whether another process marked the token revoked (Redis down: not known)."""
        assert self.shared is not None
        try:
            return await self.shared.is_revoked(digest)
        except SharedUnavailable:
            return False

    def forget(self, token: str | None = None) -> None:
        """Stop trusting one token (or all): after a revocation through this process."""
        if token is None:
            self._trusted.clear()
        else:
            self._trusted.pop(token_digest(token), None)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a sign-in attempt is refused: which lock (``user`` or ``address``), and for how
    many more seconds."""

    lock: str
    wait: float


@dataclass(slots=True)
class _Refusals:
    """Throttled attempts of one lock since its last audit row."""

    written_at: float
    count: int = 0
    username: str = ""
    address: str = ""


class LoginThrottle:
    """Sign-in attempts in a sliding window, per user name and per client address.

    An attempt counts from the moment it starts (before its password is checked), so that
    attempts in parallel cannot pass the limit; a successful one is taken back, and clears
    its user name's count. Kept in the server process: without a broker, several worker
    processes each count on their own, so the effective limit is multiplied by their number
    (docs/security.md); with one, ``runtime.shared_auth`` counts for all of them and this
    one only stands in while Redis is down.
    """

    def __init__(self, attempts: int, window_seconds: float) -> None:
        self.window = window_seconds
        self._limits = {"user": attempts, "address": attempts * 4}
        self._failures: dict[tuple[str, str], collections.deque[float]] = {}

    def attempt(self, username: str, address: str, now: float) -> Refusal | None:
        """Count an attempt that may go ahead (None), or the refusal of one that may not."""
        keys = (("user", username), ("address", address))
        waits = {}
        for key in keys:
            failures = self._recent(key, now)
            if failures is not None and len(failures) >= self._limits[key[0]]:
                waits[key[0]] = failures[0] + self.window - now
        if waits:
            return Refusal(next(iter(waits)), max(waits.values()))
        for key in keys:
            self._failures.setdefault(key, collections.deque()).append(now)
        if len(self._failures) > _CACHE_LIMIT:
            for stale in [k for k in self._failures if self._recent(k, now) is None]:
                del self._failures[stale]
        return None

    def succeeded(self, username: str, address: str, started: float) -> None:
        """The attempt counted at ``started`` was right: the user name starts afresh, and
        the address does not count it."""
        self._failures.pop(("user", username), None)
        failures = self._failures.get(("address", address))
        if failures is not None:
            with contextlib.suppress(ValueError):
                failures.remove(started)
            if not failures:
                del self._failures[("address", address)]

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
