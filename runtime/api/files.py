"""Files of records over HTTP (docs/files.md):

- ``PUT …/{pack}/{entity}/{id}/_files/{field}`` uploads a ``file`` field's file (multipart
  or the raw body); ``GET``/``HEAD`` downloads it; ``DELETE`` clears the field. The same
  on a line item's file field: ``…/{id}/{lines}/{line_id}/_files/{field}``
  (``runtime.api.file_slots``: a line's file follows its parent record).
- ``GET …/{id}/_attachments`` lists the record's attachments; ``POST`` adds one;
  ``GET``/``HEAD``/``DELETE …/_attachments/{file_id}`` downloads or removes one.

Reading a file needs what reading its record needs (the read grant and its ``where``:
404 otherwise; a hidden field is not there). Uploading to a field is an update of the
record (update grant, read-only fields, a submitted document's fields frozen unless
``allow_on_submit``, rules, audit); attaching needs the update grant only, so a submitted
document still takes attachments, as in ERPNext. The bytes are stored before the
transaction that makes them the record's; if it fails they are deleted, and the bytes a
committed write replaced or removed are deleted after it commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.access import Forbidden, matches
from engine.audit import AuditAction
from engine.errors import Conflict, RecordNotFound, StaleVersion
from engine.fieldtypes import InvalidValue, parse_id
from engine.fieldtypes.files import FileValue
from engine.files import FileCatalog, FileTooLarge, accepted, safe_filename, sniff
from metadata import FieldType, Permission
from runtime.api.file_slots import FileSlot, file_slot, record_path
from runtime.api.problems import ApiProblem, json_response
from runtime.api.uploads import download, read_upload, too_large
from runtime.auth import current_user
from runtime.plumbing import actor_of, guard_for, write_context

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from starlette.requests import Request
    from starlette.responses import Response

    from engine import EngineModel, EntityStore, WriteContext
    from engine.database import Connection
    from engine.files import FileRow, FileStorage, StoredBlob
    from engine.guard import GuardedStore
    from metadata import FieldDef
    from runtime.files_config import FileSettings
    from runtime.plumbing import DatabaseHolder

    Handler = Callable[[Request], Awaitable[Response]]

FIELD_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
LIST_METHODS = frozenset({"GET", "HEAD", "POST"})
ONE_METHODS = frozenset({"GET", "HEAD", "DELETE"})
ATTACHMENTS = "_attachments"
_RETRIES = 8
"""Attempts of an upload whose record another write changed in between (parallel uploads
to one field): each attempt reads the record again; the last one to commit wins."""


def attachment_json(store: EntityStore, record_id: int, row: FileRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.filename,
        "size": row.size,
        "content_type": row.content_type,
        "sha256": row.sha256,
        "url": f"{record_path(store, record_id)}/{ATTACHMENTS}/{row.id}",
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


@dataclass(frozen=True, slots=True)
class Upload:
    """A stored upload waiting to become a record's: its bytes, safe name, sniffed type."""

    blob: StoredBlob
    filename: str
    content_type: str


