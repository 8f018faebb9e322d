"""405 Method Not Allowed with a correct ``Allow`` header for the application's routes.

Starlette answers a method a route does not take with the methods of the first route whose
path matched; when two routes share a path (``PATCH`` and ``DELETE`` of
``/api/v1/_meta/entities/{qualified}/fields/{name}``) that header leaves the other's out.
Here it lists every method any route answers at the path. The generated API computes its
own (runtime/api/records.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Match

from runtime.api.problems import problem_response

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the request's application answers at its path, found by
    asking the routes (included routers too) about the path with each method."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """The 405 problem, its ``Allow`` naming every method the path answers."""
    allowed = ", ".join(allowed_methods(request))
    return problem_response(
        405,
        f"{request.method} is not allowed here; use one of {allowed}",
        code="method-not-allowed",
        headers={"Allow": allowed},
    )
