"""What every screen shares: the signed-in session (and its CSRF check), the entity as the
user may use it (:class:`Screen`), page rendering with the navigation, and the helpers that
read form values."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from starlette.responses import HTMLResponse

from engine.errors import RecordNotFound, ValidationFailed
from engine.fieldtypes import InvalidValue, parse_id
from metadata import ADMIN_ROLE, Permission
from runtime.api.problems import ApiProblem
from runtime.formatting import Formats, Readers
from runtime.plumbing import actor_of, guard_for, write_context
from runtime.web.handling import PageRedirect, limit_body
from runtime.web.pages import Pages
from runtime.web.session import Session, csrf_given, same_secret, session_of

if TYPE_CHECKING:
    from fastapi import Request

    from engine import EngineError, EntityStore, WriteContext
    from engine.access import EntityAccess
    from engine.expressions import Actor
    from engine.guard import GuardedStore
    from runtime.auth import Authenticator
    from runtime.live import LiveDefinitions
    from runtime.plumbing import DatabaseHolder


_STATUS_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}


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
    """What every family of screens shares, one per app: the live definitions, the
    database, the authenticator, the templates; the signed-in session of a request and
    the entity as that user may use it."""

    def __init__(
        self, live: LiveDefinitions, database: DatabaseHolder, authenticator: Authenticator
    ) -> None:
        self.live = live
        self.database = database
        self.authenticator = authenticator
        self.pages = Pages()

    # -- sessions ---------------------------------------------------------------------------

    async def session(self, request: Request) -> Session:
        session = await session_of(request, self.authenticator)
        if session is None:
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            raise PageRedirect("/login?" + urllib.parse.urlencode({"next": target}))
        return session

    async def checked(self, request: Request) -> Session:
        """The session of a state-changing request, whose CSRF token must match it."""
        session = await self.session(request)
        await limit_body(request, self.live.settings.max_body_bytes)
        if not same_secret(await csrf_given(request), session.csrf):
            raise ApiProblem(403, "the form has expired or did not come from this site: reload")
        return session

    def screen_for(self, session: Session, pack: str, name: str) -> Screen:
        model = self.live.current.model
        store = model.store(pack, name)
        guard = guard_for(store, self.actor(session), model)
        return Screen(session, store, guard, guard.access)

    def formats(self, session: Session | None) -> Formats:
        """How the signed-in user reads values: their locale and time zone, else the
        instance's (docs/locales.md)."""
        settings = self.live.settings
        user = session.user if session is not None else None
        return Readers(settings.locale, settings.timezone, settings.company.currency).of(user)

    def write_context(self, session: Session) -> WriteContext:
        return write_context(self.actor(session))

    def actor(self, session: Session) -> Actor:
        """The signed-in user, with every role they hold (inherited ones included)."""
        return actor_of(session.user, self.live.current.model)

    async def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        session = context.get("session")
        context.setdefault("navigation", self._navigation(session) if session else [])
        context.setdefault(
            "is_admin", session is not None and ADMIN_ROLE in self.actor(session).roles
        )
        context.setdefault("formats", self.formats(session))
        html = self.pages.render(template, request=request, **context)
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    async def error_page(self, request: Request, status: int, detail: str) -> HTMLResponse:
        session = await session_of(request, self.authenticator)
        title = _STATUS_TITLES.get(status, "Error")
        return await self.render(
            request, "error.html", status, session=session, title=title, detail=detail
        )

    def _navigation(self, session: Session) -> list[dict[str, Any]]:
        """Packs with the dashboards, the reports and the entities the user may use, in
        definition order."""
        project = self.live.current.project
        model = self.live.current.model
        readable = model.access.readable_entities(self.actor(session).roles)
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
            reports = [
                r.definition
                for r in model.reports.values()
                if r.definition.pack == module.name and r.may_run(self.actor(session).roles)
            ]
            if entities or dashboards or reports:
                groups.append(
                    {
                        "module": module,
                        "entities": entities,
                        "dashboards": dashboards,
                        "reports": reports,
                    }
                )
        return groups

    async def stored(self, screen: Screen, record_id: str | None) -> dict[str, Any]:
        """The stored record, hidden fields included (404 unless the user may read it)."""
        if record_id is None:
            return {}
        async with self.database.get().connection() as conn:
            return await screen.guard.readable(conn, parse_record_id(record_id))


Route = tuple[str, str, str]
"""A family's route: HTTP method, path, the name of the handler method."""


class Family:
    """A family of screens (sign-in, lists, forms, ...): handlers that act through the web
    UI's sessions, guard and templates. ``web_router`` makes one of each and routes
    ``routes`` to its handlers, in order (a literal path before a ``{parameter}`` one that
    would match it too)."""

    routes: ClassVar[tuple[Route, ...]] = ()

    def __init__(self, ui: WebUI) -> None:
        self.ui = ui
        self.live = ui.live
        self.database = ui.database
        self.authenticator = ui.authenticator

    async def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        return await self.ui.render(request, template, status, **context)

    async def error_page(self, request: Request, status: int, detail: str) -> HTMLResponse:
        return await self.ui.error_page(request, status, detail)


def visible_sort(sort: str | None, access: EntityAccess) -> str:
    """``sort`` without the keys the user may not see (sorting on them is refused); by id
    when nothing is left."""
    if not sort:
        return "id"
    keys = [k for k in sort.split(",") if k.strip().removeprefix("-") not in access.hidden]
    return ",".join(keys) or "id"


def refusal(exc: EngineError) -> str:
    """Why a write was refused, in one sentence for a message line."""
    if isinstance(exc, ValidationFailed) and exc.errors:
        return "; ".join(error.message for error in exc.errors)
    return exc.detail


def form_text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_record_id(text: str) -> int:
    try:
        return parse_id(text)
    except InvalidValue:
        raise RecordNotFound(f"no record with id '{text[:40]}'") from None


def form_version(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 12 else None


def list_params(request: Request) -> list[tuple[str, str]]:
    """The list parameters a screen passes on: ``q``, ``sort``, ``offset`` and filters;
    empty values (an untouched filter input) are dropped."""
    kept = []
    for key, value in request.query_params.multi_items():
        if not value or key in {"saved", "deleted", "limit", "count", "expand", "fields"}:
            continue
        kept.append((key, value))
    return kept
