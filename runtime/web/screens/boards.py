"""Kanban boards (one column per value of an enum or workflow field) and the move that
sets such a field, from a card's drop or a workflow button."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import JSONResponse, RedirectResponse, Response

from engine.access import Forbidden
from engine.errors import BadQuery, Conflict, StaleVersion, ValidationFailed
from metadata import FieldType, Permission
from runtime.titles import add_titles, titled_references
from runtime.web.handling import screen
from runtime.web.screens.base import (
    Family,
    Screen,
    form_text,
    form_version,
    parse_record_id,
    refusal,
    visible_sort,
)
from runtime.web.screens.forms import Forms
from runtime.web.widgets import column, list_columns

if TYPE_CHECKING:
    from metadata import FieldDef
    from runtime.web.screens.base import WebUI


KANBAN_CARDS = 50


class Boards(Family):
    routes = (
        ("GET", "/app/{pack}/{entity}/kanban", "kanban"),
        ("POST", "/app/{pack}/{entity}/{record_id}/move", "move"),
    )

    def __init__(self, ui: WebUI) -> None:
        super().__init__(ui)
        self.forms = Forms(ui)  # a refused move shows the record's form again

    @screen
    async def kanban(self, request: Request, pack: str, entity: str) -> Response:
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        return await self._kanban_page(request, screen, request.query_params.get("by"), None, 200)

    async def _kanban_page(
        self, request: Request, screen: Screen, by: str | None, error: str | None, status: int
    ) -> Response:
        screen.access.require(Permission.READ)
        boards = board_fields(screen)
        if not boards:
            raise BadQuery(f"{screen.store.entity.label_plural} have no enum field to group by")
        preferred = by or screen.store.entity.view.kanban_group_by
        field = next((f for f in boards if f.name == preferred), boards[0])
        values: list[str | None] = list(field.values)
        if not field.required:
            values.append(None)
        title = screen.store.entity.title or "id"
        card = screen.store.entity.view.kanban_card
        if card:
            found = (column(screen.store.entity, name) for name in card)
            others = [c for c in found if c is not None and c.name not in screen.access.hidden]
        else:
            others = [
                c
                for c in list_columns(screen.store.entity, screen.access)
                if c.name not in {field.name, title}
            ][:2]
        # a card's references show their record's title, as the list's cells do
        expandable = titled_references(screen.guard, [c.name for c in others])
        columns = []
        async with self.database.get().connection() as conn:
            for value in values:
                condition = (
                    (field.name, value) if value is not None else (f"{field.name}__isnull", "true")
                )
                pairs = [
                    condition,
                    ("limit", str(KANBAN_CARDS)),
                    ("count", "true"),
                    ("sort", visible_sort(title, screen.access)),
                    *([("expand", ",".join(expandable))] if expandable else []),
                ]
                result = await screen.guard.list_page(conn, screen.store.parser.parse(pairs))
                add_titles(result.records, screen.store, expandable)
                if value is None and not result.count:
                    continue  # an "(empty)" column only for records that have no value
                columns.append(
                    {"value": value or "", "records": result.records, "count": result.count or 0}
                )
        return await self.render(
            request,
            "kanban.html",
            status,
            session=screen.session,
            screen=screen,
            entity=screen.store.entity,
            title=f"{screen.store.entity.label_plural} by {field.label.lower()}",
            field=field,
            boards=boards,
            columns=columns,
            title_field=title,
            card_fields=others,
            may_update=screen.may(Permission.UPDATE)
            and field.name not in screen.access.readonly
            and field.is_writable,
            error=error,
        )

    @screen
    async def move(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        """Set one enum or workflow field (a kanban drop, a workflow button) through the
        same validation, rules and workflow as any save. JSON for scripts, pages otherwise."""
        session = await self.ui.checked(request)
        screen = self.ui.screen_for(session, pack, entity)
        form = await request.form()
        name = form_text(form.get("field"))
        if name not in {f.name for f in board_fields(screen)}:
            raise BadQuery(f"'{name}' is not a field that can be moved")
        target = form_text(form.get("to")) or None
        wants_json = "application/json" in request.headers.get("accept", "")
        ctx = self.ui.write_context(session)
        try:
            async with self.database.write(ctx) as conn:
                saved = await screen.guard.update(
                    conn,
                    parse_record_id(record_id),
                    {name: target},
                    ctx,
                    expected_version=form_version(form_text(form.get("version"))),
                )
        except (ValidationFailed, Forbidden, StaleVersion, Conflict) as exc:
            message = refusal(exc)
            status = (
                422
                if isinstance(exc, ValidationFailed)
                else 403
                if isinstance(exc, Forbidden)
                else 409
            )
            if wants_json:
                return JSONResponse({"ok": False, "message": message}, status_code=status)
            if form_text(form.get("back")).startswith("kanban"):
                return await self._kanban_page(request, screen, name, message, status)
            full = await self.ui.stored(screen, record_id)
            shown = screen.guard.strip(dict(full))
            return await self.forms.form_page(
                request, screen, shown, record_id, {}, status, general=[message], full=full
            )
        if wants_json:
            return JSONResponse({"ok": True, "version": saved.get("version")})
        if form_text(form.get("back")).startswith("kanban"):
            return RedirectResponse(f"{screen.entity_url}/kanban?by={name}", status_code=303)
        return RedirectResponse(f"{screen.entity_url}/{record_id}?saved=1", status_code=303)


def board_fields(screen: Screen) -> list[FieldDef]:
    """Fields a kanban can group by: the workflow's field first, then every enum the
    user may see."""
    entity = screen.store.entity
    names = [entity.workflow.field] if entity.workflow is not None else []
    names += [f.name for f in entity.fields.values() if f.type is FieldType.ENUM]
    fields = [entity.fields[n] for n in dict.fromkeys(names) if n in entity.fields]
    return [f for f in fields if f.name not in screen.access.hidden]
