"""The generated screens (SPEC §6): sign-in, navigation, a list and a form for every entity.

Server-rendered with Jinja2; every page works without JavaScript, htmx makes searches and
pickers live. Each request acts for the signed-in user through the engine's guard, the
same single place that enforces roles for the REST API, so a screen can show no more than
the API would answer.
"""

from __future__ import annotations

import contextlib
import functools
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from engine import EngineError, WriteContext
from engine.access import Forbidden
from engine.errors import BadQuery, RecordNotFound, UnknownEntity, ValidationFailed
from engine.expressions import Actor
from engine.fieldtypes import InvalidValue, parse_id
from engine.guard import Caller, GuardedStore
from metadata import FieldType, Permission
from runtime.api.problems import ApiProblem
from runtime.auth import client_address
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
    is_writable,
    list_columns,
    record_from_form,
    widget_for,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine import EntityStore
    from engine.access import EntityAccess
    from metadata import FieldDef
    from runtime.api.records import DatabaseHolder
    from runtime.auth import Authenticator
    from runtime.live import LiveDefinitions

PAGE_SIZE = 25
OPTIONS_LIMIT = 50
_LIST_KEYS = ("q", "sort", "offset")
_STATUS_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


_LaidOut = tuple["FieldDef", str | None, str | None, bool]
"""A field on a form: its definition, the form's label and help for it, whether the form
makes it read-only."""


class PageRedirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


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


