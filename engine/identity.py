"""Users and API tokens (the system tables ``tessera_user`` and ``tessera_token``).

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106); a user may have no
password at all, for API clients that only ever use tokens. Checking a password takes a
tenth of a second of CPU and 64 MiB, so it runs in a small pool of threads of its own, off
the event loop and a few at a time. A token is 32 random bytes
shown once when issued; the database keeps only its SHA-256 digest, so a leaked table
gives no usable token, and a high-entropy secret needs no slow hash. Times are Unix
seconds, as in the outbox.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, insert, select, update

from engine.database import IntegrityViolation
from engine.errors import EngineError
from engine.sql import CompiledSql, compile_sql, id_list_condition, id_list_param
from engine.tables import token_table, user_table
from metadata import ADMIN_ROLE, canonical_locale, locale_problem, timezone_problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Dialect

    from engine.database import Connection

TOKEN_PREFIX = "tsr_"  # noqa: S105 - the visible prefix of every token
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,149}")
"""What a user name may be (matched in full): so a name with anything else (a NUL byte, a
lone surrogate, a line break) cannot belong to a user and is never looked up."""
ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


class IdentityError(EngineError):
    """A user or token request that cannot be carried out (unknown user, name taken)."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    roles: frozenset[str]
    locale: str | None = None
    """How the user reads numbers, money and dates (``de_DE``); None: the instance's."""
    timezone: str | None = None
    """The user's time zone (``Europe/Berlin``); None: the instance's."""

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


@dataclass(frozen=True, slots=True)
class SignInCandidate:
    """What a sign-in checks a password against: the active user of that name with a
    password, and its Argon2 hash; both None for any other name (a dummy hash is used)."""

    user: User | None
    password_hash: str | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: ``token`` is its text, which is not stored and cannot be shown again."""

    id: int
    token: str
    user: User
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    username: str
    name: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user is unknown, so that a login takes as long whether or
    not the name exists."""
    return _hasher().hash(secrets.token_hex(16))


