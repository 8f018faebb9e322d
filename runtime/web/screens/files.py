"""A record's files on its form: a file field's upload, download and removal (a record's
own field, or a line item's: ``…/{record_id}/{lines}/{line_id}/_files/{field}``), and the
"Attachments" section (list, upload, delete). The same operations as the REST API's
(``runtime.api.files.FileApi``), acting for the signed-in user through the guard, so a
screen can do no more with a file than the API would.

A refused upload (too large, a type the field does not take, no file chosen) shows the
record's form again, the reason at the field, as a refused save does: the page keeps
everything else it showed (the record as stored, its other files, its attachments)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import RedirectResponse, Response

from runtime.api.file_slots import file_slot
from runtime.api.problems import ApiProblem
from runtime.api.uploads import NO_FILE_PART, download, read_upload
from runtime.web.handling import screen
from runtime.web.screens.base import Family, Screen, WebUI, parse_record_id
from runtime.web.screens.forms import Forms
from runtime.web.session import CSRF_FIELD, same_secret

if TYPE_CHECKING:
    from engine import WriteContext
    from runtime.api.file_slots import FileSlot
    from runtime.api.files import FileApi, Upload

_CSRF_ONLY = frozenset({CSRF_FIELD})
_SHOWN_AT_FIELD = frozenset({400, 413, 415})
"""Refusals of the file itself, shown at its field on the form (others: an error page)."""
_CHOOSE = "choose a file to upload"
_LINE = "/app/{pack}/{entity}/{record_id}/{lines}/{line_id}/_files/{field}"


@dataclass(frozen=True, slots=True)
class _Target:
    """What a file field's screen acts on: the record's screen and the field's slot."""

    screen: Screen
    slot: FileSlot
    record_id: str
    ctx: WriteContext


