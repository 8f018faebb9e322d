"""The generated screens (SPEC §6): sign-in, navigation, a list and a form for every entity.

Server-rendered with Jinja2; every page works without JavaScript, htmx makes searches and
pickers live. Each request acts for the signed-in user through the engine's guard, the
same single place that enforces roles for the REST API, so a screen can show no more than
the API would answer.

One module per family of screens, each a :class:`~runtime.web.screens.base.Family` of
handlers: ``signin`` (sign-in and out), ``lists`` (home, lists, pickers, export, bulk
delete), ``forms`` (a record's form, save, delete), ``files`` (a record's file fields and
attachments), ``documents`` (a document's submit, cancel and amend with their
confirmation; ``lifecycle`` holds what a form shows of a document), ``boards`` (kanban
and moves), ``dashboards``, ``related`` (the 360° page) and ``preferences`` (the user's
locale and time zone).
``base`` holds what they share: the session, :class:`Screen` and rendering. Each family
lists its ``routes``; :func:`web_router` makes one of each :func:`register`-ed family, then
of each built-in one, and routes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.responses import RedirectResponse

from runtime.web.screens.base import Family, Screen, WebUI
from runtime.web.screens.boards import Boards
from runtime.web.screens.dashboards import Dashboards
from runtime.web.screens.documents import Documents
from runtime.web.screens.files import Files
from runtime.web.screens.forms import Forms
from runtime.web.screens.lists import Lists
from runtime.web.screens.people import People
from runtime.web.screens.preferences import Preferences
from runtime.web.screens.printing import Printing
from runtime.web.screens.related import Related
from runtime.web.screens.reports import Reports
from runtime.web.screens.signin import SignIn

if TYPE_CHECKING:
    from typing import TypeVar

    F = TypeVar("F", bound=type[Family])

__all__ = ["Family", "Screen", "WebUI", "register", "unregister", "web_router"]

BUILT_IN: tuple[type[Family], ...] = (
    SignIn,
    People,
    Preferences,
    Dashboards,
    Reports,
    Lists,
    Boards,
    Files,
    Forms,
    Documents,
    Related,
    Printing,
)
"""In routing order: a family's literal paths (``/app/_dashboards/...``, ``.../kanban``)
come before the ones of a later family whose ``{parameter}`` would match them too."""
_registered: list[type[Family]] = []


def register(family: F) -> F:
    """Add a family of screens to every web UI built from now on. Its routes come before the
    built-in ones, so that ``/app/{pack}/{entity}/{record_id}`` does not take them: its
    paths start ``/app/_<name>/``, which no entity's can (pack names start with a letter),
    with a name no built-in screen uses (``_dashboards``, ``_designer``). A decorator."""
    if family in BUILT_IN or family in _registered:
        raise ValueError(f"the screen family {family.__name__} is registered already")
    _registered.append(family)
    return family


def unregister(family: type[Family]) -> None:
    _registered.remove(family)


def web_router(ui: WebUI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    router.add_api_route("/", lambda: RedirectResponse("/app", status_code=307), methods=["GET"])
    for family_class in (*_registered, *BUILT_IN):
        family = family_class(ui)
        for method, path, handler in family.routes:
            router.add_api_route(path, getattr(family, handler), methods=[method])
    return router
