"""The home page and an entity's list: search, filters, sort, paging, CSV export, bulk
delete, and the ``<option>``s of reference pickers."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import urllib.parse
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from engine.access import Forbidden
from engine.dates import day_bound
from engine.errors import BadQuery, RecordNotFound
from metadata import FieldType, Permission
from runtime.titles import add_titles, show_user_names, titled_references
from runtime.web.handling import screen
from runtime.web.screens.base import Family, form_text, list_params, parse_record_id, visible_sort
from runtime.web.screens.boards import board_fields
from runtime.web.screens.line_options import LinePicker
from runtime.web.widgets import list_columns

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from metadata import EntityDef
    from runtime.web.session import Session

PAGE_SIZE = 25
OPTIONS_LIMIT = 50
BULK_DELETE_LIMIT = 1000
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Lists(Family):
    routes = (
        ("GET", "/app", "home"),
        ("GET", "/app/{pack}/{entity}", "list_screen"),
        ("GET", "/app/{pack}/{entity}/export.csv", "export"),
        ("GET", "/app/{pack}/{entity}/_options", "options"),
        ("POST", "/app/{pack}/{entity}/_delete", "bulk_delete"),
    )

    @screen
    async def home(self, request: Request) -> Response:
        session = await self.ui.session(request)
        return await self.render(request, "home.html", session=session, title="Home")

    @screen
    async def list_screen(self, request: Request, pack: str, entity: str) -> Response:
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        screen.access.require(Permission.READ)
        params = list_params(request)
        default_sort = visible_sort(screen.store.entity.view.list_sort, screen.access)
        if default_sort and not any(key == "sort" for key, _ in params):
            params.append(("sort", default_sort))
        columns = list_columns(screen.store.entity, screen.access)
        expandable = titled_references(screen.guard, [c.name for c in columns])
        users = [c.name for c in columns if c.type is FieldType.USER]
        zone = self.ui.formats(session).zone
        query_pairs = [
            *day_bounds(params, screen.store.entity, zone),
            ("limit", str(PAGE_SIZE)),
            ("count", "true"),
            *([("expand", ",".join(expandable))] if expandable else []),
        ]
        query = screen.store.parser.parse(query_pairs)
        async with self.database.get().connection() as conn:
            result = await screen.guard.list_page(conn, query)
            await show_user_names(conn, self.database.get().sa_dialect, result.records, users)
        add_titles(result.records, screen.store, expandable)
        filters = dict(params)
        return await self.render(
            request,
            "list.html",
            session=session,
            screen=screen,
            entity=screen.store.entity,
            title=screen.store.entity.label_plural,
            columns=columns,
            records=result.records,
            count=result.count or 0,
            offset=query.offset,
            page_size=PAGE_SIZE,
            filters=filters,
            sort=query.sort_text(),
            query_string=urllib.parse.urlencode(params),
            may_create=screen.may(Permission.CREATE),
            may_delete=screen.may(Permission.DELETE),
            boards=board_fields(screen),
        )

    @screen
    async def options(self, request: Request, pack: str, entity: str) -> Response:
        """``<option>``s of the records a reference picker may choose, by title search."""
        session = await self.ui.session(request)
        line = self.live.current.project.entities.get(f"{pack}.{entity}")
        if line is not None and line.parent is not None:
            return await self._line_options(request, session, line)
        screen = self.ui.screen_for(session, pack, entity)
        screen.access.require(Permission.READ)
        title = screen.store.entity.title or "id"
        q = (request.query_params.get("q") or "").strip()[:100]
        pairs = [("limit", str(OPTIONS_LIMIT)), ("sort", visible_sort(title, screen.access))]
        if q:
            pairs.append(("q", q))
        selected = request.query_params.get("selected") or next(
            (v for k, v in request.query_params.multi_items() if k not in {"q", "selected"}), ""
        )
        async with self.database.get().connection() as conn:
            result = await screen.guard.list_page(conn, screen.store.parser.parse(pairs))
            records = result.records
            if selected and selected not in {r["id"] for r in records}:
                with contextlib.suppress(RecordNotFound, Forbidden):  # keep the current choice
                    records = [await screen.guard.get(conn, parse_record_id(selected)), *records]
        return await self.render(
            request,
            "options.html",
            session=session,
            records=records,
            title_field=title,
            selected=selected,
            navigation=[],
        )

    async def _line_options(self, request: Request, session: Session, line: EntityDef) -> Response:
        """A line item entity's: its lines, found through their parents (line_options)."""
        picker = LinePicker(self.ui, session, line)
        q = (request.query_params.get("q") or "").strip()[:100]
        selected = request.query_params.get("selected") or next(
            (v for k, v in request.query_params.multi_items() if k not in {"q", "selected"}), ""
        )
        async with self.database.get().connection() as conn:
            choices = await picker.choices(conn, q=q, selected=selected, limit=OPTIONS_LIMIT)
        return await self.render(
            request,
            "options.html",
            session=session,
            records=[{"id": c.id, "label": c.label} for c in choices],
            title_field="label",
            selected=selected,
            navigation=[],
        )

    @screen
    async def bulk_delete(self, request: Request, pack: str, entity: str) -> Response:
        """Delete the ticked records, all or nothing."""
        session = await self.ui.checked(request)
        screen = self.ui.screen_for(session, pack, entity)
        form = await request.form()
        ids = [parse_record_id(v) for v in form.getlist("ids") if isinstance(v, str)]
        if len(ids) > BULK_DELETE_LIMIT:
            raise BadQuery(f"delete at most {BULK_DELETE_LIMIT} records at a time")
        ctx = self.ui.write_context(session)
        files = self.live.current.record_api.files
        stored: list[str] = []
        if ids:
            async with self.database.write(ctx) as conn:
                for record_id in ids:
                    old = await screen.guard.delete(conn, record_id, ctx)
                    stored += await files.on_delete(conn, screen.store, record_id, old)
        await files.forget(stored)  # their files' bytes, once the delete committed
        back = form_text(form.get("back")) or ""
        separator = "&" if back else ""
        return RedirectResponse(
            f"{screen.entity_url}?{back}{separator}deleted={len(ids)}", status_code=303
        )

    @screen
    async def export(self, request: Request, pack: str, entity: str) -> Response:
        """The list's current filter as CSV, through the REST API's export (same guard)."""
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        zone = self.ui.formats(session).zone
        pairs = day_bounds(request.query_params.multi_items(), screen.store.entity, zone)
        scope = {
            **request.scope,
            "query_string": urllib.parse.urlencode(pairs).encode(),
            "tessera.user": session.user,
            "path_params": {"pack": pack, "entity": entity},
        }
        return await self.live.current.record_api.export(Request(scope, request.receive))


def day_bounds(
    params: list[tuple[str, str]], entity: EntityDef, zone: ZoneInfo
) -> list[tuple[str, str]]:
    """The list's filters for the engine. A datetime field's *from* and *to* inputs are date
    pickers (list.html): a day there is whole days of the reader's time zone, *to* through
    its end (``seen_at__lte=2026-01-02`` is before 2026-01-03 00:00; ``day_bound``).
    Anything else is passed on as it is (a moment with its offset, as the API takes it; a
    bad value, to be refused by the engine)."""
    out = []
    for key, value in params:
        name, _, op = key.partition("__")
        field = entity.fields.get(name)
        if (
            field is None
            or field.type is not FieldType.DATETIME
            or op not in ("gte", "lte")
            or not _DAY.fullmatch(value)
        ):
            out.append((key, value))
            continue
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:  # no such day (2026-02-30): the engine says so
            out.append((key, value))
            continue
        bound = day_bound(op, day, zone)
        if bound is not None:
            out.append((f"{name}__{bound[0]}", bound[1]))
    return out
