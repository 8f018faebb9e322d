"""The generated screens (SPEC §6): sign-in, navigation, a list and a form for every entity.

Server-rendered with Jinja2; every page works without JavaScript, htmx makes searches and
pickers live. Each request acts for the signed-in user through the engine's guard, the
same single place that enforces roles for the REST API, so a screen can show no more than
the API would answer.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from engine import EngineError, WriteContext
from engine.access import EntityAccess, Forbidden
from engine.errors import (
    BadQuery,
    RecordNotFound,
    StaleVersion,
    UnknownEntity,
    ValidationFailed,
)
from engine.expressions import Actor
from engine.fieldtypes import InvalidValue, parse_id
from engine.guard import Caller, GuardedStore
from metadata import ADMIN_ROLE, FieldType, Permission, TileKind
from runtime.api.problems import ApiProblem
from runtime.auth import client_address
from runtime.web.charts import bar_chart, line_chart
from runtime.web.handling import PageRedirect, limit_body, screen
from runtime.web.pages import Pages
from runtime.web.session import (
    CSRF_FIELD,
    Session,
    clear_session_cookie,
    csrf_given,
    login_nonce,
    same_secret,
    session_of,
    set_login_cookie,
    set_session_cookie,
)
from runtime.web.widgets import (
    Widget,
    column,
    display,
    is_writable,
    list_columns,
    record_from_form,
    widget_for,
)

if TYPE_CHECKING:
    from engine import EntityStore
    from engine.workflow import Move
    from metadata import FieldDef, TileDef
    from runtime.api.records import DatabaseHolder
    from runtime.auth import Authenticator
    from runtime.live import LiveDefinitions

EMPTY_ACCESS = EntityAccess("", {})
"""No field made read-only by roles: a line's fields follow its parent's rights."""
PAGE_SIZE = 25
OPTIONS_LIMIT = 50
KANBAN_CARDS = 50
RELATED_ROWS = 10
HISTORY_ENTRIES = 100
BULK_DELETE_LIMIT = 1000
LOGIN_BODY_LIMIT = 8192
_LIST_KEYS = ("q", "sort", "offset")
_STATUS_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


_LaidOut = tuple["FieldDef", str | None, str | None, bool]
"""A field on a form: its definition, the form's label and help for it, whether the form
makes it read-only."""


@dataclass(frozen=True, slots=True)
class Screen:
    """One request's view of one entity: the store, what the user may do with it."""

    session: Session
    store: EntityStore
    guard: GuardedStore
    access: EntityAccess

    @property
    def entity_url(self) -> str:
        entity = self.store.entity
        return f"/app/{entity.pack}/{entity.name}"

    def may(self, permission: Permission) -> bool:
        return permission in self.access.permissions


