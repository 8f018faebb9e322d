"""Build the FastAPI application from an instance's definitions.

``create_app()`` is the factory uvicorn calls (``uvicorn runtime.app:create_app --factory``);
it reads ``TESSERA_CONFIG``. Everything definition-driven is compiled here, once.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import logging
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from engine import open_database
from engine.access import Forbidden
from engine.audit import AuditAction, AuditLog
from engine.errors import SchemaChanged
from engine.identity import Identity
from engine.model import dialect_for_url
from runtime.api.auth import auth_router
from runtime.api.customize import customize_router
from runtime.api.docs import install_docs
from runtime.api.meta import meta_router
from runtime.api.methods import method_not_allowed
from runtime.api.openapi import add_entity_paths
from runtime.api.outbox import outbox_router
from runtime.api.problems import install_problem_handlers, problem_response, render_exception
from runtime.api.reports import reports_router
from runtime.auth import Authenticator, needs_authentication, require_admin
from runtime.delivery import make_dispatcher
from runtime.live import LiveDefinitions, load_definitions, watching
from runtime.plumbing import DatabaseHolder
from runtime.schedules import ScheduleRunner
from runtime.settings import Settings
from runtime.shared_auth import shared_auth_for
from runtime.web import install_web

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import Message, Receive, Scope, Send

    from metadata import ProjectDef

VERSION = "0.1.0"
log = logging.getLogger("tessera.security")
http_log = logging.getLogger("tessera.api")
_ANSWERED = "tessera.answered_error"
"""Set in the request scope once an unexpected error has been logged and answered with a
500, so that it is not raised on to the server to be logged a second time."""


__all__ = ["TesseraApp", "build_app", "create_app", "freeze_heap", "load_definitions"]


class TesseraApp(FastAPI):
    """FastAPI for docs, metadata and health; a direct path for the generated API.

    Generated-API requests skip FastAPI's router and per-request middleware layers: the
    path is split once, the handler is found by name, and its response (or the problem
    details of its exception) is sent straight back. Everything else is plain FastAPI.
    Cross-cutting concerns for all requests belong in ASGI middleware around this app.
    """

    def __init__(self, live: LiveDefinitions, authenticator: Authenticator, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.live = live
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            send = _with_security_headers(send, scope["path"])
            try:
                await self._http(scope, receive, send)
            except Exception:
                if not scope.get(_ANSWERED):
                    raise
                # Logged with its traceback and answered 500 already (Starlette raises it on
                # for the server to log; that would be the same error twice).
            return
        await super().__call__(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if needs_authentication(scope["path"]):
            try:
                await self.authenticator.authenticate(scope)
            except Exception as exc:  # noqa: BLE001 - rendered as problem details
                response = await render_exception(Request(scope, receive), exc)
                await response(scope, receive, send)
                return
        handler = self.live.current.record_api.match(scope)
        if handler is not None:
            request = Request(scope, receive)
            try:
                response = await handler(request)
            except ClientDisconnect:
                response = await _client_gone(request, None)
            except Exception as exc:  # noqa: BLE001 - rendered as problem details
                if isinstance(exc, SchemaChanged):
                    self.live.check_soon()
                if isinstance(exc, Forbidden):
                    await self._record_denial(request, exc)
                response = await render_exception(request, exc)
            await response(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _record_denial(self, request: Request, exc: Forbidden) -> None:
        """A 403 of the generated API, in the audit trail and the security log."""
        params = request.path_params
        entity = f"{params.get('pack')}.{params.get('entity')}"
        user = request.scope.get("tessera.user")
        name = getattr(user, "username", "?")
        log.warning("denied: %s %s %s: %s", name, request.method, request.url.path, exc.detail)
        details = {"request": f"{request.method} {request.url.path}", "reason": exc.detail}
        await self.authenticator.record_event(
            AuditAction.DENIED, entity, str(params.get("id", "")), user, details
        )


_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
_API_HEADERS = [
    *_SECURITY_HEADERS,
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


_PAGE_HEADERS = [
    *_SECURITY_HEADERS,
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        b"form-action 'self'; frame-ancestors 'none'",
    ),
]


def _with_security_headers(send: Send, path: str) -> Send:
    """``send`` adding the security headers to the response: for the API and its OpenAPI
    document also a policy that lets nothing run or load (they serve JSON) and no caching
    of their answers; the web UI's pages and the API documentation (``/docs``, ``/redoc``,
    whose scripts and styles this server serves) may load scripts and styles from this
    site only, none inline. A response that sets its own policy keeps it."""
    api = path.startswith("/api/") or path == "/openapi.json"
    extra = _API_HEADERS if api else _PAGE_HEADERS

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            present = {name.lower() for name, _ in headers}
            headers.extend(h for h in extra if h[0] not in present)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


async def _client_gone(request: Request, exc: Exception | None) -> Response:
    """A client that went away before sending its whole request: nothing went wrong here,
    so no error and no traceback in the log; the answer is not read by anyone."""
    http_log.info("client disconnected during %s %s", request.method, request.url.path)
    return problem_response(
        400, "the client disconnected before the request was complete", code="bad-request"
    )


async def _answer_unexpected(request: Request, exc: Exception) -> Response:
    """The 500 of an error no handler expected (logged with its traceback by
    ``render_exception``), marked as answered for ``TesseraApp.__call__``."""
    request.scope[_ANSWERED] = True
    return await render_exception(request, exc)


def _without_telemetry() -> dict[str, Any]:
    """FastAPI releases with native OpenTelemetry wrap every request in tracing middleware,
    on by default. Tessera leaves it off unless an exporter is configured (a later setting);
    older FastAPI releases have no such option."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {
        "telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    }


