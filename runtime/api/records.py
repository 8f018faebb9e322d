"""The generated REST API (SPEC §4): one set of handlers serves every entity.

Routing is by splitting the path and looking ``{pack}/{entity}`` up in the compiled model,
rather than one route per entity: start-up stays fast with hundreds of entities, and
``runtime.app.TesseraApp`` calls these handlers directly, without FastAPI's router,
dependency solving or middleware layers. Handlers take the raw request, call the compiled
store and write JSON bytes straight back.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response, StreamingResponse

from engine import (
    Conflict,
    EngineModel,
    FieldError,
    RecordNotFound,
    ValidationFailed,
    WriteContext,
)
from engine.errors import BadQuery, UnknownEntity
from engine.fieldtypes import InvalidValue, parse_id
from metadata import RESERVED_PACK_NAMES, RuleEvent
from runtime.api import printing
from runtime.api.bodies import read_json
from runtime.api.files import FileApi
from runtime.api.problems import ApiProblem, json_default, json_response
from runtime.auth import current_user
from runtime.dataio import PeopleCsv, csv_text, export_columns, export_records
from runtime.files_config import FileSettings
from runtime.formatting import Readers
from runtime.plumbing import actor_of, guard_for, write_context
from runtime.printing import PrintFormats
from runtime.titles import people_pages

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from starlette.requests import Request
    from starlette.types import Scope

    from engine import EntityStore
    from engine.expressions import Actor
    from engine.guard import GuardedStore
    from engine.writes import PreparedCreate
    from runtime.plumbing import DatabaseHolder

    Handler = Callable[[Request], Awaitable[Response]]

API_PREFIX = "/api/v1"
_PREFIX_SLASH = API_PREFIX + "/"
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_COLLECTION_METHODS = frozenset({"GET", "HEAD", "POST"})
_ITEM_METHODS = frozenset({"GET", "HEAD", "PATCH", "DELETE"})
_BULK_METHODS = frozenset({"POST"})
_READ_METHODS = frozenset({"GET", "HEAD"})
_DOCUMENT_ACTIONS = frozenset({"_submit", "_cancel", "_amend"})
EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_NOT_FOR_EXPORTS = frozenset({"limit", "offset", "cursor", "expand", "count"})
_UPSERT_METHODS = frozenset({"PUT"})
MAX_BULK = 1000
_JSON = "application/json"


def _method_not_allowed(allowed: frozenset[str]) -> Handler:
    async def refuse(request: Request) -> Response:
        listing = ", ".join(sorted(allowed))
        raise ApiProblem(
            405,
            f"{request.method} is not allowed here; use one of {listing}",
            "method-not-allowed",
            headers={"Allow": listing},
        )

    return refuse


MAX_HISTORY = 1000


def _whole(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 18:  # not "²": int() fails
        raise ApiProblem(400, f"'{name}' must be a non-negative whole number, not '{text}'")
    return int(text)


def _etag(record: dict[str, Any]) -> str:
    return f'"{record["version"]}"'


def _export_options(params: list[tuple[str, str]]) -> tuple[str, bool]:
    """An export's ``format`` (csv, jsonl) and whether it is ``for=people`` (a CSV as the
    caller reads it) rather than for machines (the API's values); bad ones refused."""
    formats = [value for key, value in params if key == "format"]
    fmt = formats[0] if formats else "csv"
    if len(formats) > 1 or fmt not in EXPORT_FORMATS:
        raise BadQuery(f"'format' must be one of {', '.join(EXPORT_FORMATS)}")
    audience = [value for key, value in params if key == "for"]
    if len(audience) > 1 or audience not in ([], ["people"], ["machines"]):
        raise BadQuery("'for' must be people or machines (the default), given once")
    if audience == ["people"] and fmt != "csv":
        raise BadQuery("'for=people' is a CSV export: leave out 'format' or use format=csv")
    for key, _ in params:
        if key in _NOT_FOR_EXPORTS:
            raise BadQuery(f"'{key}' does not apply to _export: it returns every page")
    return fmt, audience == ["people"]


def _record_id(text: str, store: EntityStore) -> int:
    try:
        return parse_id(text)
    except InvalidValue:
        raise RecordNotFound(f"no {store.entity.qualified_name} record with id {text}") from None


def _if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    text = header.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise ApiProblem(412, f"If-Match '{header}' is not a version this API issued", "stale")
    return int(text)


def _is_file_path(parts: list[str]) -> bool:
    """``{id}/_files/{field}``, ``{id}/_attachments``, ``{id}/_attachments/{file_id}`` or a
    line's file field, ``{id}/{lines}/{line_id}/_files/{field}``."""
    if len(parts) < 4 or not parts[2]:
        return False
    if len(parts) == 7:
        return bool(_NAME.fullmatch(parts[3]) and parts[4] and parts[5] == "_files" and parts[6])
    if parts[3] == "_files":
        return len(parts) == 5 and bool(parts[4])
    return parts[3] == "_attachments" and (len(parts) == 4 or (len(parts) == 5 and bool(parts[4])))


class RecordApi:
    """Handlers for ``/api/v1/{pack}/{entity}...``; holds the compiled model, no globals."""

    def __init__(
        self,
        model: EngineModel,
        database: DatabaseHolder,
        *,
        max_body: int,
        files: FileSettings | None = None,
        readers: Readers | None = None,
    ) -> None:
        self.model = model
        self.readers = readers or Readers()
        """How people read values (docs/locales.md): prints, and exports ``for=people``."""
        self.database = database
        self.max_body = max_body
        self.files = FileApi(model, database, files or FileSettings())
        self.print_formats = PrintFormats(model.project)
        self._collection_actions: dict[str, tuple[Handler, frozenset[str]]] = {
            "_aggregate": (self.aggregate, _READ_METHODS),
            "_export": (self.export, _READ_METHODS),
            "_bulk": (self.bulk, _BULK_METHODS),
        }
        self._item_reads: dict[str, Handler] = {
            "_transitions": self.transitions,
            "_history": self.history,
            "_print": self.print_record,
        }

    def match(self, scope: Scope) -> Handler | None:
        """The handler for a generated-API path, or None to let the app's router take it.

        Paths are split, not matched against a regex per route: ``/api/v1/{pack}/{entity}``,
        ``.../{id}``, ``.../_bulk`` and ``.../by/{field}/{value}``. Names that are not
        snake_case (``_meta``) and reserved pack names (``auth``) are never entity paths.
        """
        path: str = scope["path"]
        if not path.startswith(_PREFIX_SLASH):
            return None
        parts = path[len(_PREFIX_SLASH) :].split("/")
        count = len(parts)
        if count < 2 or not (_NAME.fullmatch(parts[0]) and _NAME.fullmatch(parts[1])):
            return None
        if parts[0] in RESERVED_PACK_NAMES:
            return None
        params = {"pack": parts[0], "entity": parts[1]}
        handler: Handler
        if count == 2:
            handler, allowed = self.collection, _COLLECTION_METHODS
        elif count == 3 and parts[2] in self._collection_actions:
            handler, allowed = self._collection_actions[parts[2]]
        elif count == 3 and parts[2]:
            handler, allowed = self.item, _ITEM_METHODS
            params["id"] = parts[2]
        elif count == 4 and parts[2] and parts[3] in self._item_reads:
            handler, allowed = self._item_reads[parts[3]], _READ_METHODS
            params["id"] = parts[2]
        elif count == 4 and parts[2] and parts[3] in _DOCUMENT_ACTIONS:
            handler, allowed = self.document_action, _BULK_METHODS
            params["id"], params["action"] = parts[2], parts[3]
        elif _is_file_path(parts):
            handler, allowed = self.files.route(parts, params)
        elif count == 5 and parts[2] == "by" and parts[3] and parts[4]:
            handler, allowed = self.upsert, _UPSERT_METHODS
            params["field"], params["value"] = parts[3], parts[4]
        else:
            return None
        scope["path_params"] = params
        allowed = self._narrowed(params, allowed)
        if scope["method"] not in allowed:
            return _method_not_allowed(allowed)
        return handler

    def _narrowed(self, params: dict[str, str], allowed: frozenset[str]) -> frozenset[str]:
        """``allowed`` without the writes when the entity is a ledger or a balance (only
        postings write them)."""
        if allowed <= _READ_METHODS:
            return allowed
        try:
            store = self.model.store(params["pack"], params["entity"])
        except UnknownEntity:
            return allowed
        return allowed & _READ_METHODS if store.entity.append_only else allowed

    def _store(self, request: Request) -> EntityStore:
        params = request.path_params
        return self.model.store(params["pack"], params["entity"])

    def _actor(self, request: Request) -> Actor:
        """The signed-in user, with every role they hold (inherited ones included)."""
        return actor_of(current_user(request), self.model)

    def _write_context(self, request: Request) -> WriteContext:
        return write_context(self._actor(request))

    def _guard(self, request: Request, store: EntityStore) -> GuardedStore:
        """The store as the signed-in caller may use it."""
        return guard_for(store, self._actor(request), self.model)

    def _location(self, store: EntityStore, record: dict[str, Any]) -> str:
        return f"{API_PREFIX}/{store.entity.pack}/{store.entity.name}/{record['id']}"

    async def collection(self, request: Request) -> Response:
        store = self._store(request)
        if request.method == "POST":
            return await self._create(request, store)
        guard = self._guard(request, store)
        query = store.parser.parse(request.query_params.multi_items())
        async with self.database.get().connection() as conn:
            result = await guard.list_page(conn, query)
        meta: dict[str, Any] = {"limit": query.limit}
        if query.cursor is None:
            meta["offset"] = query.offset
        meta["next_cursor"] = result.next_cursor
        if result.count is not None:
            meta["count"] = result.count
        return json_response({"data": result.records, "meta": meta})

    async def aggregate(self, request: Request) -> Response:
        store = self._store(request)
        guard = self._guard(request, store)
        query = store.aggregate_parser.parse(request.query_params.multi_items())
        async with self.database.get().connection() as conn:
            result = await guard.aggregate(conn, query)
        meta = {
            "group_by": [g.key for g in query.groups],
            "measures": ["count", *(m.key for m in query.measures)],
            "limit": query.scope.limit,
            "truncated": result.truncated,
        }
        return json_response({"data": result.rows, "meta": meta})

    async def export(self, request: Request) -> Response:
        """Every record the filters select that the caller may read, as CSV or JSON lines,
        streamed page by page; a bad parameter is refused before the first byte."""
        store = self._store(request)
        guard = self._guard(request, store)
        params = request.query_params.multi_items()
        fmt, for_people = _export_options(params)
        query = store.parser.parse([(k, v) for k, v in params if k not in {"format", "for"}])
        if query.fields is not None:
            guard.check_fields(query.fields)
        columns = list(query.fields) if query.fields else export_columns(store, guard.access.hidden)
        database = self.database.get()
        # for people, references by their record's title and users by name, as lists show them
        read = people_pages(guard, database, columns) if for_people else guard.list_page
        records = export_records(database, store, query=query, read=read)
        first = await anext(records, None)
        name = f"{store.entity.pack}-{store.entity.name}.{fmt}"
        people = PeopleCsv(
            store, tuple(columns), self.readers.of(request.scope.get("tessera.user"))
        )

        async def body() -> AsyncIterator[bytes]:
            if for_people:
                yield people.header().encode()
                if first is not None:
                    yield people.row(first).encode()
                    async for record in records:
                        yield people.row(record).encode()
                return
            if fmt == "csv":
                yield csv_text([{c: c for c in columns}], columns).encode()
            if first is None:
                return
            yield self._exported(first, columns, fmt)
            async for record in records:
                yield self._exported(record, columns, fmt)

        return StreamingResponse(
            body(),
            media_type=EXPORT_FORMATS[fmt],
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @staticmethod
    def _exported(record: dict[str, Any], columns: list[str], fmt: str) -> bytes:
        if fmt == "csv":
            return csv_text([record], columns).encode()
        return orjson.dumps({c: record.get(c) for c in columns}, default=json_default) + b"\n"

    async def _create(self, request: Request, store: EntityStore) -> Response:
        guard = self._guard(request, store)
        body = await read_json(request, self.max_body)
        guard.check_create(body)
        ctx = self._write_context(request)
        prepared = store.prepare_create(body, ctx)
        guard.check_prepared(prepared)
        one_statement = store.writes_one_statement(prepared)
        async with self.database.write(ctx, transaction=not one_statement) as conn:
            record = guard.strip(await store.create(conn, body, ctx, prepared=prepared))
        headers = {"Location": self._location(store, record), "ETag": _etag(record)}
        return json_response({"data": record}, 201, headers)

    async def item(self, request: Request) -> Response:
        store = self._store(request)
        record_id = _record_id(request.path_params["id"], store)
        method = request.method
        if method in {"GET", "HEAD"}:
            return await self._read(request, self._guard(request, store), record_id)
        guard = self._guard(request, store)
        if method == "DELETE":
            expected = _if_match(request)
            ctx = self._write_context(request)
            async with self.database.write(ctx) as conn:
                old = await guard.delete(conn, record_id, ctx, expected_version=expected)
                stored = await self.files.on_delete(conn, store, record_id, old)
            await self.files.forget(stored)  # its files' bytes, once the delete committed
            return Response(status_code=204)
        body = await read_json(request, self.max_body)
        expected = _if_match(request)
        ctx = self._write_context(request)
        async with self.database.write(ctx) as conn:
            record = await guard.update(conn, record_id, body, ctx, expected_version=expected)
        return json_response({"data": record}, headers={"ETag": _etag(record)})

    async def _read(self, request: Request, guard: GuardedStore, record_id: int) -> Response:
        params = request.query_params
        query = None
        if "expand" in params or "fields" in params:
            query = guard.store.parser.parse(
                [(k, v) for k, v in params.multi_items() if k in {"expand", "fields"}]
            )
            guard.check_fields(query.fields or ())
        async with self.database.get().connection() as conn:
            record = await guard.get(conn, record_id, query.expand if query else ())
        if query is not None and query.fields is not None:
            record = {k: v for k, v in record.items() if k in query.fields or k == "id"}
        return json_response({"data": record}, headers={"ETag": f'"{record.get("version", "")}"'})

    async def print_record(self, request: Request) -> Response:
        """The record through a print format, as HTML or PDF (``runtime.api.printing``)."""
        store = self._store(request)
        record_id = _record_id(request.path_params["id"], store)
        fmt, name = printing.parse_request(request.query_params.multi_items())
        guard = self._guard(request, store)
        async with self.database.get().connection() as conn:
            record = await printing.printable(conn, guard, record_id)
        reader = self.readers.of(request.scope.get("tessera.user"))
        return await printing.render(self.print_formats, guard, record, fmt, name, reader)

    async def transitions(self, request: Request) -> Response:
        """The workflow moves out of the record's current state, each with whether the
        caller may take it now (and why not), so a UI can show its buttons."""
        store = self._store(request)
        record_id = _record_id(request.path_params["id"], store)
        if store.workflow is None:
            raise ApiProblem(404, f"{store.entity.qualified_name} has no workflow", "not-found")
        guard = self._guard(request, store)
        async with self.database.get().connection() as conn:
            record = await guard.readable(conn, record_id)  # 404 unless the caller may see it
            moves = await store.workflow_moves(conn, record, self._write_context(request))
        field = store.workflow.field
        return json_response(
            {
                "data": [
                    {
                        "to": move.target,
                        "label": move.label or move.target.replace("_", " ").capitalize(),
                        "allowed": move.allowed,
                        "reason": move.reason,
                    }
                    for move in moves
                ],
                "meta": {"field": field, "state": record.get(field)},
            }
        )

    async def document_action(self, request: Request) -> Response:
        """``POST .../{id}/_submit``, ``_cancel`` or ``_amend`` of a document (an entity
        with ``document: true``; 404 on any other). If-Match is honoured (412 when stale).
        Submit and cancel answer the record (200); amend the new draft copy (201)."""
        store = self._store(request)
        record_id = _record_id(request.path_params["id"], store)
        action = request.path_params["action"]
        if not store.entity.document:
            raise ApiProblem(
                404, f"{store.entity.qualified_name} is not a document (document: true)"
            )
        guard = self._guard(request, store)
        expected = _if_match(request)
        ctx = self._write_context(request)
        async with self.database.write(ctx) as conn:
            if action == "_amend":
                record = await guard.amend(conn, record_id, ctx, expected_version=expected)
            else:
                event = RuleEvent.SUBMIT if action == "_submit" else RuleEvent.CANCEL
                record = await guard.transition(
                    conn, record_id, event, ctx, expected_version=expected
                )
        if action == "_amend":
            headers = {"Location": self._location(store, record), "ETag": _etag(record)}
            return json_response({"data": record}, 201, headers)
        return json_response({"data": record}, headers={"ETag": _etag(record)})

    async def history(self, request: Request) -> Response:
        """The record's audit trail, oldest first: who changed what, when (the fields the
        caller may not see left out). ``after`` (an entry id) and ``limit`` page it. Each
        entry names its writer (``user_id`` and ``username``, both null for the system's
        writes; ``username`` null for a user deleted since)."""
        store = self._store(request)
        record_id = _record_id(request.path_params["id"], store)
        guard = self._guard(request, store)
        after = _whole(request.query_params.get("after"), "after", 0)
        limit = min(_whole(request.query_params.get("limit"), "limit", 100), MAX_HISTORY)
        async with self.database.get().connection() as conn:
            try:
                await guard.readable(conn, record_id)  # 404 unless the caller may see it
            except RecordNotFound:
                if not current_user(request).is_admin:  # admins: deleted records' trails too
                    raise
            entries = await self.model.audit.history(
                conn, store.entity.qualified_name, str(record_id), after=after, limit=limit + 1
            )
        more = len(entries) > limit
        entries = entries[:limit]
        hidden = guard.access.hidden
        data = [
            {
                "id": str(entry.id),
                "at": dt.datetime.fromtimestamp(entry.at, dt.UTC).isoformat(),
                "user_id": entry.user_id,
                "username": entry.username,
                "action": entry.action.value,
                "changes": {k: v for k, v in entry.changes.items() if k not in hidden},
            }
            for entry in entries
        ]
        next_after = data[-1]["id"] if more and data else None
        return json_response({"data": data, "meta": {"limit": limit, "next_after": next_after}})

    async def bulk(self, request: Request) -> Response:
        store = self._store(request)
        body = await read_json(request, self.max_body)
        items = body.get("data") if isinstance(body, dict) else body
        if not isinstance(items, list) or not items:
            raise ApiProblem(
                400, '_bulk takes a non-empty JSON array of records (or {"data": [...]})'
            )
        if len(items) > MAX_BULK:
            raise ApiProblem(413, f"_bulk takes at most {MAX_BULK} records per request")
        guard = self._guard(request, store)
        for item in items:
            guard.check_create(item)
        ctx = self._write_context(request)
        validated: list[PreparedCreate] = []
        errors: list[FieldError] = []
        for index, item in enumerate(items):
            try:
                validated.append(store.prepare_create(item, ctx))
            except ValidationFailed as failed:
                errors.extend(e.at_index(index) for e in failed.errors)
        if errors:
            raise ValidationFailed(errors)
        for prepared in validated:
            guard.check_prepared(prepared)
        records = []
        async with self.database.write(ctx) as conn:
            await store.load_references(conn, [p.values for p in validated], ctx)
            for index, (item, prepared) in enumerate(zip(items, validated, strict=True)):
                try:
                    created = await store.create(conn, item, ctx, prepared=prepared)
                    records.append(guard.strip(created))
                except ValidationFailed as failed:
                    raise ValidationFailed([e.at_index(index) for e in failed.errors]) from None
                except Conflict as conflict:
                    raise Conflict(
                        f"record {index}: {conflict.detail}",
                        [e.at_index(index) for e in conflict.errors],
                    ) from None
        return json_response({"data": records, "meta": {"count": len(records)}}, 201)

    async def upsert(self, request: Request) -> Response:
        store = self._store(request)
        field = request.path_params["field"]
        if field not in store.entity.unique_fields():
            unique = ", ".join(store.entity.unique_fields()) or "none"
            raise BadQuery(
                f"'{field}' is not a unique field of {store.entity.qualified_name}; "
                f"upsert needs one of: {unique}"
            )
        body = await read_json(request, self.max_body)
        ctx = self._write_context(request)
        guard = self._guard(request, store)
        async with self.database.write(ctx) as conn:
            record, created = await guard.upsert(
                conn, field, request.path_params["value"], body, ctx
            )
        headers = {"Location": self._location(store, record), "ETag": _etag(record)}
        return json_response({"data": record}, 201 if created else 200, headers)
