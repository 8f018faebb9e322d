"""What the REST API and the web UI share to act for a signed-in user.

- :class:`DatabaseHolder`: the database and the outbox dispatcher, filled in once the
  app has started. Writes go through :meth:`DatabaseHolder.write`, which commits and then
  hands the outbox events the write queued to the dispatcher, so no handler has to
  remember to (and a rolled-back write hands nothing).
- :func:`actor_of`, :func:`guard_for` and :func:`write_context`: from the signed-in user to
  the engine's :class:`~engine.expressions.Actor` (with every role they hold, inherited ones
  included), the store as they may use it, and the context their writes carry.

A request handler reads the user (``current_user(request)`` for the API, the session's
for a screen), then::

    actor = actor_of(user, model)
    guard = guard_for(store, actor, model)
    ctx = write_context(actor)
    async with holder.write(ctx) as conn:
        record = await guard.update(conn, record_id, body, ctx)
    # committed; its e-mails and webhooks are on their way
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from engine import WriteContext
from engine.expressions import Actor
from engine.guard import Caller, GuardedStore
from runtime.api.problems import ApiProblem

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from engine import Database, EngineModel, EntityStore
    from engine.database import Connection
    from engine.identity import User
    from runtime.delivery.dispatch import Dispatcher

__all__ = ["DatabaseHolder", "actor_of", "guard_for", "write_context"]


class DatabaseHolder:
    """Filled in by the app's lifespan once the connection pool is open: the database, and
    the dispatcher that delivers the outbox events writes commit."""

    database: Database | None = None
    dispatcher: Dispatcher | None = None

    def get(self) -> Database:
        if self.database is None:
            raise ApiProblem(503, "the database is not connected yet", "unavailable")
        return self.database

    @contextlib.asynccontextmanager
    async def write(
        self, ctx: WriteContext, *, transaction: bool = True
    ) -> AsyncIterator[Connection]:
        """A connection for writes made with ``ctx``: in a transaction (or, with
        ``transaction=False``, autocommitted, for a write of one statement). Once it has
        committed, the outbox events the writes queued go to the dispatcher; if the block
        raises, it rolls back and nothing is handed off."""
        database = self.get()
        scope = database.transaction if transaction else database.connection
        async with scope() as conn:
            yield conn
        self.hand_off(ctx.events)

    def hand_off(self, events: Sequence[int]) -> None:
        """Give the dispatcher outbox events that are committed (never blocks, never fails)."""
        if events and self.dispatcher is not None:
            self.dispatcher.notify(events)


def actor_of(user: User, model: EngineModel) -> Actor:
    """The signed-in user as rules and the guard see them, with every role they hold
    (inherited ones included)."""
    return Actor(str(user.id), user.username, model.project.role_closure(user.roles))


def guard_for(store: EntityStore, actor: Actor, model: EngineModel) -> GuardedStore:
    """``store`` as ``actor`` may use it."""
    return GuardedStore(store, Caller(actor, actor.roles, model.access))


def write_context(actor: Actor) -> WriteContext:
    """The context of a write ``actor`` makes, limited by their roles."""
    return WriteContext(user=actor, roles=actor.roles)
