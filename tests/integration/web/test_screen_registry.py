"""A family of screens defined here, in a test module, and registered with
``runtime.web.screens.register``: with nothing else touched it is routed, asks for a
session, checks the CSRF token of a form post, reads through the guard (so a user sees only
what their roles allow), shows engine errors as error pages, and is gone once unregistered.
On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import RedirectResponse, Response

from metadata import Permission
from runtime.web.handling import screen
from runtime.web.screens import BUILT_IN, Family, register, unregister
from tests.conftest import Instance, pack_instance
from tests.integration.web.test_screens import FILES, PASSWORD
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class Counts(Family):
    """How many records of an entity the signed-in user may read."""

    routes = (
        ("GET", "/app/_counts/{pack}/{entity}", "count"),
        ("POST", "/app/_counts/{pack}/{entity}", "recount"),
    )

    @screen
    async def count(self, request: Request, pack: str, entity: str) -> Response:
        session = await self.ui.session(request)
        shown = self.ui.screen_for(session, pack, entity)
        shown.access.require(Permission.READ)
        async with self.database.get().connection() as conn:
            page = await shown.guard.list_page(conn, shown.store.parser.parse([("count", "1")]))
        return await self.render(
            request,
            "error.html",
            session=session,
            title=f"{session.user.username} counts",
            detail=f"{page.count} {shown.store.entity.label_plural}",
        )

    @screen
    async def recount(self, request: Request, pack: str, entity: str) -> Response:
        await self.ui.checked(request)
        return RedirectResponse(f"/app/_counts/{pack}/{entity}", status_code=303)


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Iterator[Instance]:
    instance = pack_instance(tmp_path, db_url, "crm", FILES)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    issue_token(instance.settings.database_url, "vic", ("viewer",), password=PASSWORD)
    with instance.client() as api:
        for name, status in [("Alpha", "open"), ("Beta", "lost"), ("Gamma", "won")]:
            body = {"name": name, "status": status, "amount": "10"}
            made = api.post("/api/v1/crm/deal", json=body)
            assert made.status_code == 201, made.text
    register(Counts)
    try:
        yield instance
    finally:
        unregister(Counts)


def test_a_registered_family_of_screens_is_routed_and_acts_through_the_guard(
    crm: Instance,
) -> None:
    with signed_in(crm, "ada", PASSWORD) as ada:
        page = ada.get("/app/_counts/crm/deal")
        assert page.status_code == 200, page.text
        assert "ada counts" in page.text
        assert "3 Deals" in page.text
        assert 'href="/app/crm/deal"' in page.text  # the navigation, as on every screen
        assert ada.get("/app/_counts/crm/nothing").status_code == 404
        token = csrf_of(ada.get("/app/crm/deal/new"))
        forged = ada.post("/app/_counts/crm/deal", data={}, follow_redirects=False)
        assert forged.status_code == 403
        posted = ada.post(
            "/app/_counts/crm/deal", data={"csrf_token": token}, follow_redirects=False
        )
        assert (posted.status_code, posted.headers["location"]) == (303, "/app/_counts/crm/deal")
        ada.cookies.clear()
        away = ada.get("/app/_counts/crm/deal", follow_redirects=False)
        assert away.status_code == 303
        assert away.headers["location"] == "/login?next=%2Fapp%2F_counts%2Fcrm%2Fdeal"
    with signed_in(crm, "vic", PASSWORD) as vic:  # a viewer does not see lost deals
        assert "2 Deals" in vic.get("/app/_counts/crm/deal").text
        assert vic.get("/app/_counts/crm/account").status_code == 403


def test_registering_twice_is_refused_and_unregistering_removes_the_routes(
    crm: Instance,
) -> None:
    with pytest.raises(ValueError, match="registered already"):
        register(Counts)
    with pytest.raises(ValueError, match="registered already"):
        register(BUILT_IN[0])
    unregister(Counts)
    try:
        with signed_in(crm, "ada", PASSWORD) as ada:
            assert ada.get("/app/_counts/crm/deal").status_code == 404
    finally:
        register(Counts)