class FileApi:
    """The handlers; ``runtime.api.records.RecordApi.match`` routes to them."""

    def __init__(self, model: EngineModel, database: DatabaseHolder, files: FileSettings) -> None:
        self.model = model
        self.database = database
        self.files = files
        self.catalog = FileCatalog(model.dialect)

    @property
    def storage(self) -> FileStorage:
        return self.files.store()

    def route(self, parts: list[str], params: dict[str, str]) -> tuple[Handler, frozenset[str]]:
        """The handler of ``{id}/_files/{field}``, ``{id}/{lines}/{line_id}/_files/{field}``,
        ``{id}/_attachments[/{file_id}]``."""
        params["id"] = parts[2]
        if parts[3] == "_files" and len(parts) == 5:
            params["field"] = parts[4]
            return self.field_file, FIELD_METHODS
        if len(parts) == 7:  # {id}/{lines}/{line_id}/_files/{field}
            params["lines"], params["line_id"], params["field"] = parts[3], parts[4], parts[6]
            return self.field_file, FIELD_METHODS
        if len(parts) == 4:
            return self.attachments, LIST_METHODS
        params["file_id"] = parts[4]
        return self.attachment, ONE_METHODS

    # -- shared ------------------------------------------------------------------------------

    def _target(self, request: Request) -> tuple[EntityStore, GuardedStore, int]:
        params = request.path_params
        store = self.model.store(params["pack"], params["entity"])
        try:
            record_id = parse_id(params["id"])
        except InvalidValue:
            raise RecordNotFound(
                f"no {store.entity.qualified_name} record with id {params['id'][:40]}"
            ) from None
        actor = actor_of(current_user(request), self.model)
        return store, guard_for(store, actor, self.model), record_id

    @staticmethod
    async def _writable(conn: Connection, guard: GuardedStore, record_id: int) -> dict[str, Any]:
        """The record, if the caller may read it (404) and update it (403)."""
        covered = guard.access.require(Permission.UPDATE)
        record = await guard.readable(conn, record_id)
        if not matches(covered, record, guard.caller.actor):
            raise Forbidden(
                f"your roles do not allow you to change this {guard.store.entity.qualified_name}"
            )
        return record

    async def _receive(
        self, request: Request, *, limit: int, accept: tuple[str, ...] | None
    ) -> Upload:
        chunks, name, form = await read_upload(request, limit)
        try:
            return await self.store_upload(chunks, name, limit=limit, accept=accept)
        finally:
            if form is not None:
                await form.close()

    def field_limit(self, field: FieldDef) -> int:
        """The largest file ``field`` takes: its ``max_size`` within the instance's."""
        return min(self.files.max_size, field.max_size or self.files.max_size)

    async def store_upload(
        self,
        chunks: AsyncIterator[bytes],
        name: str,
        *,
        limit: int,
        accept: tuple[str, ...] | None,
    ) -> Upload:
        """Store the upload; answer its blob, safe name and sniffed content type. A file
        over ``limit`` (413) or of a type not accepted (415) is not kept."""
        try:
            blob = await self.storage.put(chunks, max_size=limit)
        except FileTooLarge:
            raise too_large(limit) from None
        if blob.size == 0:
            await self.storage.delete(blob.key)
            raise ApiProblem(400, "the upload is empty: send the file's bytes", "empty-file")
        filename = safe_filename(name)
        content_type = sniff(blob.head, filename)
        allowed = [p for p in (accept, self.files.content_types) if p is not None]
        for patterns in allowed:
            if not accepted(content_type, patterns):
                await self.storage.delete(blob.key)
                raise ApiProblem(
                    415,
                    f"the file is {content_type} (read from its bytes, whatever its name "
                    f"says); accepted here: {', '.join(patterns)}",
                    "unsupported-file-type",
                )
        return Upload(blob, filename, content_type)

    async def _forget(self, keys: list[str]) -> None:
        for key in keys:
            await self.storage.delete(key)

    # -- a file field ------------------------------------------------------------------------

    def slot(self, request: Request) -> FileSlot:
        """The file field a path names: ``{id}/_files/{field}`` or a line's,
        ``{id}/{lines}/{line_id}/_files/{field}`` (404 for one the caller may not see)."""
        store, guard, record_id = self._target(request)
        params = request.path_params
        return file_slot(
            store,
            guard,
            record_id,
            params["field"],
            self.model.project.entities,
            lines=params.get("lines"),
            line_id=params.get("line_id"),
        )

    async def field_file(self, request: Request) -> Response:
        slot = self.slot(request)
        if request.method in {"GET", "HEAD"}:
            row = await self.field_row(slot)
            return await download(self.storage, row, head=request.method == "HEAD")
        ctx = write_context(slot.guard.caller.actor)
        await self.check_uploadable(slot, ctx)
        retry = request.headers.get("if-match") is None
        if request.method == "DELETE":
            await self.set_field(slot, None, ctx, retry=retry)
            return json_response({"data": None})
        upload = await self._receive(
            request, limit=self.field_limit(slot.field), accept=slot.field.accept
        )
        value = await self.set_field(slot, upload, ctx, retry=retry)
        assert value is not None
        return json_response({"data": value}, 201, {"Location": value["url"]})

    async def field_row(self, slot: FileSlot) -> FileRow:
        """The file the slot holds, if the caller may read the record (404 otherwise)."""
        entity, owner_id = slot.owner
        async with self.database.get().connection() as conn:
            record = await slot.guard.readable(conn, slot.record_id)
            value = slot.held(record)
            row = None
            if value is not None:
                row = await self.catalog.get(
                    conn, int(value["id"]), entity=entity, record_id=owner_id
                )
        if row is None:
            raise ApiProblem(404, f"'{slot.field.name}' holds no file", "not-found")
        return row

    async def check_uploadable(self, slot: FileSlot, ctx: WriteContext) -> dict[str, Any]:
        """Refuse an upload to the slot before its body is read: read-only for the caller
        (403), a record (or line) they may not see (404) or change (403), a submitted
        document (409). The record as stored."""
        slot.check_writable()
        async with self.database.get().connection() as conn:
            old = await self._writable(conn, slot.guard, slot.record_id)
            slot.held(old)
            slot.check_document(old, ctx)
        return old

    async def set_field(
        self,
        slot: FileSlot,
        upload: Upload | None,
        ctx: WriteContext,
        *,
        retry: bool = True,
    ) -> dict[str, Any] | None:
        """Point the slot at the stored upload (None: clear it) in an update of the record;
        the file it held before is deleted once that commits. Without ``retry`` a
        concurrent change is a 412; with it, the update is tried again on the new version.
        The upload's bytes are deleted if it does not become the slot's."""
        try:
            for _ in range(_RETRIES if retry else 1):
                try:
                    value, replaced = await self._set_once(slot, upload, ctx)
                except StaleVersion:
                    if not retry:
                        raise
                    continue
                await self._forget(replaced)
                return value
        except BaseException:
            if upload is not None:
                await self.storage.delete(upload.blob.key)
            raise
        if upload is not None:
            await self.storage.delete(upload.blob.key)
        raise Conflict(f"'{slot.field.name}' was changed by other requests meanwhile; try again")

    async def _set_once(
        self, slot: FileSlot, upload: Upload | None, ctx: WriteContext
    ) -> tuple[dict[str, Any] | None, list[str]]:
        entity, owner_id = slot.owner
        async with self.database.write(ctx) as conn:
            old = await self._writable(conn, slot.guard, slot.record_id)
            before = slot.held(old)
            slot.check_document(old, ctx)
            value = None
            if upload is not None:
                blob, filename, content_type = upload.blob, upload.filename, upload.content_type
                row = await self.catalog.add(
                    conn,
                    key=blob.key,
                    filename=filename,
                    content_type=content_type,
                    size=blob.size,
                    sha256=blob.sha256,
                    entity=entity,
                    record_id=owner_id,
                    field=slot.field.name,
                    created_by=ctx.user_id,
                )
                value = FileValue(row.id, filename, blob.size, content_type, slot.url).as_value()
            await slot.store.update(
                conn,
                slot.record_id,
                {},
                ctx,
                expected_version=int(old["version"]),
                old=old,
                check=slot.guard.check_updated,
                system_values=slot.system_values(old, value),
            )
            replaced: list[str] = []
            if before is not None:
                key = await self.catalog.remove(conn, int(before["id"]))
                replaced = [key] if key is not None else []
        return value, replaced

    # -- attachments -------------------------------------------------------------------------

    async def attachments(self, request: Request) -> Response:
        store, guard, record_id = self._target(request)
        if request.method in {"GET", "HEAD"}:
            data = await self.attachments_of(store, guard, record_id)
            return json_response({"data": data, "meta": {"count": len(data)}})
        async with self.database.get().connection() as conn:  # refuse before reading a body
            await self._writable(conn, guard, record_id)
        upload = await self._receive(request, limit=self.files.max_size, accept=None)
        body = await self.attach(store, guard, record_id, upload, write_context(guard.caller.actor))
        return json_response({"data": body}, 201, {"Location": body["url"]})

    async def attachments_of(
        self, store: EntityStore, guard: GuardedStore, record_id: int
    ) -> list[dict[str, Any]]:
        """The record's attachments, if the caller may read it (404 otherwise)."""
        async with self.database.get().connection() as conn:
            await guard.readable(conn, record_id)
            rows = await self.catalog.attachments(
                conn, entity=store.entity.qualified_name, record_id=record_id
            )
        return [attachment_json(store, record_id, row) for row in rows]

    async def attach(
        self,
        store: EntityStore,
        guard: GuardedStore,
        record_id: int,
        upload: Upload,
        ctx: WriteContext,
    ) -> dict[str, Any]:
        """Make the stored upload an attachment of the record (the caller may update it);
        its bytes are deleted if that fails."""
        blob = upload.blob
        entity = store.entity.qualified_name
        try:
            async with self.database.write(ctx) as conn:
                await self._writable(conn, guard, record_id)
                row = await self.catalog.add(
                    conn,
                    key=blob.key,
                    filename=upload.filename,
                    content_type=upload.content_type,
                    size=blob.size,
                    sha256=blob.sha256,
                    entity=entity,
                    record_id=record_id,
                    field=None,
                    created_by=ctx.user_id,
                )
                body = attachment_json(store, record_id, row)
                await self._audit(conn, entity, record_id, [None, _audited(body)], ctx)
        except BaseException:
            await self.storage.delete(blob.key)
            raise
        return body

    async def attachment(self, request: Request) -> Response:
        store, guard, record_id = self._target(request)
        file_id = request.path_params["file_id"]
        if request.method in {"GET", "HEAD"}:
            row = await self.attachment_row(store, guard, record_id, file_id)
            return await download(self.storage, row, head=request.method == "HEAD")
        ctx = write_context(guard.caller.actor)
        await self.detach(store, guard, record_id, file_id, ctx)
        return json_response({"data": None}, 200)

    async def attachment_row(
        self, store: EntityStore, guard: GuardedStore, record_id: int, text: str
    ) -> FileRow:
        """The attachment ``text`` of the record, if the caller may read it (404)."""
        file_id = _file_id(text)
        async with self.database.get().connection() as conn:
            await guard.readable(conn, record_id)
            row = await self.catalog.get(
                conn, file_id, entity=store.entity.qualified_name, record_id=record_id
            )
        if row is None or row.field is not None:
            raise _no_attachment(text)
        return row

    async def detach(
        self,
        store: EntityStore,
        guard: GuardedStore,
        record_id: int,
        text: str,
        ctx: WriteContext,
    ) -> None:
        """Remove the attachment (the caller may update the record); its bytes go after."""
        file_id = _file_id(text)
        entity = store.entity.qualified_name
        async with self.database.write(ctx) as conn:
            await self._writable(conn, guard, record_id)
            row = await self.catalog.get(conn, file_id, entity=entity, record_id=record_id)
            if row is None or row.field is not None:
                raise _no_attachment(text)
            await self.catalog.remove(conn, file_id)
            body = attachment_json(store, record_id, row)
            await self._audit(conn, entity, record_id, [_audited(body), None], ctx)
        await self._forget([row.key])

    async def _audit(
        self,
        conn: Connection,
        entity: str,
        record_id: int,
        change: list[Any],
        ctx: WriteContext,
    ) -> None:
        """An attachment added or removed, in the record's history (``_attachments``)."""
        audit = self.model.audit
        row = audit.row(
            entity, str(record_id), AuditAction.UPDATE, {ATTACHMENTS: change}, ctx.user_id
        )
        await audit.add(conn, row)

    # -- the record goes -----------------------------------------------------------------

    async def on_delete(
        self,
        conn: Connection,
        store: EntityStore,
        record_id: int,
        old: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """In a record's delete transaction: remove its file rows, and those of the files
        its lines held (``old``: the record as it was, lines included; the database
        deletes the lines themselves); answer the keys whose bytes ``forget`` deletes once
        it has committed."""
        keys = await self.catalog.remove_record(
            conn, entity=store.entity.qualified_name, record_id=record_id
        )
        if old is None:
            return keys
        for name, child in store.children.items():
            held = [n for n, f in child.entity.fields.items() if f.type is FieldType.FILE]
            values = [line.get(n) for line in old.get(name) or () for n in held]
            for value in values:
                key = await self.catalog.remove(conn, int(value["id"])) if value else None
                if key is not None:
                    keys.append(key)
        return keys

    async def forget(self, keys: list[str]) -> None:
        await self._forget(keys)


def _no_attachment(text: str) -> ApiProblem:
    return ApiProblem(404, f"this record has no attachment {text[:40]}", "not-found")


def _file_id(text: str) -> int:
    try:
        return parse_id(text)
    except InvalidValue:
        raise _no_attachment(text) from None


def _audited(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("id", "name", "size", "content_type", "sha256")}
