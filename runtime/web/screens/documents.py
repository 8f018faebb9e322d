"""A business document's moves on the screens (``document: true``, docs/documents.md):
the confirmation page of Submit, Cancel and Amend, and the move it makes.

The confirmation is a page of its own (``GET .../{id}/submit``), so that it works without
JavaScript; it carries the version of the record the user was looking at, and the move
(``POST`` of that page, CSRF-checked like every form) is made only on that version: a stale
page is told so instead of acting on a record the user has not seen. What the form shows of
a document (status, buttons, amendment chain, editable fields) is in ``lifecycle``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import RedirectResponse, Response

from engine.access import Forbidden
from engine.errors import Conflict, RecordNotFound, StaleVersion, ValidationFailed
from metadata import RuleEvent
from runtime.web.handling import screen
from runtime.web.screens.base import Family, Screen, form_text, form_version, parse_record_id
from runtime.web.screens.forms import Forms
from runtime.web.screens.lifecycle import MOVES, DocumentMove, offered, past, status

if TYPE_CHECKING:
    from runtime.web.screens.base import WebUI


class Documents(Family):
    """The confirmation pages and the moves of a document."""

    routes = (
        ("GET", "/app/{pack}/{entity}/{record_id}/submit", "confirm_submit"),
        ("POST", "/app/{pack}/{entity}/{record_id}/submit", "submit"),
        ("GET", "/app/{pack}/{entity}/{record_id}/cancel", "confirm_cancel"),
        ("POST", "/app/{pack}/{entity}/{record_id}/cancel", "cancel"),
        ("GET", "/app/{pack}/{entity}/{record_id}/amend", "confirm_amend"),
        ("POST", "/app/{pack}/{entity}/{record_id}/amend", "amend"),
    )

    def __init__(self, ui: WebUI) -> None:
        super().__init__(ui)
        self.forms = Forms(ui)  # a refused move shows the record's form again

    async def confirm_submit(
        self, request: Request, pack: str, entity: str, record_id: str
    ) -> Response:
        return await self.confirm(request, pack, entity, record_id, MOVES["submit"])

    async def confirm_cancel(
        self, request: Request, pack: str, entity: str, record_id: str
    ) -> Response:
        return await self.confirm(request, pack, entity, record_id, MOVES["cancel"])

    async def confirm_amend(
        self, request: Request, pack: str, entity: str, record_id: str
    ) -> Response:
        return await self.confirm(request, pack, entity, record_id, MOVES["amend"])

    async def submit(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        return await self.make(request, pack, entity, record_id, MOVES["submit"])

    async def cancel(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        return await self.make(request, pack, entity, record_id, MOVES["cancel"])

    async def amend(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        return await self.make(request, pack, entity, record_id, MOVES["amend"])

    def _document_screen(self, session: Any, pack: str, entity: str) -> Screen:
        screen = self.ui.screen_for(session, pack, entity)
        if not screen.store.entity.document:
            raise RecordNotFound(
                f"{screen.store.entity.label_plural} are not documents: they are not submitted"
            )
        return screen

    @screen
    async def confirm(
        self, request: Request, pack: str, entity: str, record_id: str, move: DocumentMove
    ) -> Response:
        """The question before a move: what it does, and a button that makes it on the
        version the user saw (``?version=``); a page that is stale, or a move the record's
        status (or the user's roles) no longer allows, says so instead."""
        session = await self.ui.session(request)
        screen = self._document_screen(session, pack, entity)
        full = await self.ui.stored(screen, record_id)
        shown = screen.guard.strip(dict(full))
        seen = form_version(request.query_params.get("version") or "")
        current = full.get("version")
        problem = None
        if move not in offered(screen, full, self.ui.actor(session)):
            state = status(screen.store.entity, full)
            problem = (
                f"This {screen.store.entity.label.lower()} is {state}: "
                f"you cannot {move.name} it now."
            )
        elif seen is not None and seen != current:
            problem = (
                f"This {screen.store.entity.label.lower()} has changed since you opened it. "
                "Review it as it is now before you " + move.name + " it."
            )
        entity_def = screen.store.entity
        title = str(shown.get(entity_def.title) or "") if entity_def.title else ""
        frozen_free = [
            f.label
            for f in entity_def.fields.values()
            if f.allow_on_submit and f.name not in screen.access.hidden
        ]
        return await self.render(
            request,
            "document_confirm.html",
            200,
            session=session,
            screen=screen,
            entity=entity_def,
            record=shown,
            record_id=record_id,
            record_title=title or f"{entity_def.label} #{record_id}",
            title=f"{move.label} {title or entity_def.label.lower() + ' #' + record_id}?",
            move=move,
            version=seen if seen is not None else current,
            problem=problem,
            allowed_on_submit=frozen_free,
            state=status(entity_def, full),
        )

    @screen
    async def make(
        self, request: Request, pack: str, entity: str, record_id: str, move: DocumentMove
    ) -> Response:
        """Make the move on the version the confirmation page showed; then to the record
        (the new draft after an amendment) with a message. A refusal (a submit's failed
        checks, a state that no longer allows the move, a stale version, the user's
        roles) shows the record's form with every reason."""
        session = await self.ui.checked(request)
        screen = self._document_screen(session, pack, entity)
        form = await request.form()
        version = form_version(form_text(form.get("version")))
        ctx = self.ui.write_context(session)
        target = parse_record_id(record_id)
        try:
            async with self.database.write(ctx) as conn:
                if move.name == "amend":
                    saved = await screen.guard.amend(conn, target, ctx, expected_version=version)
                else:
                    event = RuleEvent.SUBMIT if move.name == "submit" else RuleEvent.CANCEL
                    saved = await screen.guard.transition(
                        conn, target, event, ctx, expected_version=version
                    )
        except ValidationFailed as exc:
            errors, general = self.forms.placed(screen, exc)
            return await self._refused(request, screen, record_id, move, 422, errors, general)
        except Conflict as exc:
            return await self._refused(request, screen, record_id, move, 409, {}, [exc.detail])
        except StaleVersion:
            noun = screen.store.entity.label.lower()
            message = (
                f"This {noun} was changed by someone else since you opened it, so it was "
                f"not {past(move)}. Here it is as it is now: check it, then try again."
            )
            return await self._refused(request, screen, record_id, move, 412, {}, [message])
        except Forbidden as exc:
            return await self._refused(request, screen, record_id, move, 403, {}, [exc.detail])
        location = f"{screen.entity_url}/{saved['id']}?done={move.name}"
        return RedirectResponse(location, status_code=303)

    async def _refused(
        self,
        request: Request,
        screen: Screen,
        record_id: str,
        move: DocumentMove,
        status_code: int,
        errors: dict[str, list[str]],
        general: list[str],
    ) -> Response:
        full = await self.ui.stored(screen, record_id)
        shown = screen.guard.strip(dict(full))
        return await self.forms.form_page(
            request,
            screen,
            shown,
            record_id,
            errors,
            status_code,
            general=general,
            full=full,
            failure=f"was not {past(move)}",
        )
