"""How a screen's request ends when it cannot show what was asked: a redirect (to sign
in) or an error page; never a traceback."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import RedirectResponse

from engine import EngineError
from engine.access import Forbidden
from engine.errors import BadQuery, RecordNotFound, UnknownEntity
from runtime.api.problems import ApiProblem

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from starlette.requests import Request
    from starlette.responses import Response


class PageRedirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class ShowsErrors(Protocol):
    async def error_page(self, request: Request, status: int, detail: str) -> Response: ...


def screen(
    handler: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Engine errors become error pages (never a traceback); a missing session, the sign-in
    page."""

    @functools.wraps(handler)
    async def run(self: ShowsErrors, request: Request, *args: Any, **kwargs: Any) -> Response:
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


async def limit_body(request: Request, limit: int) -> None:
    """Read the request's body, refusing more than ``limit`` bytes (413), before anything
    parses it as a form; Starlette then parses the body read here."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ApiProblem(413, f"the form is larger than {limit} bytes")
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise ApiProblem(413, f"the form is larger than {limit} bytes")
    request._body = bytes(received)
