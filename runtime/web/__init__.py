"""The web UI (SPEC §6): server-rendered screens at ``/app``, sign-in at ``/login``, and
their static files. ``install_web`` adds them to the application."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles

from runtime.web.designer import Designer
from runtime.web.screens import WebUI, web_router

if TYPE_CHECKING:
    from fastapi import FastAPI

    from runtime.auth import Authenticator
    from runtime.live import LiveDefinitions
    from runtime.plumbing import DatabaseHolder

__all__ = ["VENDOR_FILES", "install_web"]

log = logging.getLogger("tessera.web")

STATIC = Path(__file__).parent / "static"
NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
VENDOR_FILES = {"htmx.min.js": NODE_MODULES / "htmx.org" / "dist" / "htmx.min.js"}
"""Browser libraries from the npm registry (``package-lock.json``; ``make install`` runs
``npm ci``), served under ``/static/vendor/``."""


def install_web(
    app: FastAPI, live: LiveDefinitions, database: DatabaseHolder, authenticator: Authenticator
) -> None:
    missing = [name for name, path in VENDOR_FILES.items() if not path.is_file()]
    if missing:
        log.warning(
            "web UI assets %s are not installed (run make install or npm ci): the screens "
            "work, without live search and pickers",
            ", ".join(missing),
        )

    async def vendor(name: str) -> Response:
        path = VENDOR_FILES.get(name)
        if path is None or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(
            path, media_type="text/javascript", headers={"cache-control": "max-age=3600"}
        )

    app.add_api_route("/static/vendor/{name}", vendor, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    ui = WebUI(live, database, authenticator)
    designer = Designer(ui)
    app.add_api_route("/app/_designer", designer.home, methods=["GET"], include_in_schema=False)
    base = "/app/_designer/{pack}/{entity}"
    app.add_api_route(base, designer.entity_page, methods=["GET"], include_in_schema=False)
    app.add_api_route(base + "/{kind}", designer.change, methods=["POST"], include_in_schema=False)
    app.include_router(web_router(ui))