def _screen(
    handler: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Engine errors become error pages (never a traceback); a missing session, the sign-in
    page."""

    @functools.wraps(handler)
    async def run(self: WebUI, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return await handler(self, request, *args, **kwargs)
        except PageRedirect as redirect:
            return RedirectResponse(redirect.location, status_code=303)
        except (UnknownEntity, RecordNotFound) as exc:
            return await self.error_page(request, 404, exc.detail)
        except Forbidden as exc:
            return await self.error_page(request, 403, exc.detail)
        except BadQuery as exc:
            return await self.error_page(request, 400, exc.detail)
        except ApiProblem as exc:
            return await self.error_page(request, exc.status, exc.detail)
        except EngineError as exc:
            return await self.error_page(request, 409, exc.detail)

    return run


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
        if not same_secret(await csrf_given(request), session.csrf):
            raise ApiProblem(403, "the form has expired or did not come from this site: reload")
        return session

    def _screen_for(self, session: Session, pack: str, name: str) -> Screen:
        model = self.live.current.model
        store = model.store(pack, name)
        actor = self._actor(session)
        guard = GuardedStore(store, Caller(actor, actor.roles, model.access))
        return Screen(session, store, guard, guard.access)

    def _actor(self, session: Session) -> Actor:
        user = session.user
        closure = self.live.current.project.role_closure(user.roles)
        return Actor(str(user.id), user.username, closure)

    async def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        session = context.get("session")
        context.setdefault("navigation", self._navigation(session) if session else [])
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
            if entities:
                groups.append({"module": module, "entities": entities})
        return groups

    # -- sign-in ----------------------------------------------------------------------------

    @_screen
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

    @_screen
    async def login(self, request: Request) -> Response:
        form = await request.form()
        nonce = request.cookies.get("tessera_login")
        if nonce is None or not same_secret(_text(form.get("nonce")), nonce):
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
        response = RedirectResponse(_local(_text(form.get("next"))), status_code=303)
        max_age = round(self.authenticator.settings.token_hours * 3600)
        set_session_cookie(response, request, issued.token, max_age)
        response.delete_cookie("tessera_login", path="/login")
        return response

    @_screen
    async def logout(self, request: Request) -> Response:
        session = await self._checked(request)
        await self.authenticator.sign_out(session.token)
        response = RedirectResponse("/login", status_code=303)
        clear_session_cookie(response, request)
        return response

    # -- screens ----------------------------------------------------------------------------

    @_screen
    async def home(self, request: Request) -> Response:
        session = await self._session(request)
        return await self.render(request, "home.html", session=session, title="Home")

    @_screen
    async def list_screen(self, request: Request, pack: str, entity: str) -> Response:
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        screen.access.require(Permission.READ)
        params = _list_params(request)
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

    @_screen
    async def form_screen(
        self, request: Request, pack: str, entity: str, record_id: str | None
    ) -> Response:
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        record: dict[str, Any] = {}
        if record_id is None:
            screen.access.require(Permission.CREATE)
        else:
            async with self.database.get().connection() as conn:
                record = await screen.guard.get(conn, _record_id(record_id))
        return await self._form_page(request, screen, record, record_id, {}, 200)

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
    ) -> Response:
        sections = self._sections(screen, creating=record_id is None)
        titles = await self._reference_titles(screen, record, sections)
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
        )

    def _sections(self, screen: Screen, *, creating: bool) -> list[dict[str, Any]]:
        """The form's sections (from ``forms/``, or one with every field), as widgets; hidden
        fields left out, read-only ones shown but not editable."""
        entity = screen.store.entity
        access = screen.access
        may_write = screen.may(Permission.CREATE if creating else Permission.UPDATE)
        sections = []
        layout = entity.form.sections
        layout_sections: list[tuple[str | None, int, list[_LaidOut]]]
        if not layout:
            fields: list[_LaidOut] = [(f, None, None, False) for f in entity.fields.values()]
            layout_sections = [(None, 1, fields)]
        else:
            layout_sections = [
                (
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
        for label, columns, items in layout_sections:
            widgets = [
                widget_for(
                    field,
                    editable=may_write and not locked and is_writable(field, access),
                    label=item_label,
                    help_text=item_help,
                )
                for field, item_label, item_help, locked in items
                if field.name not in access.hidden
            ]
            if widgets:
                sections.append({"label": label, "columns": columns, "widgets": widgets})
        return sections

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

    @_screen
    async def save(
        self, request: Request, pack: str, entity: str, record_id: str | None
    ) -> Response:
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        form = await request.form()
        sections = self._sections(screen, creating=record_id is None)
        widgets: list[Widget] = [w for s in sections for w in s["widgets"]]
        values = record_from_form(form, widgets)
        ctx = WriteContext(user=self._actor(session), roles=self._actor(session).roles)
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
                if error.field and error.field in screen.store.entity.fields:
                    errors.setdefault(error.field, []).append(error.message)
                else:
                    general.append(error.message)
            shown = {**await self._stored(screen, record_id), **values}
            return await self._form_page(
                request, screen, shown, record_id, errors, 422, general=general
            )
        self.database.committed(ctx)
        location = f"{screen.entity_url}/{saved['id']}?saved=1"
        return RedirectResponse(location, status_code=303)

    async def _stored(self, screen: Screen, record_id: str | None) -> dict[str, Any]:
        if record_id is None:
            return {}
        async with self.database.get().connection() as conn:
            return await screen.guard.get(conn, _record_id(record_id))

    @_screen
    async def delete(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        ctx = WriteContext(user=self._actor(session), roles=self._actor(session).roles)
        async with self.database.get().transaction() as conn:
            await screen.guard.delete(conn, _record_id(record_id), ctx)
        self.database.committed(ctx)
        return RedirectResponse(f"{screen.entity_url}?deleted=1", status_code=303)

    @_screen
    async def bulk_delete(self, request: Request, pack: str, entity: str) -> Response:
        """Delete the ticked records, all or nothing."""
        session = await self._checked(request)
        screen = self._screen_for(session, pack, entity)
        form = await request.form()
        ids = [_record_id(v) for v in form.getlist("ids") if isinstance(v, str)]
        ctx = WriteContext(user=self._actor(session), roles=self._actor(session).roles)
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

    @_screen
    async def export(self, request: Request, pack: str, entity: str) -> Response:
        """The list's current filter as CSV, through the REST API's export (same guard)."""
        session = await self._session(request)
        self._screen_for(session, pack, entity)
        request.scope["tessera.user"] = session.user
        request.scope["path_params"] = {"pack": pack, "entity": entity}
        return await self.live.current.record_api.export(request)

    @_screen
    async def options(self, request: Request, pack: str, entity: str) -> Response:
        """``<option>``s of the records a reference picker may choose, by title search."""
        session = await self._session(request)
        screen = self._screen_for(session, pack, entity)
        screen.access.require(Permission.READ)
        title = screen.store.entity.title or "id"
        q = (request.query_params.get("q") or "").strip()[:100]
        pairs = [("limit", str(OPTIONS_LIMIT)), ("sort", title)]
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
    return int(text) if text.isdigit() else None


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
    base = "/app/{pack}/{entity}"
    router.add_api_route(base, ui.list_screen, methods=["GET"])
    router.add_api_route(base + "/export.csv", ui.export, methods=["GET"])
    router.add_api_route(base + "/_options", ui.options, methods=["GET"])
    router.add_api_route(base + "/_delete", ui.bulk_delete, methods=["POST"])
    router.add_api_route(base + "/new", ui.new_form, methods=["GET"])
    router.add_api_route(base + "/new", ui.create, methods=["POST"])
    router.add_api_route(base + "/{record_id}", ui.form_screen, methods=["GET"])
    router.add_api_route(base + "/{record_id}", ui.save, methods=["POST"])
    router.add_api_route(base + "/{record_id}/delete", ui.delete, methods=["POST"])
    return router