@functools.cache
def _hash_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that check passwords: as many as there are CPUs (at least two), so a
    burst of sign-ins neither blocks the event loop nor takes 64 MiB per attempt at once."""
    workers = max(2, os.cpu_count() or 2)
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="argon2")


def printable_name(text: str) -> str:
    """``text`` with every character that is not printable (NUL, controls, lone surrogates,
    line breaks) written as a Python escape, so that any name tried can be logged and
    stored: ``'ad\\x00min'``, ``'\\ud800'`` (and a backslash doubled in such a name)."""
    if text.isprintable():
        return text
    return "".join(_printable(c) for c in text)


def _printable(char: str) -> str:
    if char == "\\":
        return "\\\\"
    return char if char.isprintable() else ascii(char)[1:-1]


def check_password(candidate: SignInCandidate, password: str) -> User | None:
    """The candidate's user if ``password`` is theirs. Argon2 runs in every case (against
    a dummy hash for a name that is no user), so the answer takes as long either way. CPU
    bound: call ``Identity.verify`` from async code."""
    stored = candidate.password_hash or _dummy_hash()
    try:
        _hasher().verify(stored, password.encode("utf-8", "surrogatepass"))
    except (VerificationError, InvalidHashError):
        return None
    return candidate.user if candidate.password_hash else None


class Identity:
    """The SQL of the user and token tables for one dialect, compiled once."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    @functools.cached_property
    def _insert_user(self) -> CompiledSql:
        statement = insert(user_table).returning(user_table.c.id)
        return compile_sql(
            statement,
            self.dialect,
            ["username", "password_hash", "roles", "active", "created_at", "locale", "timezone"],
        )

    @functools.cached_property
    def _user_by_name(self) -> CompiledSql:
        c = user_table.c
        statement = select(
            c.id, c.username, c.roles, c.password_hash, c.active, c.locale, c.timezone
        ).where(c.username == bindparam("username"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _any_user(self) -> CompiledSql:
        return compile_sql(select(user_table.c.id).limit(1), self.dialect)

    @functools.cached_property
    def _set_password(self) -> CompiledSql:
        c = user_table.c
        statement = (
            update(user_table)
            .where(c.id == bindparam("user_id"))
            .values(password_hash=bindparam("password_hash"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _set_preferences(self) -> CompiledSql:
        c = user_table.c
        statement = (
            update(user_table)
            .where(c.id == bindparam("user_id"))
            .values(locale=bindparam("locale"), timezone=bindparam("timezone"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _insert_token(self) -> CompiledSql:
        statement = insert(token_table).returning(token_table.c.id)
        return compile_sql(
            statement,
            self.dialect,
            ["user_id", "name", "token_hash", "created_at", "expires_at"],
        )

    @functools.cached_property
    def _token_user(self) -> CompiledSql:
        t, u = token_table.c, user_table.c
        statement = (
            select(
                t.token_hash,
                t.expires_at,
                t.revoked_at,
                u.id,
                u.username,
                u.roles,
                u.active,
                u.locale,
                u.timezone,
            )
            .join_from(token_table, user_table, t.user_id == u.id)
            .where(t.token_hash == bindparam("token_hash"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _revoke(self) -> CompiledSql:
        t = token_table.c
        statement = (
            update(token_table)
            .where(t.id == bindparam("token_id"), t.revoked_at.is_(None))
            .values(revoked_at=bindparam("now"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _revoke_by_hash(self) -> CompiledSql:
        t = token_table.c
        statement = (
            update(token_table)
            .where(t.token_hash == bindparam("token_hash"), t.revoked_at.is_(None))
            .values(revoked_at=bindparam("now"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _tokens(self) -> CompiledSql:
        t, u = token_table.c, user_table.c
        statement = (
            select(t.id, u.username, t.name, t.created_at, t.expires_at, t.revoked_at)
            .join_from(token_table, user_table, t.user_id == u.id)
            .order_by(t.id)
        )
        return compile_sql(statement, self.dialect)

    async def create_user(
        self,
        conn: Connection,
        username: str,
        password: str | None,
        roles: Iterable[str],
        *,
        locale: str | None = None,
        timezone: str | None = None,
    ) -> User:
        if not USERNAME.fullmatch(username):
            raise IdentityError(
                f"'{printable_name(username)}' is not a valid user name: letters, digits and "
                "_ . @ + -, starting with a letter or digit, at most 150 characters"
            )
        role_set = frozenset(roles)
        bad = sorted(r for r in role_set if not ROLE_NAME.match(r))
        if bad:
            raise IdentityError(f"not a valid role name: {', '.join(bad)}")
        if password is not None:
            check_password_text(password)
        locale, timezone = checked_preferences(locale, timezone)
        params = {
            "username": username,
            "password_hash": _hasher().hash(password) if password is not None else None,
            "roles": orjson.dumps(sorted(role_set)).decode(),
            "active": 1,
            "created_at": time.time(),
            "locale": locale,
            "timezone": timezone,
        }
        try:
            row = await conn.fetchrow(self._insert_user.sql, self._insert_user.args(params))
        except IntegrityViolation:
            raise IdentityError(f"a user named '{username}' already exists") from None
        assert row is not None
        return User(int(row[0]), username, role_set, locale, timezone)

    async def has_users(self, conn: Connection) -> bool:
        """Whether any user exists, active or not: the first administrator is made only in
        an instance that has never had one."""
        return await conn.fetchrow(self._any_user.sql, self._any_user.args({})) is not None

    async def set_password(self, conn: Connection, username: str, password: str) -> None:
        """Give the active user ``username`` a new password (a lost one cannot be read back)."""
        check_password_text(password)
        user = await self.user_named(conn, username)
        if user is None:
            raise IdentityError(f"no active user named '{printable_name(username)}'")
        sql = self._set_password
        await conn.execute(
            sql.sql, sql.args({"user_id": user.id, "password_hash": _hasher().hash(password)})
        )

    async def set_preferences(
        self, conn: Connection, username: str, *, locale: str | None, timezone: str | None
    ) -> User:
        """Give the active user ``username`` their own locale and time zone (None: the
        instance's); the user as it now is."""
        locale, timezone = checked_preferences(locale, timezone)
        user = await self.user_named(conn, username)
        if user is None:
            raise IdentityError(f"no active user named '{printable_name(username)}'")
        sql = self._set_preferences
        params = {"user_id": user.id, "locale": locale, "timezone": timezone}
        await conn.execute(sql.sql, sql.args(params))
        return User(user.id, user.username, user.roles, locale, timezone)

    async def user_named(self, conn: Connection, username: str) -> User | None:
        if not USERNAME.fullmatch(username):
            return None
        row = await conn.fetchrow(self._user_by_name.sql, [username])
        if row is None or not row[4]:
            return None
        return User(int(row[0]), str(row[1]), _roles(row[2]), row[5], row[6])

    async def sign_in_candidate(self, conn: Connection, username: str) -> SignInCandidate:
        """Whom a sign-in as ``username`` would be, for ``verify``. A name that cannot be a
        user's (see ``USERNAME``) is not looked up."""
        if not USERNAME.fullmatch(username):
            return SignInCandidate(None, None)
        row = await conn.fetchrow(self._user_by_name.sql, [username])
        if row is None or not row[3] or not row[4]:
            return SignInCandidate(None, None)
        user = User(int(row[0]), str(row[1]), _roles(row[2]), row[5], row[6])
        return SignInCandidate(user, str(row[3]))

    async def verify(self, candidate: SignInCandidate, password: str) -> User | None:
        """``check_password`` in the password threads, leaving the event loop free."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_hash_pool(), check_password, candidate, password)

    async def issue_token(
        self,
        conn: Connection,
        user: User,
        name: str,
        *,
        lifetime_seconds: float | None,
    ) -> IssuedToken:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        expires_at = now + lifetime_seconds if lifetime_seconds is not None else None
        params = {
            "user_id": user.id,
            "name": name[:200],
            "token_hash": token_digest(token),
            "created_at": now,
            "expires_at": expires_at,
        }
        row = await conn.fetchrow(self._insert_token.sql, self._insert_token.args(params))
        assert row is not None
        return IssuedToken(int(row[0]), token, user, expires_at)

    async def user_for_token(
        self, conn: Connection, token: str, now: float
    ) -> tuple[User, float | None] | None:
        """The active user a valid token belongs to, and when the token expires."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = token_digest(token)
        row = await conn.fetchrow(self._token_user.sql, [digest])
        if row is None or not hmac.compare_digest(str(row[0]), digest):
            return None
        expires_at = float(row[1]) if row[1] is not None else None
        if row[2] is not None or (expires_at is not None and expires_at <= now) or not row[6]:
            return None
        return User(int(row[3]), str(row[4]), _roles(row[5]), row[7], row[8]), expires_at

    async def usernames(self, conn: Connection, ids: Iterable[int]) -> dict[str, str]:
        """User names by id (as text, the form ``created_by`` and the audit trail use)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        sql = self._usernames
        rows = await conn.fetch(sql.sql, [id_list_param(wanted, self.dialect.name)])
        return {str(row[0]): str(row[1]) for row in rows}

    @functools.cached_property
    def _usernames(self) -> CompiledSql:
        c = user_table.c
        condition = id_list_condition(c.id, self.dialect.name, "ids")
        return compile_sql(select(c.id, c.username).where(condition), self.dialect)

    async def revoke_token(self, conn: Connection, token_id: int) -> bool:
        """Whether a token that was still live got revoked."""
        sql = self._revoke
        return await conn.execute(sql.sql, sql.args({"token_id": token_id, "now": time.time()})) > 0

    async def token_digest_of(self, conn: Connection, token_id: int) -> str | None:
        """The digest a token is known by (``token_digest`` of its text), from its id."""
        sql = self._digest_of
        row = await conn.fetchrow(sql.sql, sql.args({"token_id": token_id}))
        return str(row[0]) if row is not None else None

    @functools.cached_property
    def _digest_of(self) -> CompiledSql:
        t = token_table.c
        return compile_sql(select(t.token_hash).where(t.id == bindparam("token_id")), self.dialect)

    async def revoke_token_text(self, conn: Connection, token: str) -> bool:
        sql = self._revoke_by_hash
        params = {"token_hash": token_digest(token), "now": time.time()}
        return await conn.execute(sql.sql, sql.args(params)) > 0

    async def tokens(self, conn: Connection) -> list[TokenInfo]:
        rows = await conn.fetch(self._tokens.sql, [])
        return [
            TokenInfo(
                int(r[0]),
                str(r[1]),
                str(r[2]),
                float(r[3]),
                float(r[4]) if r[4] is not None else None,
                float(r[5]) if r[5] is not None else None,
            )
            for r in rows
        ]


def checked_preferences(locale: str | None, timezone: str | None) -> tuple[str | None, str | None]:
    """A user's locale in its one spelling (``de-de`` is ``de_DE``) and time zone, or an
    ``IdentityError`` saying what is wrong; empty text is None (the instance's)."""
    if locale:
        canonical = canonical_locale(locale)
        if canonical is None:
            raise IdentityError(str(locale_problem(locale)))
        locale = canonical
    if timezone:
        problem = (
            timezone_problem(timezone)
            if len(timezone) <= 64
            else "that is not a time zone (an IANA name: Europe/Berlin, UTC): it is too long"
        )
        if problem is not None:
            raise IdentityError(printable_name(problem))
    return locale or None, timezone or None


def check_password_text(password: str) -> None:
    """Refuse a password too short to be one, or that is not text."""
    if len(password) < 8:
        raise IdentityError("a password has at least 8 characters")
    if not _encodable(password):
        raise IdentityError("a password must be text (it has a lone surrogate)")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _roles(text: Any) -> frozenset[str]:
    return frozenset(orjson.loads(text)) if text else frozenset()
