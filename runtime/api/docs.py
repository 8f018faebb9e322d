"""The API documentation pages: Swagger UI at ``/docs`` and ReDoc at ``/redoc``.

Both load their scripts and styles from this server, never from a CDN: the files come
from the npm packages ``swagger-ui-dist`` and ``redoc`` (pinned by ``package-lock.json``;
``make install`` runs ``npm ci``) and are served under ``/docs/_assets/``, with the small
scripts that start them (no inline script, so the pages run under the web UI's content
security policy). Without the packages the pages say how to install them; ``/openapi.json``
works either way.
"""

from __future__ import annotations

import html
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ASSETS", "DOCS_ASSETS", "install_docs", "missing_assets"]

log = logging.getLogger("tessera.docs")

NODE_MODULES = Path(__file__).resolve().parents[2] / "node_modules"
DOCS_ASSETS = "/docs/_assets/"

_SWAGGER_INIT = """\
"use strict";
// Starts Swagger UI on the document named by the page (no inline script: see the CSP).
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // never ask validator.swagger.io (a third party) to check the document
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
"""

_REDOC_INIT = """\
"use strict";
// Starts ReDoc on the document named by the page; its styles carry the page's nonce.
(function () {
  var root = document.getElementById("redoc");
  Redoc.init(root.dataset.openapi, {nonce: root.dataset.nonce, disableSearch: true}, root);
})();
"""

ASSETS: dict[str, tuple[Path | str, str]] = {
    "swagger-ui.css": (NODE_MODULES / "swagger-ui-dist" / "swagger-ui.css", "text/css"),
    "swagger-ui-bundle.js": (
        NODE_MODULES / "swagger-ui-dist" / "swagger-ui-bundle.js",
        "text/javascript",
    ),
    "redoc.standalone.js": (
        NODE_MODULES / "redoc" / "bundles" / "redoc.standalone.js",
        "text/javascript",
    ),
    "swagger-init.js": (_SWAGGER_INIT, "text/javascript"),
    "redoc-init.js": (_REDOC_INIT, "text/javascript"),
}
"""The documentation pages' files: a path inside ``node_modules`` or the text itself."""

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="data:,">
  {head}
</head>
<body>
  {body}
</body>
</html>
"""

_MISSING = """\
<h1>{title}</h1>
<p>The documentation viewer is not installed on this server: {files} missing from
<code>{folder}</code>. In a source checkout <code>make install</code> (or
<code>npm ci</code>) installs it. The OpenAPI document is at
<a href="{openapi}">{openapi}</a>.</p>
"""

# ReDoc's styled-components write <style> elements: the page's CSP allows those that carry
# its nonce, and nothing else inline. Otherwise the web UI's policy.
_REDOC_CSP = (
    "default-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def missing_assets(names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` whose files are not installed."""
    missing = []
    for name in names:
        source = ASSETS[name][0]
        if isinstance(source, Path) and not source.is_file():
            missing.append(name)
    return missing


def _page(title: str, head: str, body: str, missing: list[str], openapi: str) -> str:
    if missing:
        body = _MISSING.format(
            title=html.escape(title),
            files=html.escape(", ".join(missing)),
            folder=html.escape(str(NODE_MODULES)),
            openapi=html.escape(openapi),
        )
        head = ""
    return _PAGE.format(title=html.escape(title), head=head, body=body)


def install_docs(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Add ``/docs``, ``/redoc`` and their files to ``app``."""
    swagger_files = ("swagger-ui.css", "swagger-ui-bundle.js")
    redoc_files = ("redoc.standalone.js",)
    missing = missing_assets(swagger_files + redoc_files)
    if missing:
        log.warning(
            "API documentation assets %s are not installed in %s (run make install or "
            "npm ci): /docs and /redoc say so; /openapi.json works",
            ", ".join(missing),
            NODE_MODULES,
        )

    def prefixed(request: Request, path: str) -> str:
        root: str = request.scope.get("root_path", "")
        return root.rstrip("/") + path

    async def swagger_ui(request: Request) -> Response:
        assets = prefixed(request, DOCS_ASSETS)
        openapi = prefixed(request, openapi_url)
        head = f'<link rel="stylesheet" href="{assets}swagger-ui.css">'
        body = (
            f'<div id="swagger-ui" data-openapi="{html.escape(openapi)}"></div>\n'
            f'  <script src="{assets}swagger-ui-bundle.js"></script>\n'
            f'  <script src="{assets}swagger-init.js"></script>'
        )
        title = f"{app.title} - API reference"
        return HTMLResponse(_page(title, head, body, missing_assets(swagger_files), openapi))

    async def redoc(request: Request) -> Response:
        assets = prefixed(request, DOCS_ASSETS)
        openapi = prefixed(request, openapi_url)
        nonce = secrets.token_urlsafe(18)
        body = (
            f'<div id="redoc" data-openapi="{html.escape(openapi)}" data-nonce="{nonce}"></div>\n'
            f'  <script src="{assets}redoc.standalone.js"></script>\n'
            f'  <script src="{assets}redoc-init.js"></script>'
        )
        title = f"{app.title} - API reference"
        page = _page(title, "", body, missing_assets(redoc_files), openapi)
        return HTMLResponse(
            page, headers={"content-security-policy": _REDOC_CSP.format(nonce=nonce)}
        )

    async def asset(name: str) -> Response:
        entry = ASSETS.get(name)
        if entry is None:
            return PlainTextResponse("not found", status_code=404)
        source, media_type = entry
        headers = {"cache-control": "max-age=3600"}
        if isinstance(source, str):
            return Response(source, media_type=media_type, headers=headers)
        if not source.is_file():
            return PlainTextResponse(
                f"{name} is not installed (make install or npm ci)", status_code=404
            )
        return FileResponse(source, media_type=media_type, headers=headers)

    app.add_api_route("/docs", swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.add_api_route(DOCS_ASSETS + "{name}", asset, methods=["GET"], include_in_schema=False)