class Files(Family):
    routes = (
        ("GET", "/app/{pack}/{entity}/{record_id}/_files/{field}", "download_field"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_files/{field}", "upload_field"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_files/{field}/clear", "clear_field"),
        ("GET", _LINE, "download_line_field"),
        ("POST", _LINE, "upload_line_field"),
        ("POST", _LINE + "/clear", "clear_line_field"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_attachments", "attach"),
        ("GET", "/app/{pack}/{entity}/{record_id}/_attachments/{file_id}", "download_attachment"),
        ("POST", "/app/{pack}/{entity}/{record_id}/_attachments/{file_id}/delete", "detach"),
    )

    def __init__(self, ui: WebUI) -> None:
        super().__init__(ui)
        self.forms = Forms(ui)  # a refused upload shows the record's form again

    @property
    def files(self) -> FileApi:
        return self.live.current.record_api.files

    async def _target(
        self,
        request: Request,
        names: tuple[str, str, str, str],
        *,
        checked: bool,
        line: tuple[str, str] | None = None,
    ) -> _Target:
        """The signed-in user's screen of ``(pack, entity, record_id, field)`` and the file
        field's slot (of the line ``(lines, line_id)``); ``checked``: the request is a
        plain form whose CSRF token is checked here (an upload's is checked once its
        multipart body is read)."""
        pack, entity, record_id, field = names
        session = await (self.ui.checked(request) if checked else self.ui.session(request))
        found = self.ui.screen_for(session, pack, entity)
        lines, line_id = line or (None, None)
        slot = file_slot(
            found.store,
            found.guard,
            parse_record_id(record_id),
            field,
            self.live.current.project.entities,
            lines=lines,
            line_id=line_id,
        )
        return _Target(found, slot, record_id, self.ui.write_context(session))

    @staticmethod
    def _back(screen: Screen, record_id: str, anchor: str = "") -> Response:
        return RedirectResponse(f"{screen.entity_url}/{record_id}?saved=1{anchor}", 303)

    async def _upload(self, request: Request, screen: Screen, limit: int) -> tuple[Any, str, Any]:
        """The multipart upload, once its form's CSRF token matches the session's."""
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiProblem(400, _CHOOSE)
        try:
            chunks, name, form = await read_upload(request, limit, fields=_CSRF_ONLY)
        except ApiProblem as exc:
            if exc.detail == NO_FILE_PART:  # the browser sent the form without a file
                raise ApiProblem(400, _CHOOSE) from None
            raise
        token = form.get(CSRF_FIELD)
        if not same_secret(token if isinstance(token, str) else None, screen.session.csrf):
            await form.close()
            raise ApiProblem(403, "the form has expired or did not come from this site: reload")
        if not name:
            await form.close()
            raise ApiProblem(400, _CHOOSE)
        return chunks, name, form

    async def _received(
        self, request: Request, screen: Screen, limit: int, accept: tuple[str, ...] | None
    ) -> Upload:
        chunks, name, form = await self._upload(request, screen, limit)
        try:
            return await self.files.store_upload(chunks, name, limit=limit, accept=accept)
        finally:
            await form.close()

    async def _refused(self, request: Request, target: _Target, exc: ApiProblem) -> Response:
        """The record's form again, the refusal at the file field (a line's: in its row)."""
        found, slot = target.screen, target.slot
        full = await self.ui.stored(found, target.record_id)
        key = slot.field.name
        if slot.lines is not None:
            key = f"{slot.lines}[{slot.position(full)}].{key}"
        shown = found.guard.strip(dict(full))
        return await self.forms.form_page(
            request,
            found,
            shown,
            target.record_id,
            {key: [exc.detail]},
            exc.status,
            full=full,
            failure="was not changed",
        )

    async def _download(self, target: _Target) -> Response:
        row = await self.files.field_row(target.slot)
        return await download(self.files.storage, row, head=False)

    async def _store(self, request: Request, target: _Target) -> Response:
        """Upload the request's file to the target's slot."""
        await self.files.check_uploadable(target.slot, target.ctx)
        field = target.slot.field
        try:
            upload = await self._received(
                request, target.screen, self.files.field_limit(field), field.accept
            )
        except ApiProblem as exc:
            if exc.status not in _SHOWN_AT_FIELD:
                raise
            return await self._refused(request, target, exc)
        await self.files.set_field(target.slot, upload, target.ctx)
        return self._back(target.screen, target.record_id)

    async def _clear(self, target: _Target) -> Response:
        await self.files.check_uploadable(target.slot, target.ctx)
        await self.files.set_field(target.slot, None, target.ctx)
        return self._back(target.screen, target.record_id)

    # -- a record's file field ---------------------------------------------------------------

    @screen
    async def download_field(
        self, request: Request, pack: str, entity: str, record_id: str, field: str
    ) -> Response:
        names = (pack, entity, record_id, field)
        return await self._download(await self._target(request, names, checked=False))

    @screen
    async def upload_field(
        self, request: Request, pack: str, entity: str, record_id: str, field: str
    ) -> Response:
        names = (pack, entity, record_id, field)
        return await self._store(request, await self._target(request, names, checked=False))

    @screen
    async def clear_field(
        self, request: Request, pack: str, entity: str, record_id: str, field: str
    ) -> Response:
        names = (pack, entity, record_id, field)
        return await self._clear(await self._target(request, names, checked=True))

    # -- a line's file field -----------------------------------------------------------------

    @screen
    async def download_line_field(
        self,
        request: Request,
        pack: str,
        entity: str,
        record_id: str,
        lines: str,
        line_id: str,
        field: str,
    ) -> Response:
        names, line = (pack, entity, record_id, field), (lines, line_id)
        return await self._download(await self._target(request, names, checked=False, line=line))

    @screen
    async def upload_line_field(
        self,
        request: Request,
        pack: str,
        entity: str,
        record_id: str,
        lines: str,
        line_id: str,
        field: str,
    ) -> Response:
        names, line = (pack, entity, record_id, field), (lines, line_id)
        target = await self._target(request, names, checked=False, line=line)
        return await self._store(request, target)

    @screen
    async def clear_line_field(
        self,
        request: Request,
        pack: str,
        entity: str,
        record_id: str,
        lines: str,
        line_id: str,
        field: str,
    ) -> Response:
        names, line = (pack, entity, record_id, field), (lines, line_id)
        return await self._clear(await self._target(request, names, checked=True, line=line))

    # -- attachments -------------------------------------------------------------------------

    @screen
    async def attach(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        session = await self.ui.session(request)
        found = self.ui.screen_for(session, pack, entity)
        number = parse_record_id(record_id)
        await self.files.attachments_of(found.store, found.guard, number)  # 404 first
        try:
            upload = await self._received(request, found, self.files.files.max_size, None)
        except ApiProblem as exc:
            if exc.status not in _SHOWN_AT_FIELD:
                raise
            full = await self.ui.stored(found, record_id)
            shown = found.guard.strip(dict(full))
            general = [f"the file was not attached: {exc.detail}"]
            return await self.forms.form_page(
                request, found, shown, record_id, {}, exc.status, general=general, full=full
            )
        ctx = self.ui.write_context(session)
        await self.files.attach(found.store, found.guard, number, upload, ctx)
        return self._back(found, record_id, "#attachments")

    @screen
    async def download_attachment(
        self, request: Request, pack: str, entity: str, record_id: str, file_id: str
    ) -> Response:
        session = await self.ui.session(request)
        found = self.ui.screen_for(session, pack, entity)
        number = parse_record_id(record_id)
        row = await self.files.attachment_row(found.store, found.guard, number, file_id)
        return await download(self.files.storage, row, head=False)

    @screen
    async def detach(
        self, request: Request, pack: str, entity: str, record_id: str, file_id: str
    ) -> Response:
        session = await self.ui.checked(request)
        found = self.ui.screen_for(session, pack, entity)
        ctx = self.ui.write_context(session)
        number = parse_record_id(record_id)
        await self.files.detach(found.store, found.guard, number, file_id, ctx)
        return self._back(found, record_id, "#attachments")
