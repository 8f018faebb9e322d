"""Reading an uploaded file from a request, and answering a download.

An upload is either ``multipart/form-data`` with one file part (what a browser's form
sends) or the raw bytes as the body, named by ``?filename=`` or a ``Content-Disposition``
header. Either way the bytes reach the storage as a stream of chunks, counted as they
come: a declared ``Content-Length`` over the limit is refused before anything is read,
and a body that grows past it is cut off where it does (413) — a multipart body's parser
spools to an anonymous temporary file, which goes when it is closed.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import StreamingResponse

from engine.files import OCTET_STREAM, FileMissing, FileTooLarge
from engine.files.storage import CHUNK
from runtime.api.problems import ApiProblem

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import Message, Receive

    from engine.files import FileRow, FileStorage

MULTIPART_OVERHEAD = 64 * 1024
"""What a multipart body may hold besides the file: boundaries, part headers, a field."""
_FILENAME = "filename"
_PART = "file"
NO_FILE_PART = "the multipart body has no file part (name it 'file')"


def too_large(limit: int) -> ApiProblem:
    return ApiProblem(413, f"the file is larger than {limit} bytes", "file-too-large")


def _capped(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise FileTooLarge(limit)
        return message

    return capped


def _declared_length(request: Request, limit: int, overhead: int = 0) -> None:
    """413 when the body declares more than ``limit`` bytes of file and ``overhead``
    (a multipart body's boundaries and headers); the message names the file's limit."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not (declared.isascii() and declared.isdigit()) or len(declared) > 20:
        raise ApiProblem(400, "Content-Length is not a number")
    if int(declared) > limit + overhead:
        raise too_large(limit)


def _disposition_name(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (``filename*=UTF-8''…`` first)."""
    if not header:
        return None
    found: dict[str, str] = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        found[key.strip().lower()] = value.strip()
    extended = found.get("filename*")
    if extended and "''" in extended:
        charset, _, quoted = extended.partition("''")
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            return urllib.parse.unquote(quoted, encoding=charset or "utf-8", errors="strict")
    plain = found.get(_FILENAME)
    return plain.strip('"') if plain else None


async def read_upload(
    request: Request, limit: int, *, fields: frozenset[str] = frozenset()
) -> tuple[AsyncIterator[bytes], str, Any]:
    """The uploaded bytes as chunks, the name the client gave, and something to close when
    done (the multipart form, or None). A multipart body holds one file part named
    ``file`` and none but the ``fields`` named (the web UI's CSRF token)."""
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        _declared_length(request, limit, MULTIPART_OVERHEAD)
        capped = Request(request.scope, _capped(request.receive, limit + MULTIPART_OVERHEAD))
        try:
            form = await capped.form(max_files=1, max_fields=5)
        except FileTooLarge:
            raise too_large(limit) from None
        except (MultiPartException, KeyError, ValueError) as exc:  # no boundary, bad parts
            raise ApiProblem(400, f"the multipart body cannot be read: {exc}") from None
        upload = form.get(_PART)
        unexpected = sorted({k for k in form if k != _PART and k not in fields})
        if not isinstance(upload, UploadFile) or unexpected:
            await form.close()
            if unexpected:
                listed = ", ".join(repr(k[:40]) for k in unexpected[:5])
                raise ApiProblem(400, f"the multipart body has parts other than 'file': {listed}")
            raise ApiProblem(400, NO_FILE_PART)

        async def parts() -> AsyncIterator[bytes]:
            while chunk := await upload.read(CHUNK):
                yield chunk

        return parts(), upload.filename or "", form
    _declared_length(request, limit)
    name = request.query_params.get(_FILENAME)
    if name is None:
        name = _disposition_name(request.headers.get("content-disposition"))

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            if chunk:
                yield chunk

    return body(), name or "", None


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the real one in RFC 5987's
    ``filename*``: no browser shows a download inline or reads the name as markup."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in filename
    )
    encoded = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{fallback or 'file'}\"; filename*=UTF-8''{encoded}"


async def download(storage: FileStorage, row: FileRow, *, head: bool) -> StreamingResponse:
    """The file as a download: always ``application/octet-stream`` as an attachment, so
    that no browser shows it inline or runs it (HTML, SVG), whatever it holds; its own
    content type is in the field's value and the attachment's listing."""
    chunks = storage.open(row.key)
    try:
        first = await anext(chunks, b"")
    except FileMissing:
        raise ApiProblem(
            404, f"the bytes of file {row.id} are missing from the file store", "file-missing"
        ) from None
    headers = {
        "content-disposition": content_disposition(row.filename),
        "content-length": str(row.size),
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; sandbox",
        "etag": f'"{row.sha256}"',
        "cache-control": "private, no-store",
    }

    async def body() -> AsyncIterator[bytes]:
        if head:
            with contextlib.suppress(Exception):
                await chunks.aclose()  # type: ignore[attr-defined]
            return
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), media_type=OCTET_STREAM, headers=headers)
