"""Build the FastAPI application from an instance's definitions.

``create_app()`` is the factory uvicorn calls (``uvicorn runtime.app:create_app --factory``);
it reads ``TESSERA_CONFIG``. Everything definition-driven is compiled here, once.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from starlette.responses import Response

from engine import EngineModel, open_database
from metadata import load_project
from runtime.api.meta import meta_router
from runtime.api.openapi import add_entity_paths
from runtime.api.problems import install_problem_handlers
from runtime.api.records import DatabaseHolder, RecordApi
from runtime.settings import Settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from metadata import ProjectDef

VERSION = "0.1.0"


def load_definitions(settings: Settings) -> ProjectDef:
    return load_project(
        settings.modules,
        settings.search_paths,
        config_name=str(settings.config_path or "tessera.yaml"),
    )


def build_app(settings: Settings, project: ProjectDef | None = None) -> FastAPI:
    project = project if project is not None else load_definitions(settings)
    model = EngineModel.for_url(project, settings.database_url)
    holder = DatabaseHolder()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder.database = await open_database(settings.database_url, pool_size=settings.pool_size)
        try:
            yield
        finally:
            await holder.database.close()
            holder.database = None

    app = FastAPI(
        title="Tessera",
        version=VERSION,
        description="Generated REST API for the enabled module packs.",
        lifespan=lifespan,
    )
    app.state.model = model
    app.state.settings = settings
    app.state.database = holder
    install_problem_handlers(app)

    @app.get("/healthz", tags=["Health"], summary="Liveness and database check")
    async def healthz() -> Response:
        database = holder.get()
        async with database.connection() as conn:
            await conn.fetchrow("SELECT 1", ())
        return Response(b'{"status":"ok"}', media_type="application/json")

    app.include_router(meta_router(model))
    app.router.routes.extend(RecordApi(model, holder, max_body=settings.max_body_bytes).routes())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = FastAPI.openapi(app)
            app.openapi_schema = add_entity_paths(document, model)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def create_app() -> FastAPI:
    return build_app(Settings.load())
