"""RFC 9457 problem details for every error, rendered at the edge from typed exceptions."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from engine.access import Forbidden
from engine.errors import (
    AppendOnly,
    BadQuery,
    Conflict,
    EngineError,
    RecordNotFound,
    SchemaChanged,
    StaleVersion,
    UnknownEntity,
    ValidationFailed,
)
from engine.identity import IdentityError

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.requests import Request

log = logging.getLogger("tessera.api")
PROBLEM_TYPE = "application/problem+json"

STATUS_OF: dict[type[EngineError], int] = {
    UnknownEntity: 404,
    RecordNotFound: 404,
    BadQuery: 400,
    ValidationFailed: 422,
    Conflict: 409,
    StaleVersion: 412,
    SchemaChanged: 503,
    Forbidden: 403,
    IdentityError: 400,
    AppendOnly: 405,
}
_TITLES = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    503: "Service unavailable",
    500: "Internal error",
}
_CODES = {
    400: "bad-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
    429: "rate-limited",
    500: "internal",
}


class ApiProblem(Exception):
    """An error detected by the HTTP layer itself (body size, malformed JSON, headers)."""

    def __init__(
        self,
        status: int,
        detail: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code or _CODES.get(status, "error")
        self.headers = headers
        self.errors = errors


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, default=json_default),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def problem_response(
    status: int,
    detail: str,
    *,
    code: str,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,  # the type's last segment, for clients that match on a word
    }
    if errors is not None:
        body["errors"] = errors
    try:
        content = orjson.dumps(body, default=json_default)
    except TypeError:  # a detail echoing a lone surrogate the client sent
        content = orjson.dumps(_printable(body), default=json_default)
    return Response(content, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def _printable(value: Any) -> Any:
    """``value`` with every string's unpaired surrogates written as ``\\udXXX`` escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


async def _engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    status = STATUS_OF.get(type(exc), 400)
    title, code = exc.title, exc.code
    if isinstance(exc, ValidationFailed) and exc.conflict:  # asserts declared status: 409
        status, title = 409, Conflict.title
        code = Conflict.code if code == ValidationFailed.code else code
    errors = None
    if isinstance(exc, (ValidationFailed, Conflict, Forbidden)):
        errors = [e.as_dict() for e in exc.errors] if exc.errors or status == 422 else None
    headers = {"Retry-After": "1"} if status == 503 else None
    return problem_response(
        status, exc.detail, code=code, title=title, errors=errors, headers=headers
    )


async def _api_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiProblem)
    return problem_response(
        exc.status, exc.detail, code=exc.code, headers=exc.headers, errors=exc.errors
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    return problem_response(
        exc.status_code,
        detail,
        code=_CODES.get(exc.status_code, "error"),
        headers=getattr(exc, "headers", None),
    )


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ())[1:]),
            "code": str(e.get("type")),
            "message": str(e.get("msg")),
        }
        for e in exc.errors()
    ]
    return problem_response(400, "invalid request parameters", code="bad-request", errors=errors)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500, "an unexpected error occurred; it has been logged", code="internal"
    )


async def render_exception(request: Request, exc: Exception) -> Response:
    """The problem response for any exception, for code paths outside Starlette's
    exception middleware (the generated API's fast path)."""
    if isinstance(exc, EngineError):
        return await _engine_error(request, exc)
    if isinstance(exc, ApiProblem):
        return await _api_problem(request, exc)
    return await _unexpected(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(EngineError, _engine_error)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
