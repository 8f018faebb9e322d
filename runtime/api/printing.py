"""``GET /api/v1/{pack}/{entity}/{id}/_print?format=html|pdf&template=<name>``.

The record is read as the caller may read it (read grant and its ``where``: 404 otherwise;
hidden fields removed), with its lines, and each reference the caller may read expanded
(hidden fields of the linked record removed too), then rendered by ``runtime.printing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.responses import Response

from engine.errors import BadQuery
from metadata import FieldType, Permission
from runtime.api.problems import ApiProblem
from runtime.printing import PrintFailed, UnknownTemplate, html_to_pdf

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.guard import GuardedStore
    from runtime.formatting import Formats
    from runtime.printing import PrintFormats

FORMATS = {"html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def _one(params: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in params if key == name]
    if len(values) > 1:
        raise BadQuery(f"'{name}' is given more than once")
    return values[0] if values else None


async def printable(conn: Connection, guard: GuardedStore, record_id: int) -> dict[str, Any]:
    """The record with its lines, and the references the caller may read expanded."""
    entity = guard.store.entity
    expand = []
    for name, field in entity.fields.items():
        if field.type is not FieldType.REFERENCE or field.to is None:
            continue
        if name in guard.access.hidden:
            continue
        if guard.caller.access(field.to).allows(Permission.READ):
            expand.append(name)
    return await guard.get(conn, record_id, expand)


def parse_request(params: list[tuple[str, str]]) -> tuple[str, str | None]:
    for key, _ in params:
        if key not in {"format", "template"}:
            raise BadQuery(f"unknown parameter '{key}' for _print (format, template)")
    fmt = _one(params, "format")
    fmt = "pdf" if fmt is None else fmt
    if fmt not in FORMATS:
        raise BadQuery(f"'format' must be one of {', '.join(FORMATS)}")
    return fmt, _one(params, "template")


async def render(
    formats: PrintFormats,
    guard: GuardedStore,
    record: dict[str, Any],
    fmt: str,
    name: str | None,
    reader: Formats | None = None,
) -> Response:
    """The record through its print format, its values as ``reader`` reads them (the
    caller's locale and time zone, docs/locales.md)."""
    entity = guard.store.entity
    try:
        template = formats.template(entity, name)
    except UnknownTemplate as exc:
        raise ApiProblem(404, str(exc), "not-found") from None
    try:
        html = formats.render_html(entity, template, record, reader)
        if fmt == "html":
            return Response(html, media_type=FORMATS["html"])
        pdf = await anyio.to_thread.run_sync(html_to_pdf, html)
    except PrintFailed as exc:
        raise ApiProblem(422, str(exc), "print-failed") from None
    filename = f"{entity.name}-{record.get('id')}.pdf"
    return Response(
        pdf,
        media_type=FORMATS["pdf"],
        headers={"content-disposition": f'inline; filename="{filename}"'},
    )
