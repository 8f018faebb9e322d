"""The generated screens (SPEC §6): sign-in, navigation, a list and a form for every entity.

Server-rendered with Jinja2; every page works without JavaScript, htmx makes searches and
pickers live. Each request acts for the signed-in user through the engine's guard, the
same single place that enforces roles for the REST API, so a screen can show no more than
the API would answer.

One module per family of screens, each a :class:`~runtime.web.screens.base.Family` of
handlers: ``signin`` (sign-in and out), ``lists`` (home, lists, pickers, export, bulk
delete), ``forms`` (a record's form, save, delete), ``boards`` (kanban and moves),
``dashboards`` and ``related`` (the 360° page). ``base`` holds what they share: the
session, :class:`Screen` and rendering. :func:`web_router` routes the URLs to them.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import RedirectResponse

from runtime.web.screens.base import Screen, WebUI
from runtime.web.screens.boards import Boards
from runtime.web.screens.dashboards import Dashboards
from runtime.web.screens.forms import Forms
from runtime.web.screens.lists import Lists
from runtime.web.screens.related import Related
from runtime.web.screens.signin import SignIn

__all__ = ["Screen", "WebUI", "web_router"]


def web_router(ui: WebUI) -> APIRouter:
    signin, lists, forms = SignIn(ui), Lists(ui), Forms(ui)
    boards, dashboards, related = Boards(ui, forms), Dashboards(ui), Related(ui)
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/", lambda: RedirectResponse("/app", status_code=307), methods=["GET"])
    router.add_api_route("/login", signin.login_form, methods=["GET"])
    router.add_api_route("/login", signin.login, methods=["POST"])
    router.add_api_route("/logout", signin.logout, methods=["POST"])
    router.add_api_route("/app", lists.home, methods=["GET"])
    router.add_api_route("/app/_dashboards/{pack}/{name}", dashboards.dashboard, methods=["GET"])
    base = "/app/{pack}/{entity}"
    router.add_api_route(base, lists.list_screen, methods=["GET"])
    router.add_api_route(base + "/export.csv", lists.export, methods=["GET"])
    router.add_api_route(base + "/_options", lists.options, methods=["GET"])
    router.add_api_route(base + "/_delete", lists.bulk_delete, methods=["POST"])
    router.add_api_route(base + "/_conditions", forms.conditions, methods=["POST"])
    router.add_api_route(base + "/kanban", boards.kanban, methods=["GET"])
    router.add_api_route(base + "/new", forms.new_form, methods=["GET"])
    router.add_api_route(base + "/new", forms.create, methods=["POST"])
    router.add_api_route(base + "/{record_id}", forms.form_screen, methods=["GET"])
    router.add_api_route(base + "/{record_id}", forms.save, methods=["POST"])
    router.add_api_route(base + "/{record_id}/delete", forms.delete, methods=["POST"])
    router.add_api_route(base + "/{record_id}/move", boards.move, methods=["POST"])
    router.add_api_route(base + "/{record_id}/related", related.related, methods=["GET"])
    return router
