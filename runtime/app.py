"""Build the FastAPI application from an instance's definitions.

``create_app()`` is the factory uvicorn calls (``uvicorn runtime.app:create_app --factory``);
it reads ``TESSERA_CONFIG``. Everything definition-driven is compiled here, once.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from engine import open_database
from engine.errors import SchemaChanged
from runtime.api.customize import customize_router
from runtime.api.meta import meta_router
from runtime.api.openapi import add_entity_paths
from runtime.api.outbox import outbox_router
from runtime.api.problems import install_problem_handlers, render_exception
from runtime.api.records import DatabaseHolder
from runtime.delivery import make_dispatcher
from runtime.live import LiveDefinitions, load_definitions, watching
from runtime.schedules import ScheduleRunner
from runtime.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.types import Receive, Scope, Send

    from metadata import ProjectDef

VERSION = "0.1.0"


__all__ = ["TesseraApp", "build_app", "create_app", "freeze_heap", "load_definitions"]


class TesseraApp(FastAPI):
    """FastAPI for docs, metadata and health; a direct path for the generated API.

    Generated-API requests skip FastAPI's router and per-request middleware layers: the
    path is split once, the handler is found by name, and its response (or the problem
    details of its exception) is sent straight back. Everything else is plain FastAPI.
    Cross-cutting concerns for all requests belong in ASGI middleware around this app.
    """

    def __init__(self, live: LiveDefinitions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.live.current.record_api.match(scope)
            if handler is not None:
                request = Request(scope, receive)
                try:
                    response = await handler(request)
                except Exception as exc:  # noqa: BLE001 - rendered as problem details
                    if isinstance(exc, SchemaChanged):
                        self.live.check_soon()
                    response = await render_exception(request, exc)
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


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
            await holder.database.close()
            holder.database = None

    app = TesseraApp(
        live,
        title="Tessera",
        version=VERSION,
        description="Generated REST API for the enabled module packs.",
        lifespan=lifespan,
        **_without_telemetry(),
    )
    app_ref.append(app)
    app.state.live = live
    app.state.settings = settings
    app.state.database = holder
    install_problem_handlers(app)

    @app.get("/healthz", tags=["Health"], summary="Liveness and database check")
    async def healthz() -> Response:
        database = holder.get()
        async with database.connection() as conn:
            await conn.fetchrow("SELECT 1", ())
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.include_router(meta_router(lambda: live.current.meta))
    app.include_router(customize_router(live))
    app.include_router(outbox_router(holder))

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
