"""Applying ``async: true`` actions: the create or update a rule deferred until after its
write committed, stored as an outbox event with its values already resolved.

The deliverer applies one in a transaction that also marks the event delivered, so it
happens exactly once: a deliverer that dies before the commit leaves nothing applied and
the event claimable again; a repeat finds the event delivered and does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.effects import deferred_applier
from engine.writes import WriteContext

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.database import Connection
    from engine.model import EngineModel


async def apply_deferred(
    model: EngineModel, conn: Connection, record_id: str, payload: Mapping[str, Any]
) -> list[int]:
    """Run the action in ``payload`` (queued by ``engine.effects.deferred``) with what its
    kind registered (``engine.effects.applies_deferred``); the outbox events its own rules
    queued."""
    ctx = WriteContext()
    store = model.store_for(str(payload["entity"]))
    apply = deferred_applier(str(payload["action"]))
    await apply(conn, store, record_id, dict(payload["values"]), ctx)
    return ctx.events
