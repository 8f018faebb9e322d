"""``/api/v1/auth``: issue a token for a user name and password, say who a token belongs
to, and revoke the token in use (sign out)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from runtime.api.problems import ApiProblem, json_response
from runtime.auth import client_address, current_user

if TYPE_CHECKING:
    from runtime.auth import Authenticator

log = logging.getLogger("tessera.security")
_MAX_LOGIN_BODY = 4096


async def _login_body(request: Request) -> Any:
    """The sign-in's JSON body, at most ``_MAX_LOGIN_BODY`` bytes. Unlike other bodies
    (``read_json``), text holding an unpaired surrogate (``"\\ud800"``) is not refused
    here: it is a user name no user has (or a wrong password), so the attempt is a failed
    sign-in, throttled and audited like any other."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > _MAX_LOGIN_BODY:
        raise ApiProblem(413, f"the request body is larger than {_MAX_LOGIN_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_LOGIN_BODY:
            raise ApiProblem(413, f"the request body is larger than {_MAX_LOGIN_BODY} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiProblem(400, 'send {"username": ..., "password": ...} as JSON') from None


def _credentials(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise ApiProblem(400, 'send {"username": ..., "password": ...}')
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiProblem(400, "'username' and 'password' must both be strings")
    return username, password


def auth_router(authenticator: Authenticator) -> APIRouter:
    router = APIRouter(prefix="/api/v1/auth", tags=["Authentication"])
    settings = authenticator.settings

    @router.post(
        "/token",
        summary="Sign in: a bearer token for a user name and password",
        responses={401: {"description": "wrong user name or password"}, 429: {}},
    )
    async def issue(request: Request) -> Response:
        username, password = _credentials(await _login_body(request))
        issued = await authenticator.sign_in(username, password, client_address(request), "sign-in")
        return json_response(
            {
                "access_token": issued.token,
                "token_type": "bearer",
                "expires_in": round(settings.token_hours * 3600),
            },
            headers={"Cache-Control": "no-store"},
        )

    @router.get("/me", summary="The user the token belongs to")
    async def me(request: Request) -> Response:
        user = current_user(request)
        return json_response(
            {"data": {"id": str(user.id), "username": user.username, "roles": sorted(user.roles)}}
        )

    @router.post("/revoke", summary="Revoke the token of this request (sign out)", status_code=204)
    async def revoke(request: Request) -> Response:
        current_user(request)
        token = request.headers["authorization"].partition(" ")[2].strip()
        await authenticator.sign_out(token)
        return Response(status_code=204)

    return router
