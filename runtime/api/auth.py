"""``/api/v1/auth``: issue a token for a user name and password, say who a token belongs
to, and revoke the token in use (sign out)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from engine.audit import AuditAction
from runtime.api.bodies import read_json
from runtime.api.problems import ApiProblem, json_response
from runtime.auth import LoginThrottle, client_address, current_user

if TYPE_CHECKING:
    from runtime.auth import Authenticator

log = logging.getLogger("tessera.security")
_MAX_LOGIN_BODY = 4096


def _credentials(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise ApiProblem(400, 'send {"username": ..., "password": ...}')
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise ApiProblem(400, "'username' and 'password' must both be strings")
    return username, password


def auth_router(authenticator: Authenticator, throttle: LoginThrottle) -> APIRouter:
    router = APIRouter(prefix="/api/v1/auth", tags=["Authentication"])
    settings = authenticator.settings

    @router.post(
        "/token",
        summary="Sign in: a bearer token for a user name and password",
        responses={401: {"description": "wrong user name or password"}, 429: {}},
    )
    async def issue(request: Request) -> Response:
        username, password = _credentials(await read_json(request, _MAX_LOGIN_BODY))
        address = client_address(request)
        now = time.time()
        wait = throttle.retry_after(username, address, now)
        if wait is not None:
            log.warning("sign-in throttled: %r from %s", username, address)
            details = {"address": address, "throttled": True}
            await authenticator.record_event(
                AuditAction.LOGIN_FAILED, "auth", username, None, details
            )
            raise ApiProblem(
                429,
                "too many failed sign-ins; try again later",
                headers={"Retry-After": str(max(1, round(wait)))},
            )
        identity = authenticator.identity
        async with authenticator.database.get().transaction() as conn:
            user = await identity.authenticate(conn, username, password)
            if user is not None:
                issued = await identity.issue_token(
                    conn, user, "sign-in", lifetime_seconds=settings.token_hours * 3600
                )
        if user is None:
            throttle.failed(username, address, now)
            log.warning("failed sign-in: %r from %s", username, address)
            await authenticator.record_event(
                AuditAction.LOGIN_FAILED, "auth", username, None, {"address": address}
            )
            raise ApiProblem(
                401,
                "wrong user name or password",
                headers={"WWW-Authenticate": 'Bearer realm="tessera"'},
            )
        throttle.succeeded(username)
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
        identity = authenticator.identity
        async with authenticator.database.get().connection() as conn:
            await identity.revoke_token_text(conn, token)
        authenticator.forget(token)
        return Response(status_code=204)

    return router
