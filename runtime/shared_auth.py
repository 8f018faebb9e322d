"""The sign-in throttle and token revocations shared by every server process, in Redis,
when the instance has a broker (``broker_url``): several ``tessera serve`` processes (or
workers of one) then behave as one. Failed sign-ins counted by one throttle the others; a
token revoked through one (or ``tessera token revoke``) is refused by all at their next
request, not after their ``token_cache_seconds``.

Redis down is no outage of sign-in: every call here raises ``SharedUnavailable``, the
caller falls back to what the process knows on its own (its own throttle counts, its own
cache of tokens), and it is logged once per outage. Redis is asked again after
``RETRY_SECONDS``, not at every request (a dead Redis would otherwise cost a connection
timeout each time).

Keys start with ``tessera:<hash of the database URL>:`` so that instances sharing one Redis
do not count each other's sign-ins. User names and addresses are hashed into the keys:
any text (NUL, unpaired surrogates) is a valid name to count.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import secrets
import time
from typing import TYPE_CHECKING, Any

from redis import asyncio as redis_asyncio
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from runtime.settings import Settings

log = logging.getLogger("tessera.security")

RETRY_SECONDS = 5.0
TIMEOUT_SECONDS = 0.5

_ATTEMPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local lock = 0
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= limits[i] then
    local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local left = tonumber(first[2]) + window - now
    if lock == 0 then lock = i end
    if left > wait then wait = left end
  end
end
if lock > 0 then return {lock, tostring(wait)} end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[i], math.ceil(window * 1000))
end
return {0, '0'}
"""
"""Both locks of one attempt judged and counted at once: attempts in parallel on several
processes cannot pass the limit between a count and a check."""


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def shared_auth_for(settings: Settings) -> SharedAuth | None:
    """The shared state of the instance's server processes: in its broker, when that is a
    Redis (another broker, such as RabbitMQ, leaves them per process, as without one)."""
    url = settings.broker_url
    if not url:
        return None
    if not url.startswith(REDIS_SCHEMES):
        log.info("the broker is not Redis: sign-in throttle and revocations stay per process")
        return None
    return SharedAuth(
        url,
        settings.database_url,
        attempts=settings.auth.login_attempts,
        window_seconds=settings.auth.login_window_seconds,
        cache_seconds=settings.auth.token_cache_seconds,
    )


class SharedUnavailable(Exception):
    """Redis cannot be reached (or is being left alone for a while after failing)."""


def _hashed(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SharedAuth:
    def __init__(
        self,
        broker_url: str,
        database_url: str,
        *,
        attempts: int,
        window_seconds: float,
        cache_seconds: float,
    ) -> None:
        self._client: Any = redis_asyncio.Redis.from_url(
            broker_url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            retry_on_timeout=False,
        )
        self._prefix = f"tessera:{_hashed(database_url)[:12]}:"
        self._limits = (attempts, attempts * 4)
        self._window = window_seconds
        self._mark_ms = math.ceil((cache_seconds + 1) * 1000)
        self._attempt = self._client.register_script(_ATTEMPT)
        self._down_until = 0.0
        self._down = False

    async def _call(self, action: Any) -> Any:
        if self._down and time.monotonic() < self._down_until:
            raise SharedUnavailable
        try:
            result = await action()
        except (RedisError, OSError) as exc:
            if not self._down:
                log.warning(
                    "Redis is unreachable (%s): sign-in throttle and token revocations are "
                    "per process until it is back",
                    exc,
                )
            self._down = True
            self._down_until = time.monotonic() + RETRY_SECONDS
            raise SharedUnavailable from None
        if self._down:
            log.warning("Redis is back: sign-in throttle and token revocations are shared again")
            self._down = False
        return result

    def _keys(self, username: str, address: str) -> list[str]:
        return [
            f"{self._prefix}signin:user:{_hashed(username)}",
            f"{self._prefix}signin:address:{_hashed(address)}",
        ]

    async def attempt(
        self, username: str, address: str, now: float
    ) -> tuple[tuple[str, float] | None, str]:
        """Count an attempt that may go ahead (None), or refuse one that may not: the lock
        (``user`` or ``address``) and the seconds left, as ``LoginThrottle.attempt``; with
        the attempt's ticket for ``succeeded``."""
        ticket = f"{now!r}:{secrets.token_hex(4)}"
        args: list[str | float] = [now, self._window, *self._limits, ticket]
        lock, wait = await self._call(
            lambda: self._attempt(keys=self._keys(username, address), args=args)
        )
        if int(lock) == 0:
            return None, ticket
        return ("user" if int(lock) == 1 else "address", float(wait)), ticket

    async def succeeded(self, username: str, address: str, ticket: str) -> None:
        """The attempt was right: its user name starts afresh, the address does not count
        it (as ``LoginThrottle.succeeded``)."""
        user_key, address_key = self._keys(username, address)

        async def both() -> None:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(user_key)
                pipe.zrem(address_key, ticket)
                await pipe.execute()

        await self._call(both)

    async def mark_revoked(self, digest: str) -> None:
        """Tell every process that the token of ``digest`` is revoked: a mark kept as long
        as any process may still trust it from its cache."""
        key = f"{self._prefix}revoked:{digest}"
        await self._call(lambda: self._client.set(key, b"1", px=self._mark_ms))

    async def is_revoked(self, digest: str) -> bool:
        key = f"{self._prefix}revoked:{digest}"
        return bool(await self._call(lambda: self._client.exists(key)))

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):  # closing a dead connection
            await self._client.aclose()
