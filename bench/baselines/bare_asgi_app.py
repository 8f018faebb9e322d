"""Baseline: the Python limit — a raw ASGI callable, an asyncpg pool and orjson.

Hand-written SQL, routing by string splitting, minimal input checks. Same URLs, JSON shape
and pool size as the generated API.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

DSN = os.environ.get("BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/tessera_bench")
COLUMNS = (
    "id, first_name, last_name, email, phone, status, amount, account, created_at, "
    "updated_at, created_by, updated_by, version"
)
GET = f"SELECT {COLUMNS} FROM benchcrm_contact WHERE id = $1"
LIST = (
    f"SELECT {COLUMNS} FROM benchcrm_contact WHERE status = $1 "
    "ORDER BY last_name, id LIMIT $2 OFFSET $3"
)
INSERT = (
    "INSERT INTO benchcrm_contact (first_name, last_name, email, phone, status, amount, "
    "account, created_at, updated_at, version) "
    f"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 1) RETURNING {COLUMNS}"
)
PREFIX = "/api/v1/benchcrm/contact"
JSON_HEADERS = [(b"content-type", b"application/json")]
pool: Any = None


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError


def _record(row: Any) -> dict[str, Any]:
    record = dict(row)
    record["id"] = str(record["id"])
    if record["account"] is not None:
        record["account"] = str(record["account"])
    return record


async def _send(send: Any, status: int, payload: Any) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": orjson.dumps(payload, default=_default)})


async def _no_reset(conn: Any) -> None:
    return None


async def _lifespan(receive: Any, send: Any) -> None:
    global pool
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # No reset query on release, like the generated API: the limit, not a handicap.
            pool = await asyncpg.create_pool(DSN, min_size=10, max_size=10, reset=_no_reset)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path, method = scope["path"], scope["method"]
    if path.startswith(PREFIX + "/") and method == "GET":
        async with pool.acquire() as conn:
            row = await conn.fetchrow(GET, int(path[len(PREFIX) + 1 :]))
        if row is None:
            await _send(send, 404, {"detail": "not found"})
        else:
            await _send(send, 200, {"data": _record(row)})
    elif path == PREFIX and method == "GET":
        query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if p)
        limit, offset = int(query.get("limit", 50)), int(query.get("offset", 0))
        async with pool.acquire() as conn:
            rows = await conn.fetch(LIST, query["status"], limit, offset)
        await _send(
            send,
            200,
            {"data": [_record(r) for r in rows], "meta": {"limit": limit, "offset": offset}},
        )
    elif path == PREFIX and method == "POST":
        body = orjson.loads(await _body(receive))
        amount = body.get("amount")
        account = body.get("account")
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                INSERT,
                body["first_name"],
                body["last_name"],
                body.get("email"),
                body.get("phone"),
                body.get("status", "lead"),
                Decimal(amount) if amount is not None else None,
                int(account) if account is not None else None,
                dt.datetime.now(dt.UTC),
            )
        await _send(send, 201, {"data": _record(row)})
    else:
        await _send(send, 404, {"detail": "not found"})