def build_app(settings: Settings, project: ProjectDef | None = None) -> FastAPI:
    project = project if project is not None else load_definitions(settings)
    holder = DatabaseHolder()
    app_ref: list[FastAPI] = []

    def forget_openapi() -> None:
        for app in app_ref:
            app.openapi_schema = None

    live = LiveDefinitions(settings, project, holder, on_change=forget_openapi)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.database = await open_database(settings.database_url, pool_size=settings.pool_size)
        holder.dispatcher = make_dispatcher(
            settings, holder.database, models=lambda: live.current.model
        )
        await holder.dispatcher.start()
        schedules = None
        if not settings.broker_url:  # with a broker, the workers' beat runs them
            schedules = ScheduleRunner(live, holder, settings.schedule_check_seconds)
            await schedules.start()
        watcher = watching(live, settings.reload_interval) if settings.reload_interval else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(BaseException):
                    await watcher
            if schedules is not None:
                await schedules.stop()
            await holder.dispatcher.stop()
            holder.dispatcher = None
            await authenticator.close()
            await holder.database.close()
            holder.database = None

    dialect = dialect_for_url(settings.database_url)[1]
    # with a Redis broker, several server processes throttle and revoke as one
    shared = shared_auth_for(settings)
    authenticator = Authenticator(
        settings.auth, Identity(dialect), holder, AuditLog(dialect), shared
    )
    app = TesseraApp(
        live,
        authenticator,
        title="Tessera",
        version=VERSION,
        description="Generated REST API for the enabled module packs.",
        lifespan=lifespan,
        docs_url=None,  # install_docs: served from this server, not a CDN
        redoc_url=None,
        **_without_telemetry(),
    )
    app_ref.append(app)
    app.state.live = live
    app.state.settings = settings
    app.state.database = holder
    install_problem_handlers(app)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _answer_unexpected)

    @app.get("/healthz", tags=["Health"], summary="Liveness and database check")
    async def healthz() -> Response:
        database = holder.get()
        async with database.connection() as conn:
            await conn.fetchrow("SELECT 1", ())
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.include_router(auth_router(authenticator))
    install_docs(app)
    app.add_exception_handler(405, method_not_allowed)  # Allow: every method of the path
    install_web(app, live, holder, authenticator)
    app.include_router(meta_router(lambda: live.current.meta))
    app.include_router(reports_router(live, holder))
    admin_only = [Depends(require_admin)]
    app.include_router(customize_router(live), dependencies=admin_only)
    app.include_router(outbox_router(holder), dependencies=admin_only)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            app.openapi_schema = add_entity_paths(document, live.current.model)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def freeze_heap() -> None:
    """For a serving process: everything built at start-up (definitions, tables, compiled
    code, the framework) lives as long as the process, so move it out of the cyclic garbage
    collector's scans. Not for tests, which build many apps in one process."""
    gc.collect()
    gc.freeze()


def create_app() -> FastAPI:
    """The uvicorn factory: ``uvicorn runtime.app:create_app --factory``."""
    app = build_app(Settings.load())
    freeze_heap()
    return app
