"""A record's files on its form: a file field's upload, download and removal, and the
"Attachments" section (list, upload, delete). The same operations as the REST API's
(``runtime.api.files.FileApi``), acting for the signed-in user through the guard, so a
screen can do no more with a file than the API would."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import RedirectResponse, Response

from engine.errors import RecordNotFound
from metadata import FieldType
from runtime.api.problems import ApiProblem
from runtime.api.uploads import download, read_upload
from runtime.web.handling import screen
from runtime.web.screens.base import Family, Screen, WebUI, parse_record_id
from runtime.web.session import CSRF_FIELD, same_secret

if TYPE_CHECKING:
    from metadata import FieldDef
    from runtime.api.files import FileApi


async def attachments_for(ui: WebUI, screen: Screen, record_id: str | None) -> list[Any] | None:
    """The attachments a record's form lists (None for a new record)."""
    if record_id is None:
        return None
    files = ui.live.current.record_api.files
    return await files.attachments_of(screen.store, screen.guard, parse_record_id(record_id))


_CSRF_ONLY = frozenset({CSRF_FIELD})


class Files(Family):
    routes = (
        ("GET", "/app/{pack}/{entity}/{record_id}/_files/{field}", "download_field"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_files/{field}", "upload_field"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_files/{field}/clear", "clear_field"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_attachments", "attach"),
        ("GET", "/app/{pack}/{entity}/{record_id}/_attachments/{file_id}", "download_attachment"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_attachments/{file_id}/delete", "detach"),
    )

    @property
    def files(self) -> FileApi:
        return self.live.current.record_api.files

    def _field(self, screen: Screen, name: str) -> FieldDef:
        found = screen.store.entity.fields.get(name)
        if found is None or found.type is not FieldType.FILE or name in screen.access.hidden:
            raise RecordNotFound(f"{screen.store.entity.label} has no file field '{name[:40]}'")
        return found

    @staticmethod
    def _back(screen: Screen, record_id: str, anchor: str = "") -> Response:
        return RedirectResponse(f"{screen.entity_url}/{record_id}?saved=1{anchor}", 303)

    async def _upload(self, request: Request, screen: Screen, limit: int) -> tuple[Any, str, Any]:
        """The multipart upload, once its form's CSRF token matches the session's."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiProblem(400, "choose a file to upload")
        chunks, name, form = await read_upload(request, limit, fields=_CSRF_ONLY)
        token = form.get(CSRF_FIELD)
        if not same_secret(token if isinstance(token, str) else None, screen.session.csrf):
            await form.close()
            raise ApiProblem(403, "the form has expired or did not come from this site: reload")
        if not name:
            await form.close()
            raise ApiProblem(400, "choose a file to upload")
        return chunks, name, form

    @screen
    async def download_field(
        self, request: Request, pack: str, entity: str, record_id: str, field: str
    ) -> Response:
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        found = self._field(screen, field)
        row = await self.files.field_row(
            screen.store, screen.guard, parse_record_id(record_id), found
        )
        return await download(self.files.storage, row, head=False)

    @screen
    async def upload_field(
        self, request: Request, pack: str, entity: str, record_id: str, field: str
    ) -> Response:
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        found = self._field(screen, field)
        number = parse_record_id(record_id)
        ctx = self.ui.write_context(session)
        await self.files.check_uploadable(screen.store, screen.guard, number, found, ctx)
        limit = self.files.field_limit(found)
        chunks, name, form = await self._upload(request, screen, limit)
        try:
            upload = await self.files.store_upload(chunks, name, limit=limit, accept=found.accept)
        finally:
            await form.close()
        await self.files.set_field(screen.store, screen.guard, number, found, upload, ctx)
        return self._back(screen, record_id)

    @screen
    async def clear_field(
        self, request: Request, pack: str, entity: str, record_id: str, field: str
    ) -> Response:
        session = await self.ui.checked(request)
        screen = self.ui.screen_for(session, pack, entity)
        found = self._field(screen, field)
        number = parse_record_id(record_id)
        ctx = self.ui.write_context(session)
        await self.files.check_uploadable(screen.store, screen.guard, number, found, ctx)
        await self.files.set_field(screen.store, screen.guard, number, found, None, ctx)
        return self._back(screen, record_id)

    @screen
    async def attach(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        number = parse_record_id(record_id)
        await self.files.attachments_of(screen.store, screen.guard, number)  # 404 first
        limit = self.files.files.max_size
        chunks, name, form = await self._upload(request, screen, limit)
        try:
            upload = await self.files.store_upload(chunks, name, limit=limit, accept=None)
        finally:
            await form.close()
        ctx = self.ui.write_context(session)
        await self.files.attach(screen.store, screen.guard, number, upload, ctx)
        return self._back(screen, record_id, "#attachments")

    @screen
    async def download_attachment(
        self, request: Request, pack: str, entity: str, record_id: str, file_id: str
    ) -> Response:
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        number = parse_record_id(record_id)
        row = await self.files.attachment_row(screen.store, screen.guard, number, file_id)
        return await download(self.files.storage, row, head=False)

    @screen
    async def detach(
        self, request: Request, pack: str, entity: str, record_id: str, file_id: str
    ) -> Response:
        session = await self.ui.checked(request)
        screen = self.ui.screen_for(session, pack, entity)
        ctx = self.ui.write_context(session)
        number = parse_record_id(record_id)
        await self.files.detach(screen.store, screen.guard, number, file_id, ctx)
        return self._back(screen, record_id, "#attachments")
