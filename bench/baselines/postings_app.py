"""Baseline of the postings benchmark (bench/postings_submit.py): a delivery's submit written
by hand — a raw ASGI callable, an asyncpg pool, orjson — over the tables Tessera migrated.

``POST /baseline/delivery/{id}/_submit`` with ``If-Match: "<version>"`` does, in one
transaction, what the engine's submit writes: the status (version checked), the sales
order whose lines it adjusts locked and its version moved on (as the engine touches a
document before its lines are written on their own), the bins moved
by guarded ``UPDATE``s sorted by key (``actual_qty + $d >= 0``: the row lock and the limit in
one statement), the order lines the same way, sorted by id (``delivered_qty + $d <=
quantity``), the 5 ledger rows, the voucher's 15 journal rows and the 11 audit rows the
engine writes (the submit, each order line's update, each ledger row's create), each set in
one statement. It answers the document with its lines, as the API does. The token is
compared with the one the benchmark made (no lookup): the limit, not a handicap.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from decimal import Decimal
from typing import Any

import asyncpg
import orjson

DSN = os.environ.get("POSTBENCH_DSN", "postgresql://postgres@127.0.0.1:5432/tessera_bench")
TOKEN = os.environ.get("POSTBENCH_TOKEN", "")
POOL = int(os.environ.get("POSTBENCH_POOL", "10"))
P = "postbench"
VOUCHER = f"{P}.delivery"
LEDGER = f"{P}.stock_ledger_entry"
BIN = f"{P}.bin"
ORDER_LINE = f"{P}.sales_order_line"

SUBMIT = (
    f"UPDATE {P}_delivery SET docstatus = 'submitted', updated_at = $3, updated_by = $4, "
    "version = version + 1 WHERE id = $1 AND version = $2 AND docstatus = 'draft' "
    "RETURNING id, posting_date, sales_order, docstatus, amended_from, created_at, "
    "updated_at, created_by, updated_by, version"
)
LINES = (
    "SELECT id, item, warehouse, quantity, sales_order_line, created_at, updated_at, "
    f"created_by, updated_by, version FROM {P}_delivery_line WHERE _parent = $1 "
    "ORDER BY _position"
)
TOUCH_ORDER = (  # its lines are adjusted below: the document first, locked, version moved on
    f"UPDATE {P}_sales_order SET version = version + 1 WHERE id = $1"
)
MOVE_BIN = (
    f"UPDATE {P}_bin SET actual_qty = actual_qty + $3, updated_at = $4, updated_by = $5, "
    "version = version + 1 WHERE item = $1 AND warehouse = $2 AND actual_qty + $3 >= 0 "
    "RETURNING id, actual_qty"
)
DELIVER = (
    f"UPDATE {P}_sales_order_line SET delivered_qty = delivered_qty + $2, updated_at = $3, "
    "updated_by = $4, version = version + 1 WHERE id = $1 AND delivered_qty + $2 <= quantity "
    "RETURNING delivered_qty"
)
LEDGER_ROWS = (
    f"INSERT INTO {P}_stock_ledger_entry (item, warehouse, posting_date, qty_change, "
    "qty_after, voucher_type, voucher_id, is_reversal, created_at, updated_at, created_by, "
    "updated_by, version) SELECT i, w, $3, q, a, $4, $5, false, $6, $6, $7, $7, 1 "
    "FROM unnest($1::bigint[], $2::bigint[], $8::numeric[], $9::numeric[]) "
    "WITH ORDINALITY AS t(i, w, q, a, n) ORDER BY n RETURNING id"
)
AUDIT_ROWS = (
    "INSERT INTO tessera_audit (at, user_id, entity, record_id, action, changes) "
    "SELECT $1, $2, e, r, a, c FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) "
    "AS t(e, r, a, c)"
)
JOURNAL_ROWS = (
    "INSERT INTO tessera_posting (voucher_type, voucher_id, seq, kind, target, target_id, "
    "deltas, at, ledger_seq, after) SELECT $1, $2, s, k, t, i, d, a, l, f FROM "
    "unnest($3::int[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], "
    "$9::int[], $10::text[]) AS x(s, k, t, i, d, a, l, f)"
)
pool: Any = None
user_id = "1"


class Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError


def _record(row: Any) -> dict[str, Any]:
    record = dict(row)
    for name in ("id", "item", "warehouse", "sales_order", "sales_order_line", "amended_from"):
        if record.get(name) is not None:
            record[name] = str(record[name])
    return record


async def _send(send: Any, status: int, payload: Any) -> None:
    body = orjson.dumps(payload, default=_default)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _no_reset(conn: Any) -> None:
    return None


async def _lifespan(receive: Any, send: Any) -> None:
    global pool, user_id
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            pool = await asyncpg.create_pool(DSN, min_size=POOL, max_size=POOL, reset=_no_reset)
            found = await pool.fetchval("SELECT id FROM tessera_user WHERE username = 'bench'")
            user_id = str(found)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await pool.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _submit(record_id: int, version: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    async with pool.acquire() as conn, conn.transaction():
        doc = await conn.fetchrow(SUBMIT, record_id, version, now, user_id)
        if doc is None:
            raise Refused(409, "conflict", "not a draft of that version")
        lines = await conn.fetch(LINES, record_id)
        if doc["sales_order"] is not None and any(x["sales_order_line"] for x in lines):
            await conn.execute(TOUCH_ORDER, doc["sales_order"])
        moved: dict[int, tuple[int, Decimal]] = {}  # line index: (bin id, qty_after)
        for n in sorted(range(len(lines)), key=lambda n: (lines[n]["item"], lines[n]["warehouse"])):
            line = lines[n]
            row = await conn.fetchrow(
                MOVE_BIN, line["item"], line["warehouse"], -line["quantity"], now, user_id
            )
            if row is None:
                raise Refused(409, "insufficient_stock", f"lines[{n}].quantity: not enough stock")
            moved[n] = (row["id"], row["actual_qty"])
        audit_entities, audit_ids, audit_actions, audit_changes = (
            [VOUCHER],
            [str(record_id)],
            ["submit"],
            ['{"docstatus":["draft","submitted"]}'],
        )
        order_lines = [n for n in range(len(lines)) if lines[n]["sales_order_line"] is not None]
        for n in sorted(order_lines, key=lambda n: lines[n]["sales_order_line"]):
            line = lines[n]
            after = await conn.fetchval(
                DELIVER, line["sales_order_line"], line["quantity"], now, user_id
            )
            if after is None:
                raise Refused(422, "over_delivery", f"lines[{n}].quantity: over delivery")
            audit_entities.append(ORDER_LINE)
            audit_ids.append(str(line["sales_order_line"]))
            audit_actions.append("update")
            audit_changes.append(
                orjson.dumps(
                    {"delivered_qty": [str(after - line["quantity"]), str(after)]}
                ).decode()
            )
        ledger_ids = await conn.fetch(
            LEDGER_ROWS,
            [line["item"] for line in lines],
            [line["warehouse"] for line in lines],
            doc["posting_date"],
            VOUCHER,
            record_id,
            now,
            user_id,
            [-line["quantity"] for line in lines],
            [moved[n][1] for n in range(len(lines))],
        )
        seq: list[int] = []
        kinds: list[str] = []
        targets: list[str] = []
        target_ids: list[int] = []
        deltas: list[str] = []
        ats: list[str] = []
        ledger_seqs: list[int | None] = []
        afters: list[str | None] = []
        for n, (line, ledger) in enumerate(zip(lines, ledger_ids, strict=True)):
            audit_entities.append(LEDGER)
            audit_ids.append(str(ledger["id"]))
            audit_actions.append("create")
            audit_changes.append(
                orjson.dumps(
                    {
                        "item": [None, line["item"]],
                        "warehouse": [None, line["warehouse"]],
                        "posting_date": [None, doc["posting_date"]],
                        "qty_change": [None, str(-line["quantity"])],
                        "is_reversal": [None, False],
                        "voucher_type": [None, VOUCHER],
                        "voucher_id": [None, record_id],
                        "qty_after": [None, str(moved[n][1])],
                    },
                    default=_default,
                ).decode()
            )
            seq.append(n)
            kinds.append("ledger")
            targets.append(LEDGER)
            target_ids.append(ledger["id"])
            deltas.append("{}")
            ats.append("")
            ledger_seqs.append(None)
            afters.append(None)
        at = "lines[{}].quantity"
        for n, line in enumerate(lines):
            seq.append(len(seq))
            kinds.append("balance")
            targets.append(BIN)
            target_ids.append(moved[n][0])
            deltas.append(f'{{"actual_qty": "{-line["quantity"]}"}}')
            ats.append(at.format(n))
            ledger_seqs.append(n)
            afters.append('{"qty_after": "actual_qty"}')
        for n in order_lines:
            line = lines[n]
            seq.append(len(seq))
            kinds.append("record")
            targets.append(ORDER_LINE)
            target_ids.append(line["sales_order_line"])
            deltas.append(f'{{"delivered_qty": "{line["quantity"]}"}}')
            ats.append(at.format(n))
            ledger_seqs.append(None)
            afters.append(None)
        await conn.execute(
            JOURNAL_ROWS,
            VOUCHER,
            record_id,
            seq,
            kinds,
            targets,
            target_ids,
            deltas,
            ats,
            ledger_seqs,
            afters,
        )
        await conn.execute(
            AUDIT_ROWS,
            time.time(),
            user_id,
            audit_entities,
            audit_ids,
            audit_actions,
            audit_changes,
        )
    record = _record(doc)
    record["lines"] = [_record(line) for line in lines]
    return record


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    if headers.get(b"authorization", b"") != f"Bearer {TOKEN}".encode():
        await _send(send, 401, {"title": "Unauthorized"})
        return
    parts = scope["path"].strip("/").split("/")
    if scope["method"] != "POST" or len(parts) != 4 or parts[:2] != ["baseline", "delivery"]:
        await _send(send, 404, {"title": "Not Found"})
        return
    try:
        record_id = int(parts[2])
        version = int(headers.get(b"if-match", b'"1"').strip(b'"'))
    except ValueError:
        await _send(send, 400, {"title": "Bad Request"})
        return
    try:
        record = await _submit(record_id, version)
    except Refused as refused:
        await _send(send, refused.status, {"code": refused.code, "detail": refused.detail})
        return
    await _send(send, 200, {"data": record})
