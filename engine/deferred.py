"""Applying ``async: true`` actions: the create or update a rule deferred until after its
write committed, stored as an outbox event with its values already resolved.

The deliverer applies one in a transaction that also marks the event delivered, so it
happens exactly once: a deliverer that dies before the commit leaves nothing applied and
the event claimable again; a repeat finds the event delivered and does nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.writes import WriteContext

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.database import Connection
    from engine.model import EngineModel


async def apply_deferred(
    model: EngineModel, conn: Connection, record_id: str, payload: Mapping[str, Any]
) -> list[int]:
    """Run the action in ``payload`` (written by ``engine.writes.triggers``); the outbox
    events its own rules queued."""
    ctx = WriteContext()
    store = model.store_for(str(payload["entity"]))
    values = dict(payload["values"])
    if payload["action"] == "create":
        await store.create(conn, values, ctx)
    else:
        await store.update(conn, int(record_id), values, ctx)
    return ctx.events
