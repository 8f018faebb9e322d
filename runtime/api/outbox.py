"""``/api/v1/_outbox``: the e-mails and webhooks rules have queued, their delivery state,
and a retry for the ones that ran out of attempts.

Until roles exist (issue 5) these calls are open like the rest of the API; they are meant
for administrators.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response  # noqa: TC002 - FastAPI reads the annotations

from engine.outbox import EventStatus, Outbox, OutboxEvent
from runtime.api.problems import ApiProblem, json_response

if TYPE_CHECKING:
    from runtime.plumbing import DatabaseHolder

MAX_LIMIT = 1000


def _time(seconds: float | None) -> str | None:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat() if seconds else None


def describe_event(event: OutboxEvent) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "event_key": event.event_key,
        "kind": event.kind,
        "status": event.status.value,
        "entity": event.entity,
        "record_id": event.record_id,
        "rule": event.rule,
        "attempts": event.attempts,
        "next_attempt_at": _time(event.next_attempt_at)
        if event.status is EventStatus.PENDING
        else None,
        "last_error": event.last_error,
        "created_at": _time(event.created_at),
        "delivered_at": _time(event.delivered_at),
        "payload": event.payload,
    }


def _int(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # not "²": int() fails
        raise ApiProblem(400, f"'{name}' must be a non-negative whole number, not '{text}'")
    return int(text)


def outbox_router(holder: DatabaseHolder) -> APIRouter:
    router = APIRouter(prefix="/api/v1/_outbox", tags=["Outbox"])

    def outbox() -> Outbox:
        return Outbox(holder.get().sa_dialect)

    async def list_events(request: Request) -> Response:
        """Events oldest first; ``status`` (pending, delivering, delivered, failed),
        ``limit`` (default 50) and ``after`` (the last id of the previous page)."""
        params = request.query_params
        status_text = params.get("status")
        status = None
        if status_text is not None:
            try:
                status = EventStatus(status_text)
            except ValueError:
                known = ", ".join(s.value for s in EventStatus)
                raise ApiProblem(400, f"unknown status '{status_text}'; one of: {known}") from None
        limit = min(_int(params.get("limit"), "limit", 50), MAX_LIMIT)
        after = _int(params.get("after"), "after", 0)
        async with holder.get().connection() as conn:
            box = outbox()
            events = await box.listing(conn, status=status, limit=limit, after=after)
            counts = await box.counts(conn)
        return json_response(
            {
                "data": [describe_event(e) for e in events],
                "meta": {
                    "limit": limit,
                    "next_after": str(events[-1].id) if len(events) == limit else None,
                    "counts": {s.value: counts.get(s.value, 0) for s in EventStatus},
                },
            }
        )

    async def get_event(event_id: str) -> Response:
        async with holder.get().connection() as conn:
            event = await outbox().get(conn, _int(event_id, "id", 0))
        if event is None:
            raise ApiProblem(404, f"no outbox event with id {event_id}")
        return json_response({"data": describe_event(event)})

    async def retry_event(event_id: str) -> Response:
        """A failed event gets a fresh set of attempts and is handed to the deliverers."""
        number = _int(event_id, "id", 0)
        async with holder.get().connection() as conn:
            box = outbox()
            if not await box.retry(conn, number):
                event = await box.get(conn, number)
                if event is None:
                    raise ApiProblem(404, f"no outbox event with id {event_id}")
                raise ApiProblem(
                    409,
                    f"event {event_id} is {event.status.value}; only failed events are retried",
                    "conflict",
                )
            event = await box.get(conn, number)
        holder.hand_off([number])
        assert event is not None
        return json_response({"data": describe_event(event)}, 202)

    router.add_api_route("", list_events, methods=["GET"], summary="List outbox events")
    router.add_api_route("/{event_id}", get_event, methods=["GET"], summary="One outbox event")
    router.add_api_route(
        "/{event_id}/retry",
        retry_event,
        methods=["POST"],
        status_code=202,
        summary="Retry a failed event",
    )
    return router