class WebUI:
    def __init__(
        self, live: LiveDefinitions, database: DatabaseHolder, authenticator: Authenticator
    ) -> None:
        self.live = live
        self.database = database
        self.authenticator = authenticator
        self.pages = Pages()

    # -- sessions ---------------------------------------------------------------------------

    async def _session(self, request: Request) -> Session:
        session = await session_of(request, self.authenticator)
        if session is None:
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            raise PageRedirect("/login?" + urllib.parse.urlencode({"next": target}))
        return session

    async def _checked(self, request: Request) -> Session:
        """The session of a state-changing request, whose CSRF token must match it."""
        session = await self._session(request)
        await limit_body(request, self.live.settings.max_body_bytes)
        if not same_secret(await csrf_given(request), session.csrf):
            raise ApiProblem(403, "the form has expired or did not come from this site: reload")
        return session

    def _screen_for(self, session: Session, pack: str, name: str) -> Screen:
        model = self.live.current.model
        store = model.store(pack, name)
        actor = self._actor(session)
        guard = GuardedStore(store, Caller(actor, actor.roles, model.access))
        return Screen(session, store, guard, guard.access)

    def _write_context(self, session: Session) -> WriteContext:
        actor = self._actor(session)
        return WriteContext(user=actor, roles=actor.roles)

    def _actor(self, session: Session) -> Actor:
        user = session.user
        closure = self.live.current.project.role_closure(user.roles)
        return Actor(str(user.id), user.username, closure)

    async def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        session = context.get("session")
        context.setdefault("navigation", self._navigation(session) if session else [])
        context.setdefault(
            "is_admin", session is not None and ADMIN_ROLE in self._actor(session).roles
        )
        html = self.pages.render(template, request=request, **context)
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    async def error_page(self, request: Request, status: int, detail: str) -> HTMLResponse:
        session = await session_of(request, self.authenticator)
        title = _STATUS_TITLES.get(status, "Error")
        return await self.render(
            request, "error.html", status, session=session, title=title, detail=detail
        )

    def _navigation(self, session: Session) -> list[dict[str, Any]]:
        """Packs with the entities the user may read, in definition order."""
        project = self.live.current.project
        model = self.live.current.model
        readable = model.access.readable_entities(self._actor(session).roles)
        groups = []
        for module in project.modules.values():
            entities = [
                project.entities[name]
                for name in module.entities
                if name in readable and not project.entities[name].is_child
            ]
            dashboards = [
                d
                for d in project.dashboards.values()
                if d.pack == module.name and any(t.entity in readable for t in d.tiles)
            ]
            if entities or dashboards:
                groups.append({"module": module, "entities": entities, "dashboards": dashboards})
        return groups

    # -- sign-in ----------------------------------------------------------------------------

    @screen
    async def login_form(self, request: Request) -> Response:
        if await session_of(request, self.authenticator) is not None:
            return RedirectResponse(_local(request.query_params.get("next")), status_code=303)
        return await self._login_page(request, None, 200)

    async def _login_page(self, request: Request, error: str | None, status: int) -> Response:
        nonce = login_nonce(request)
        response = await self.render(
            request,
            "login.html",
            status,
            session=None,
            title="Sign in",
            nonce=nonce,
            error=error,
            next=_local(request.query_params.get("next")),
        )
        set_login_cookie(response, request, nonce)
        return response

    @screen
    async def login(self, request: Request) -> Response:
        await limit_body(request, LOGIN_BODY_LIMIT)
        form = await request.form()
        nonce = request.cookies.get("tessera_login")
        if not nonce or not same_secret(_text(form.get("nonce")), nonce):
            return await self._login_page(request, "The form expired; please try again.", 400)
        username, password = _text(form.get("username")), _text(form.get("password"))
        if not username or not password:
            return await self._login_page(request, "Enter your user name and password.", 400)
        try:
            issued = await self.authenticator.sign_in(
                username, password, client_address(request), "web session"
            )
        except ApiProblem as exc:
            message = "Wrong user name or password." if exc.status == 401 else exc.detail
            return await self._login_page(request, message, exc.status)
        next_page = _local(_text(form.get("next")))
        if any("\ud800" <= c <= "\udfff" for c in next_page):  # not text: no URL
            next_page = "/app"
        response = RedirectResponse(next_page, status_code=303)
        max_age = round(self.authenticator.settings.token_hours * 3600)
        set_session_cookie(response, request, issued.token, max_age)
        response.delete_cookie("tessera_login", path="/login")
        return response

    @screen
    async def logout(self, request: Request) -> Response:
        session = await self._checked(request)
        await self.authenticator.sign_out(session.token)
        response = RedirectResponse("/login", status_code=303)
        clear_session_cookie(response, request)
        return response

    # -- screens ----------------------------------------------------------------------------

    @screen
    async def home(self, request: Request) -> Response:
        session = await self._session(request)
        return await self.render(request, "home.html", session=session, title="Home")

    @screen
    async def list_screen(self, request: Request, pack: str, entity: str) -> Response:
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        screen.access.require(Permission.READ)
        params = _list_params(request)
        default_sort = _visible_sort(screen.store.entity.view.list_sort, screen.access)
        if default_sort and not any(key == "sort" for key, _ in params):
            params.append(("sort", default_sort))
        columns = list_columns(screen.store.entity, screen.access)
        references = [c.name for c in columns if c.type is FieldType.REFERENCE]
        expandable = [name for name in references if self._readable(session, screen.store, name)]
        query_pairs = [
            *params,
            ("limit", str(PAGE_SIZE)),
            ("count", "true"),
            *([("expand", ",".join(expandable))] if expandable else []),
        ]
        query = screen.store.parser.parse(query_pairs)
        async with self.database.get().connection() as conn:
            result = await screen.guard.list_page(conn, query)
        self._add_titles(result.records, screen.store, expandable)
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
            boards=self._boards(screen),
        )

    def _readable(self, session: Session, store: EntityStore, name: str) -> bool:
        target = store.entity.fields[name].to or ""
        model = self.live.current.model
        access = model.access.access(target, self._actor(session).roles)
        return Permission.READ in access.permissions

    def _add_titles(
        self, records: list[dict[str, Any]], store: EntityStore, names: list[str]
    ) -> None:
        model = self.live.current.model
        for name in names:
            target = model.store_for(store.entity.fields[name].to or "")
            title = target.entity.title or "id"
            for record in records:
                linked = record.get(name)
                if isinstance(linked, dict):
                    linked["_title"] = linked.get(title) or f"#{linked.get('id')}"

    async def new_form(self, request: Request, pack: str, entity: str) -> Response:
        return await self.form_screen(request, pack, entity, None)

    async def create(self, request: Request, pack: str, entity: str) -> Response:
        return await self.save(request, pack, entity, None)

    @screen
    async def form_screen(
        self, request: Request, pack: str, entity: str, record_id: str | None
    ) -> Response:
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        if record_id is None:
            screen.access.require(Permission.CREATE)
            new = {  # a new record starts with the definition's constant defaults
                f.name: f.default
                for f in screen.store.entity.fields.values()
                if f.default is not None and not f.default_is_expression
            }
            return await self._form_page(request, screen, new, None, {}, 200)
        full = await self._stored(screen, record_id)
        shown = screen.guard.strip(dict(full))
        return await self._form_page(request, screen, shown, record_id, {}, 200, full=full)

    async def _form_page(
        self,
        request: Request,
        screen: Screen,
        record: dict[str, Any],
        record_id: str | None,
        errors: dict[str, list[str]],
        status: int,
        *,
        general: list[str] | None = None,
        full: dict[str, Any] | None = None,
    ) -> Response:
        """The form of ``record`` (what the user may see, or what they typed); ``full`` is
        the stored record with its hidden fields, which workflow conditions may read."""
        sections = self._sections(screen, creating=record_id is None)
        titles = await self._reference_titles(screen, record, sections)
        moves, history = await self._workflow_and_history(screen, full)
        conditions = screen.store.form_conditions
        state = conditions.judge(record, self._actor(screen.session)) if conditions else None
        workflow = screen.store.entity.workflow
        entity = screen.store.entity
        title_value = record.get(entity.title) if entity.title else None
        if title_value:
            heading = str(title_value)
        elif record_id is None:
            heading = f"New {entity.label.lower()}"
        else:
            heading = f"{entity.label} #{record_id}"
        return await self.render(
            request,
            "form.html",
            status,
            session=screen.session,
            screen=screen,
            entity=entity,
            record=record,
            record_id=record_id,
            title=heading,
            sections=sections,
            errors=errors,
            general=general or [],
            reference_titles=titles,
            may_update=screen.may(Permission.UPDATE),
            may_delete=screen.may(Permission.DELETE),
            csrf_field=CSRF_FIELD,
            moves=moves,
            conditional=state is not None,
            hidden_sections=state.hidden_sections if state else frozenset(),
            hidden_fields=state.hidden_fields if state else frozenset(),
            required_now=state.required if state else frozenset(),
            workflow_field=entity.fields[workflow.field] if workflow is not None else None,
            history=history,
        )

    async def _workflow_and_history(
        self, screen: Screen, record: dict[str, Any] | None
    ) -> tuple[list[Move], list[dict[str, Any]]]:
        """The workflow's moves out of the stored ``record``'s state (for its buttons) and
        its audit trail, newest first, without the fields the user may not see."""
        if not record:
            return [], []
        store = screen.store
        model = self.live.current.model
        ctx = self._write_context(screen.session)
        async with self.database.get().connection() as conn:
            moves: list[Move] = []
            if store.workflow is not None and screen.may(Permission.UPDATE):
                moves = await store.workflow_moves(conn, record, ctx)
            entries = await model.audit.history(
                conn,
                store.entity.qualified_name,
                str(record["id"]),
                limit=HISTORY_ENTRIES,
                newest_first=True,
            )
            names = await self.authenticator.identity.usernames(
                conn, {int(e.user_id) for e in entries if e.user_id and e.user_id.isdigit()}
            )
        hidden = screen.access.hidden
        history = [
            {
                "at": dt.datetime.fromtimestamp(entry.at, dt.UTC),
                "user": names.get(entry.user_id or "", "the system"),
                "action": entry.action.value,
                "changes": {k: v for k, v in entry.changes.items() if k not in hidden},
            }
            for entry in entries
        ]
        return moves, history

    def _sections(self, screen: Screen, *, creating: bool) -> list[dict[str, Any]]:
        """The form's sections (from ``forms/``, or one with every field), as widgets; hidden
        fields left out, read-only ones shown but not editable."""
        entity = screen.store.entity
        access = screen.access
        may_write = screen.may(Permission.CREATE if creating else Permission.UPDATE)
        sections = []
        layout = entity.form.sections
        layout_sections: list[tuple[str | None, str | None, int, list[_LaidOut]]]
        if not layout:
            fields: list[_LaidOut] = [(f, None, None, False) for f in entity.fields.values()]
            layout_sections = [(None, None, 1, fields)]
        else:
            layout_sections = [
                (
                    section.name,
                    section.label,
                    section.columns,
                    [
                        (entity.fields[item.field], item.label, item.help, item.read_only)
                        for item in section.fields
                        if item.field in entity.fields
                    ],
                )
                for section in layout
            ]
        for name, label, columns, items in layout_sections:
            widgets = [
                widget_for(
                    field,
                    editable=may_write and not locked and is_writable(field, access),
                    label=item_label,
                    help_text=item_help,
                    columns=self._line_columns(field, may_write and not locked),
                )
                for field, item_label, item_help, locked in items
                if field.name not in access.hidden
            ]
            if widgets:
                sections.append(
                    {"name": name, "label": label, "columns": columns, "widgets": widgets}
                )
        return sections

    def _line_columns(self, field: FieldDef, editable: bool) -> tuple[Widget, ...]:
        """The widgets of a child table's columns: the line entity's fields."""
        if field.type is not FieldType.CHILDREN or field.entity is None:
            return ()
        line = self.live.current.project.entities[field.entity]
        return tuple(
            widget_for(f, editable=editable and is_writable(f, EMPTY_ACCESS))
            for f in line.fields.values()
            if f.type not in {FieldType.CHILDREN, FieldType.JSON}
        )

    async def _reference_titles(
        self, screen: Screen, record: dict[str, Any], sections: list[dict[str, Any]]
    ) -> dict[str, str]:
        """The title of each referenced record the form shows, where the user may read it."""
        titles: dict[str, str] = {}
        model = self.live.current.model
        actor = self._actor(screen.session)
        async with self.database.get().connection() as conn:
            for section in sections:
                for widget in section["widgets"]:
                    value = record.get(widget.name)
                    if widget.kind != "reference" or value in (None, ""):
                        continue
                    target = model.store_for(widget.field.to or "")
                    guard = GuardedStore(target, Caller(actor, actor.roles, model.access))
                    try:
                        linked = await guard.get(conn, _record_id(str(value)))
                    except (RecordNotFound, Forbidden, ApiProblem):
                        titles[widget.name] = f"#{value}"
                        continue
                    titles[widget.name] = str(
                        linked.get(target.entity.title or "id") or f"#{value}"
                    )
        return titles

    @screen
    async def save(
        self, request: Request, pack: str, entity: str, record_id: str | None
    ) -> Response:
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        form = await request.form()
        sections = self._sections(screen, creating=record_id is None)
        widgets: list[Widget] = [w for s in sections for w in s["widgets"]]
        values = record_from_form(form, widgets)
        ctx = self._write_context(session)
        database = self.database.get()
        try:
            async with database.transaction() as conn:
                if record_id is None:
                    saved = await screen.guard.create(conn, values, ctx, None)
                else:
                    version = _version(_text(form.get("version")))
                    saved = await screen.guard.update(
                        conn, _record_id(record_id), values, ctx, expected_version=version
                    )
        except ValidationFailed as exc:
            errors: dict[str, list[str]] = {}
            general = []
            for error in exc.errors:
                root = error.field.split("[", 1)[0] if error.field else ""
                if root in screen.store.entity.fields:
                    errors.setdefault(error.field, []).append(error.message)
                else:
                    general.append(error.message)
            full = await self._stored(screen, record_id)
            shown = {**screen.guard.strip(dict(full)), **values}
            return await self._form_page(
                request, screen, shown, record_id, errors, 422, general=general, full=full
            )
        self.database.committed(ctx)
        location = f"{screen.entity_url}/{saved['id']}?saved=1"
        return RedirectResponse(location, status_code=303)

    async def _stored(self, screen: Screen, record_id: str | None) -> dict[str, Any]:
        """The stored record, hidden fields included (404 unless the user may read it)."""
        if record_id is None:
            return {}
        async with self.database.get().connection() as conn:
            return await screen.guard.readable(conn, _record_id(record_id))

    @screen
    async def delete(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        ctx = self._write_context(session)
        async with self.database.get().transaction() as conn:
            await screen.guard.delete(conn, _record_id(record_id), ctx)
        self.database.committed(ctx)
        return RedirectResponse(f"{screen.entity_url}?deleted=1", status_code=303)

    @screen
    async def bulk_delete(self, request: Request, pack: str, entity: str) -> Response:
        """Delete the ticked records, all or nothing."""
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        form = await request.form()
        ids = [_record_id(v) for v in form.getlist("ids") if isinstance(v, str)]
        if len(ids) > BULK_DELETE_LIMIT:
            raise BadQuery(f"delete at most {BULK_DELETE_LIMIT} records at a time")
        ctx = self._write_context(session)
        if ids:
            async with self.database.get().transaction() as conn:
                for record_id in ids:
                    await screen.guard.delete(conn, record_id, ctx)
            self.database.committed(ctx)
        back = _text(form.get("back")) or ""
        separator = "&" if back else ""
        return RedirectResponse(
            f"{screen.entity_url}?{back}{separator}deleted={len(ids)}", status_code=303
        )

    @screen
    async def export(self, request: Request, pack: str, entity: str) -> Response:
        """The list's current filter as CSV, through the REST API's export (same guard)."""
        session = await self._session(request)
        self._screen_for(session, pack, entity)
        request.scope["tessera.user"] = session.user
        request.scope["path_params"] = {"pack": pack, "entity": entity}
        return await self.live.current.record_api.export(request)

    @screen
    async def conditions(self, request: Request, pack: str, entity: str) -> Response:
        """The form's ``visible_if`` and ``required_if`` for the values typed so far (the
        form asks as the user types)."""
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        form = await request.form()
        values = {
            name: form.getlist(name)[-1]
            for name in screen.store.entity.fields
            if form.getlist(name) and isinstance(form.getlist(name)[-1], str)
        }
        state = screen.store.form_conditions.judge(values, self._actor(session))
        return JSONResponse(
            {
                "hidden_sections": sorted(state.hidden_sections),
                "hidden_fields": sorted(state.hidden_fields),
                "required": sorted(state.required),
            }
        )

    @screen
    async def dashboard(self, request: Request, pack: str, name: str) -> Response:
        """A pack's dashboard: each tile computed through the guard, so every viewer sees
        the figures of the records they may read; a tile they may not see says so."""
        session = await self._session(request)
        dashboard = self.live.current.project.dashboards.get(f"{pack}.{name}")
        if dashboard is None:
            raise UnknownEntity(f"no dashboard '{pack}.{name}'")
        tiles = []
        async with self.database.get().connection() as conn:
            for tile in dashboard.tiles:
                tiles.append(await self._tile(conn, session, tile))
        return await self.render(
            request,
            "dashboard.html",
            session=session,
            title=dashboard.label,
            dashboard=dashboard,
            tiles=tiles,
        )

    async def _tile(self, conn: Any, session: Session, tile: TileDef) -> dict[str, Any]:
        pack, name = tile.entity.split(".", 1)
        screen = self._screen_for(session, pack, name)
        entity = screen.store.entity
        shown: dict[str, Any] = {
            "label": tile.label,
            "kind": tile.kind.value,
            "rows": [],
            "problem": None,
        }
        pairs = list(tile.filter)
        if tile.measure != "count":
            pairs.append(("measures", tile.measure))
        if tile.group_by:
            pairs.append(("group_by", tile.group_by))
            if tile.kind is TileKind.BAR:  # the largest bars, largest first
                pairs += [("sort", "-" + tile.measure), ("limit", str(tile.limit))]
            else:  # a line follows its groups' order
                pairs += [("sort", tile.group_by)]
        try:
            query = screen.store.aggregate_parser.parse(pairs)
            result = await screen.guard.aggregate(conn, query)
        except (Forbidden, BadQuery):
            shown["problem"] = "Not available with your roles."
            return shown
        if tile.kind is TileKind.NUMBER:
            value = result.rows[0][tile.measure] if result.rows else 0
            shown["value"] = display(value) or "0"
            shown["link"] = f"/app/{pack}/{name}?" + urllib.parse.urlencode(list(tile.filter))
            return shown
        assert tile.group_by is not None
        rows = [(row[tile.group_by], row[tile.measure]) for row in result.rows]
        shown["rows"] = rows
        shown["chart"] = bar_chart(rows) if tile.kind is TileKind.BAR else line_chart(rows)
        group_field = entity.fields.get(tile.group_by.partition("__")[0])
        shown["group_label"] = group_field.label if group_field else tile.group_by
        shown["measure_label"] = _measure_label(tile.measure, entity)
        return shown

    @screen
    async def options(self, request: Request, pack: str, entity: str) -> Response:
        """``<option>``s of the records a reference picker may choose, by title search."""
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        screen.access.require(Permission.READ)
        title = screen.store.entity.title or "id"
        q = (request.query_params.get("q") or "").strip()[:100]
        pairs = [("limit", str(OPTIONS_LIMIT)), ("sort", _visible_sort(title, screen.access))]
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
                    records = [await screen.guard.get(conn, _record_id(selected)), *records]
        return await self.render(
            request,
            "options.html",
            session=session,
            records=records,
            title_field=title,
            selected=selected,
            navigation=[],
        )

    # -- workflow moves, kanban, 360° -----------------------------------------------------

    def _boards(self, screen: Screen) -> list[FieldDef]:
        """Fields a kanban can group by: the workflow's field first, then every enum the
        user may see."""
        entity = screen.store.entity
        names = [entity.workflow.field] if entity.workflow is not None else []
        names += [f.name for f in entity.fields.values() if f.type is FieldType.ENUM]
        fields = [entity.fields[n] for n in dict.fromkeys(names) if n in entity.fields]
        return [f for f in fields if f.name not in screen.access.hidden]

    @screen
    async def kanban(self, request: Request, pack: str, entity: str) -> Response:
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        return await self._kanban_page(request, screen, request.query_params.get("by"), None, 200)

    async def _kanban_page(
        self, request: Request, screen: Screen, by: str | None, error: str | None, status: int
    ) -> Response:
        screen.access.require(Permission.READ)
        boards = self._boards(screen)
        if not boards:
            raise BadQuery(f"{screen.store.entity.label_plural} have no enum field to group by")
        preferred = by or screen.store.entity.view.kanban_group_by
        field = next((f for f in boards if f.name == preferred), boards[0])
        values: list[str | None] = list(field.values)
        if not field.required:
            values.append(None)
        title = screen.store.entity.title or "id"
        card = screen.store.entity.view.kanban_card
        if card:
            found = (column(screen.store.entity, name) for name in card)
            others = [c for c in found if c is not None and c.name not in screen.access.hidden]
        else:
            others = [
                c
                for c in list_columns(screen.store.entity, screen.access)
                if c.name not in {field.name, title}
            ][:2]
        columns = []
        async with self.database.get().connection() as conn:
            for value in values:
                condition = (
                    (field.name, value) if value is not None else (f"{field.name}__isnull", "true")
                )
                pairs = [
                    condition,
                    ("limit", str(KANBAN_CARDS)),
                    ("count", "true"),
                    ("sort", _visible_sort(title, screen.access)),
                ]
                result = await screen.guard.list_page(conn, screen.store.parser.parse(pairs))
                if value is None and not result.count:
                    continue  # an "(empty)" column only for records that have no value
                columns.append(
                    {"value": value or "", "records": result.records, "count": result.count or 0}
                )
        return await self.render(
            request,
            "kanban.html",
            status,
            session=screen.session,
            screen=screen,
            entity=screen.store.entity,
            title=f"{screen.store.entity.label_plural} by {field.label.lower()}",
            field=field,
            boards=boards,
            columns=columns,
            title_field=title,
            card_fields=others,
            may_update=screen.may(Permission.UPDATE) and field.name not in screen.access.readonly,
            error=error,
        )

    @screen
    async def move(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        """Set one enum or workflow field (a kanban drop, a workflow button) through the
        same validation, rules and workflow as any save. JSON for scripts, pages otherwise."""
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        form = await request.form()
        name = _text(form.get("field"))
        if name not in {f.name for f in self._boards(screen)}:
            raise BadQuery(f"'{name}' is not a field that can be moved")
        target = _text(form.get("to")) or None
        wants_json = "application/json" in request.headers.get("accept", "")
        ctx = self._write_context(session)
        try:
            async with self.database.get().transaction() as conn:
                saved = await screen.guard.update(
                    conn,
                    _record_id(record_id),
                    {name: target},
                    ctx,
                    expected_version=_version(_text(form.get("version"))),
                )
        except (ValidationFailed, Forbidden, StaleVersion) as exc:
            message = _refusal(exc)
            status = (
                422
                if isinstance(exc, ValidationFailed)
                else 403
                if isinstance(exc, Forbidden)
                else 409
            )
            if wants_json:
                return JSONResponse({"ok": False, "message": message}, status_code=status)
            if _text(form.get("back")).startswith("kanban"):
                return await self._kanban_page(request, screen, name, message, status)
            full = await self._stored(screen, record_id)
            shown = screen.guard.strip(dict(full))
            return await self._form_page(
                request, screen, shown, record_id, {}, status, general=[message], full=full
            )
        self.database.committed(ctx)
        if wants_json:
            return JSONResponse({"ok": True, "version": saved.get("version")})
        if _text(form.get("back")).startswith("kanban"):
            return RedirectResponse(f"{screen.entity_url}/kanban?by={name}", status_code=303)
        return RedirectResponse(f"{screen.entity_url}/{record_id}?saved=1", status_code=303)

    @screen
    async def related(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        """The 360° page: the record, and the records of every entity (in any enabled pack)
        that refer to it, as far as the user may read them."""
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        model = self.live.current.model
        qualified = screen.store.entity.qualified_name
        groups = []
        async with self.database.get().connection() as conn:
            references = [
                f.name
                for f in screen.store.entity.fields.values()
                if f.type is FieldType.REFERENCE
                and f.name not in screen.access.hidden
                and self._readable(session, screen.store, f.name)
            ]
            record = await screen.guard.get(conn, _record_id(record_id), references)
            self._add_titles([record], screen.store, references)
            for store in model.public_stores():
                for field in store.entity.fields.values():
                    if field.type is not FieldType.REFERENCE or field.to != qualified:
                        continue
                    other = self._screen_for(session, store.entity.pack, store.entity.name)
                    if not other.may(Permission.READ) or field.name in other.access.hidden:
                        continue
                    pairs = [
                        (field.name, record_id),
                        ("limit", str(RELATED_ROWS)),
                        ("count", "true"),
                    ]
                    result = await other.guard.list_page(conn, store.parser.parse(pairs))
                    columns = [
                        c for c in list_columns(store.entity, other.access) if c.name != field.name
                    ]
                    groups.append(
                        {
                            "entity": store.entity,
                            "field": field,
                            "records": result.records,
                            "count": result.count or 0,
                            "columns": columns[:5],
                        }
                    )
        entity_def = screen.store.entity
        title = record.get(entity_def.title) if entity_def.title else None
        fields = [
            f
            for f in entity_def.fields.values()
            if f.name not in screen.access.hidden
            and f.type not in {FieldType.CHILDREN, FieldType.JSON}
        ]
        return await self.render(
            request,
            "related.html",
            session=session,
            screen=screen,
            entity=entity_def,
            record=record,
            title=str(title or f"{entity_def.label} #{record_id}"),
            fields=fields,
            groups=groups,
        )


def _measure_label(measure: str, entity: Any) -> str:
    if measure == "count":
        return "Count"
    name, _, function = measure.rpartition("__")
    field = entity.fields.get(name)
    words = {"sum": "Total", "avg": "Average", "min": "Lowest", "max": "Highest"}
    return f"{words.get(function, function)} {(field.label if field else name).lower()}"


def _visible_sort(sort: str | None, access: EntityAccess) -> str:
    """``sort`` without the keys the user may not see (sorting on them is refused); by id
    when nothing is left."""
    if not sort:
        return "id"
    keys = [k for k in sort.split(",") if k.strip().removeprefix("-") not in access.hidden]
    return ",".join(keys) or "id"


def _refusal(exc: EngineError) -> str:
    """Why a write was refused, in one sentence for a message line."""
    if isinstance(exc, ValidationFailed) and exc.errors:
        return "; ".join(error.message for error in exc.errors)
    return exc.detail


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _local(target: str | None) -> str:
    """Only paths of this site's screens are followed after sign-in (no open redirect)."""
    if target and target.startswith("/app") and not target.startswith("//"):
        return target
    return "/app"


def _record_id(text: str) -> int:
    try:
        return parse_id(text)
    except InvalidValue:
        raise RecordNotFound(f"no record with id '{text[:40]}'") from None


def _version(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def _list_params(request: Request) -> list[tuple[str, str]]:
    """The list parameters a screen passes on: ``q``, ``sort``, ``offset`` and filters;
    empty values (an untouched filter input) are dropped."""
    kept = []
    for key, value in request.query_params.multi_items():
        if not value or key in {"saved", "deleted", "limit", "count", "expand", "fields"}:
            continue
        kept.append((key, value))
    return kept


def web_router(ui: WebUI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/", lambda: RedirectResponse("/app", status_code=307), methods=["GET"])
    router.add_api_route("/login", ui.login_form, methods=["GET"])
    router.add_api_route("/login", ui.login, methods=["POST"])
    router.add_api_route("/logout", ui.logout, methods=["POST"])
    router.add_api_route("/app", ui.home, methods=["GET"])
    router.add_api_route("/app/_dashboards/{pack}/{name}", ui.dashboard, methods=["GET"])
    base = "/app/{pack}/{entity}"
    router.add_api_route(base, ui.list_screen, methods=["GET"])
    router.add_api_route(base + "/export.csv", ui.export, methods=["GET"])
    router.add_api_route(base + "/_options", ui.options, methods=["GET"])
    router.add_api_route(base + "/_delete", ui.bulk_delete, methods=["POST"])
    router.add_api_route(base + "/_conditions", ui.conditions, methods=["POST"])
    router.add_api_route(base + "/kanban", ui.kanban, methods=["GET"])
    router.add_api_route(base + "/new", ui.new_form, methods=["GET"])
    router.add_api_route(base + "/new", ui.create, methods=["POST"])
    router.add_api_route(base + "/{record_id}", ui.form_screen, methods=["GET"])
    router.add_api_route(base + "/{record_id}", ui.save, methods=["POST"])
    router.add_api_route(base + "/{record_id}/delete", ui.delete, methods=["POST"])
    router.add_api_route(base + "/{record_id}/move", ui.move, methods=["POST"])
    router.add_api_route(base + "/{record_id}/related", ui.related, methods=["GET"])
    return router
