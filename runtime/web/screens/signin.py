"""Signing in and out: the sign-in form (double-submit nonce), the session cookie, and
the redirect back to the page that asked for it (this site's screens only)."""

from __future__ import annotations

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import RedirectResponse, Response

from runtime.api.problems import ApiProblem
from runtime.auth import client_address
from runtime.web.handling import limit_body, screen
from runtime.web.screens.base import Family, form_text
from runtime.web.session import (
    clear_session_cookie,
    login_nonce,
    same_secret,
    session_of,
    set_login_cookie,
    set_session_cookie,
)

LOGIN_BODY_LIMIT = 8192


class SignIn(Family):
    routes = (
        ("GET", "/login", "login_form"),
        ("POST", "/login", "login"),
        ("POST", "/logout", "logout"),
    )

    @screen
    async def login_form(self, request: Request) -> Response:
        if await session_of(request, self.authenticator) is not None:
            return RedirectResponse(_local(request.query_params.get("next")), status_code=303)
        return await self._login_page(request, None, 200)

    async def _login_page(self, request: Request, error: str | None, status: int) -> Response:
        nonce = login_nonce(request)
        response = await self.render(
            request,
            "login.html",
            status,
            session=None,
            title="Sign in",
            nonce=nonce,
            error=error,
            next=_local(request.query_params.get("next")),
        )
        set_login_cookie(response, request, nonce)
        return response

    @screen
    async def login(self, request: Request) -> Response:
        await limit_body(request, LOGIN_BODY_LIMIT)
        form = await request.form()
        nonce = request.cookies.get("tessera_login")
        if not nonce or not same_secret(form_text(form.get("nonce")), nonce):
            return await self._login_page(request, "The form expired; please try again.", 400)
        username, password = form_text(form.get("username")), form_text(form.get("password"))
        if not username or not password:
            return await self._login_page(request, "Enter your user name and password.", 400)
        try:
            issued = await self.authenticator.sign_in(
                username, password, client_address(request), "web session"
            )
        except ApiProblem as exc:
            message = "Wrong user name or password." if exc.status == 401 else exc.detail
            return await self._login_page(request, message, exc.status)
        next_page = _local(form_text(form.get("next")))
        if any("\ud800" <= c <= "\udfff" for c in next_page):  # not text: no URL
            next_page = "/app"
        response = RedirectResponse(next_page, status_code=303)
        max_age = round(self.authenticator.settings.token_hours * 3600)
        set_session_cookie(response, request, issued.token, max_age)
        response.delete_cookie("tessera_login", path="/login")
        return response

    @screen
    async def logout(self, request: Request) -> Response:
        session = await self.ui.checked(request)
        await self.authenticator.sign_out(session.token)
        response = RedirectResponse("/login", status_code=303)
        clear_session_cookie(response, request)
        return response


def _local(target: str | None) -> str:
    """Only paths of this site's screens are followed after sign-in (no open redirect)."""
    if target and target.startswith("/app") and not target.startswith("//"):
        return target
    return "/app"
