"""The signed-in user's preferences: their locale and time zone (docs/locales.md), which
decide how every page, print and CSV export for people shows them numbers, money and dates.
Either may be left to the instance's default (``locale:`` and ``timezone:`` in
``tessera.yaml``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import zoneinfo
from decimal import Decimal
from typing import TYPE_CHECKING

from babel import Locale, UnknownLocaleError
from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import RedirectResponse, Response

from engine.identity import Identity, IdentityError
from metadata import canonical_locale
from runtime.formatting import is_zone
from runtime.web.handling import screen
from runtime.web.screens.base import Family, form_text

if TYPE_CHECKING:
    from runtime.web.session import Session


@functools.cache
def locale_choices() -> tuple[tuple[str, str], ...]:
    """Every locale with a country (``de_DE``), by its own name in English."""
    from babel import Locale
    from babel.localedata import locale_identifiers

    found = []
    for name in locale_identifiers():
        parts = name.split("_")
        if len(parts) != 2 or not parts[1].isalpha() or not parts[1].isupper():
            continue
        found.append((name, f"{Locale.parse(name).get_display_name('en')} — {name}"))
    return tuple(sorted(found, key=lambda choice: choice[1].casefold()))


@functools.cache
def zone_choices() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def _named(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Names as choices labelled by themselves (the time zones)."""
    return tuple((name, name) for name in names)


def _with_held(
    choices: tuple[tuple[str, str], ...], held: str | None
) -> tuple[tuple[str, str], ...]:
    """The choices, and first the one the user holds if they lack it (a locale set with
    ``tessera user preferences``: ``zh_Hans_CN``, ``en_001``; a zone without a region:
    ``EST``): else the page shows the instance's selected and saving it drops the user's."""
    if not held or any(name == held for name, _ in choices):
        return choices
    label = held
    with contextlib.suppress(ValueError, UnknownLocaleError):
        label = f"{Locale.parse(held).get_display_name('en')} — {held}"
    return ((held, label), *choices)


def _locale_held(session: Session) -> str | None:
    """The user's locale if it is one: one that is none (written straight into the user
    table) is not offered, so the page shows the instance's selected, which the user reads
    in, and saving it repairs the row."""
    held = session.user.locale
    return held if canonical_locale(held) is not None else None


def _zone_held(session: Session) -> str | None:
    """The user's time zone if the tz database has it (not one since removed from it)."""
    held = session.user.timezone
    return held if is_zone(held) else None


class Preferences(Family):
    routes = (
        ("GET", "/app/_preferences", "preferences"),
        ("POST", "/app/_preferences", "save"),
    )

    @screen
    async def preferences(self, request: Request) -> Response:
        session = await self.ui.session(request)
        return await self._page(request, session, None)

    @screen
    async def save(self, request: Request) -> Response:
        session = await self.ui.checked(request)
        form = await request.form()
        locale = form_text(form.get("locale")).strip()
        timezone = form_text(form.get("timezone")).strip()
        database = self.database.get()
        try:
            async with database.transaction() as conn:
                await Identity(database.sa_dialect).set_preferences(
                    conn, session.user.username, locale=locale, timezone=timezone
                )
        except IdentityError as exc:
            return await self._page(request, session, exc.detail, status=422)
        self.authenticator.forget(session.token)  # the next page reads the user again
        return RedirectResponse("/app/_preferences?saved=1", status_code=303)

    async def _page(
        self, request: Request, session: Session, problem: str | None, status: int = 200
    ) -> Response:
        settings = self.live.settings
        return await self.ui.render(
            request,
            "preferences.html",
            status,
            session=session,
            title="Preferences",
            problem=problem,
            saved=request.query_params.get("saved") == "1" and problem is None,
            locales=_with_held(locale_choices(), _locale_held(session)),
            zones=[zone for zone, _ in _with_held(_named(zone_choices()), _zone_held(session))],
            default_locale=settings.locale,
            default_timezone=settings.timezone,
            sample=self._sample(session),
        )

    def _sample(self, session: Session) -> dict[str, str]:
        """How this user now reads a number, an amount, a date and a moment."""
        formats = self.ui.formats(session)
        moment = dt.datetime(2026, 12, 6, 14, 30, tzinfo=dt.UTC)
        currency = self.live.settings.company.currency or "EUR"
        return {
            "number": formats.number(Decimal("1450000.5"), 2),
            "money": formats.money(Decimal("1450000"), currency),
            "date": formats.date(moment.date()),
            "moment": formats.datetime(moment),
        }
