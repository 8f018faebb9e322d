"""The form's Print button: the record through its print format, as a PDF (or HTML), read
with the signed-in user's grants, like ``GET /api/v1/{pack}/{entity}/{id}/_print``."""

from __future__ import annotations

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import Response  # noqa: TC002 - FastAPI reads the annotations

from runtime.api import printing
from runtime.web.handling import screen
from runtime.web.screens.base import Family, parse_record_id


class Printing(Family):
    routes = (("GET", "/app/{pack}/{entity}/{record_id}/print", "print_record"),)

    @screen
    async def print_record(
        self, request: Request, pack: str, entity: str, record_id: str
    ) -> Response:
        """``?template=<name>`` (default: the entity's own print format, else the generic
        layout) and ``?format=html`` (default: pdf)."""
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        fmt, name = printing.parse_request(request.query_params.multi_items())
        async with self.database.get().connection() as conn:
            record = await printing.printable(conn, screen.guard, parse_record_id(record_id))
        formats = self.live.current.record_api.print_formats
        reader = self.ui.formats(session)
        return await printing.render(formats, screen.guard, record, fmt, name, reader)
