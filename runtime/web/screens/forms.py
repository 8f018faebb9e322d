"""A record's form: its sections and widgets (from ``forms/`` or every field), the
workflow's buttons and the audit trail, a document's status, moves and amendment chain;
saving, deleting, and the live ``visible_if`` / ``required_if`` answers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import JSONResponse, RedirectResponse, Response

from engine.access import EntityAccess, Forbidden
from engine.errors import Conflict, FieldError, RecordNotFound, StaleVersion, ValidationFailed
from engine.writes.documents import DRAFT
from metadata import DOCUMENT_FIELDS, FieldType, Permission
from metadata._fieldkeys import TYPE_TRAITS
from runtime.api.problems import ApiProblem
from runtime.plumbing import guard_for
from runtime.web.handling import screen
from runtime.web.screens import lifecycle
from runtime.web.screens.base import (
    Family,
    Screen,
    WebUI,
    form_text,
    form_version,
    parse_record_id,
)
from runtime.web.screens.line_options import LinePicker
from runtime.web.screens.people import user_titles
from runtime.web.session import CSRF_FIELD
from runtime.web.widgets import Widget, is_writable, record_from_form, typed_lines, widget_for

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.workflow import Move
    from metadata import FieldDef


EMPTY_ACCESS = EntityAccess("", {})
"""No field made read-only by roles: a line's fields follow its parent's rights."""
HISTORY_ENTRIES = 100

_LaidOut = tuple["FieldDef", str | None, str | None, bool]
"""A field on a form: its definition, the form's label and help for it, whether the form
makes it read-only."""


async def attachments_for(ui: WebUI, screen: Screen, record_id: str | None) -> list[Any] | None:
    """The attachments a record's form lists (None for a new record)."""
    if record_id is None:
        return None
    files = ui.live.current.record_api.files
    return await files.attachments_of(screen.store, screen.guard, parse_record_id(record_id))


class Forms(Family):
    routes = (
        ("POST", "/app/{pack}/{entity}/_conditions", "conditions"),
        ("GET", "/app/{pack}/{entity}/new", "new_form"),
        ("POST", "/app/{pack}/{entity}/new", "create"),
        ("GET", "/app/{pack}/{entity}/{record_id}", "form_screen"),
        ("POST", "/app/{pack}/{entity}/{record_id}", "save"),
        ("POST", "/app/{pack}/{entity}/{record_id}/delete", "delete"),
    )

    async def new_form(self, request: Request, pack: str, entity: str) -> Response:
        return await self.form_screen(request, pack, entity, None)

    async def create(self, request: Request, pack: str, entity: str) -> Response:
        return await self.save(request, pack, entity, None)

    @screen
    async def form_screen(
        self, request: Request, pack: str, entity: str, record_id: str | None
    ) -> Response:
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        if record_id is None:
            screen.access.require(Permission.CREATE)
            new = {  # a new record starts with the definition's constant defaults
                f.name: f.default
                for f in screen.store.entity.fields.values()
                if f.default is not None and not f.default_is_expression
            }
            return await self.form_page(request, screen, new, None, {}, 200)
        full = await self.ui.stored(screen, record_id)
        shown = screen.guard.strip(dict(full))
        return await self.form_page(request, screen, shown, record_id, {}, 200, full=full)

    async def form_page(
        self,
        request: Request,
        screen: Screen,
        record: dict[str, Any],
        record_id: str | None,
        errors: dict[str, list[str]],
        status: int,
        *,
        general: list[str] | None = None,
        full: dict[str, Any] | None = None,
        failure: str = "was not saved",
    ) -> Response:
        """The form of ``record`` (what the user may see, or what they typed); ``full`` is
        the stored record with its hidden fields, which workflow conditions may read, and
        whose status (a document's) decides what may still be edited. ``failure`` ends the
        sentence above the errors (``The order was not submitted:``)."""
        state = lifecycle.status(screen.store.entity, full)
        sections = self._sections(screen, creating=record_id is None, state=state)
        titles = await self._reference_titles(screen, record, sections)
        moves, history = await self._workflow_and_history(screen, full, state)
        document = await self._document(screen, full, state)
        if document is not None:  # the message after a move (?done=submit)
            made = lifecycle.MOVES.get(request.query_params.get("done") or "")
            noun = screen.store.entity.label.lower()
            document["done"] = made.done.format(noun=noun) if made else None
        conditions = screen.store.form_conditions
        lines = {
            name: dict(enumerate(line for line in record[name] if isinstance(line, dict)))
            for name in screen.store.children
            if isinstance(record.get(name), list)
        }
        actor = self.ui.actor(screen.session)
        judged = conditions.judge(record, actor, lines) if conditions else None
        workflow = screen.store.entity.workflow
        entity = screen.store.entity
        title_value = record.get(entity.title) if entity.title else None
        if title_value:
            heading = str(title_value)
        elif record_id is None:
            heading = f"New {entity.label.lower()}"
        else:
            heading = f"{entity.label} #{record_id}"
        return await self.render(
            request,
            "form.html",
            status,
            session=screen.session,
            screen=screen,
            entity=entity,
            record=record,
            record_id=record_id,
            title=heading,
            sections=sections,
            errors=errors,
            general=general or [],
            reference_titles=titles,
            may_save=any(w.editable for section in sections for w in section["widgets"]),
            may_delete=screen.may(Permission.DELETE) and state in (None, DRAFT),
            csrf_field=CSRF_FIELD,
            moves=moves,
            conditional=judged is not None,
            hidden_sections=judged.hidden_sections if judged else frozenset(),
            hidden_fields=judged.hidden_fields if judged else frozenset(),
            required_now=judged.required if judged else frozenset(),
            workflow_field=entity.fields[workflow.field] if workflow is not None else None,
            history=history,
            document=document,
            failure=failure,
            attachments=await attachments_for(self.ui, screen, record_id),
        )

    async def _document(
        self, screen: Screen, record: dict[str, Any] | None, state: str | None
    ) -> dict[str, Any] | None:
        """A stored document's status, the moves the user may make on it now, the fields
        still editable once submitted, and its amendment chain; None for other records."""
        if state is None or not record:
            return None
        async with self.database.get().connection() as conn:
            source, amendments = await lifecycle.chain(screen, conn, record)
        entity = screen.store.entity
        return {
            "status": state,
            "moves": lifecycle.offered(screen, record, self.ui.actor(screen.session)),
            "version": record.get("version"),
            "amended_from": source,
            "amended_by": amendments,
            "allow_on_submit": [
                f.label
                for f in entity.fields.values()
                if f.allow_on_submit and f.name not in screen.access.hidden
            ],
        }

    async def _workflow_and_history(
        self, screen: Screen, record: dict[str, Any] | None, state: str | None = None
    ) -> tuple[list[Move], list[dict[str, Any]]]:
        """The workflow's moves out of the stored ``record``'s state (for its buttons), none
        while its document's status freezes the workflow's field, and its audit trail,
        newest first, without the fields the user may not see."""
        if not record:
            return [], []
        store = screen.store
        model = self.live.current.model
        ctx = self.ui.write_context(screen.session)
        workflow = store.entity.workflow
        async with self.database.get().connection() as conn:
            moves: list[Move] = []
            if (
                workflow is not None
                and store.workflow is not None
                and screen.may(Permission.UPDATE)
                and lifecycle.editable_in(state, store.entity.fields[workflow.field])
            ):
                moves = await store.workflow_moves(conn, record, ctx)
            entries = await model.audit.history(
                conn,
                store.entity.qualified_name,
                str(record["id"]),
                limit=HISTORY_ENTRIES,
                newest_first=True,
            )
            names = await self.authenticator.identity.usernames(
                conn, {int(e.user_id) for e in entries if e.user_id and e.user_id.isdigit()}
            )
        hidden = screen.access.hidden
        history = [
            {
                "at": dt.datetime.fromtimestamp(entry.at, dt.UTC),
                "user": names.get(entry.user_id or "", "the system"),
                "action": entry.action.value,
                "changes": {k: v for k, v in entry.changes.items() if k not in hidden},
            }
            for entry in entries
        ]
        return moves, history

    def _sections(
        self, screen: Screen, *, creating: bool, state: str | None = None
    ) -> list[dict[str, Any]]:
        """The form's sections (from ``forms/``, or one with every field), as widgets; hidden
        fields left out, read-only ones shown but not editable. A document's ``state``
        leaves only some fields editable (``lifecycle.editable_in``); its status and
        amendment chain are shown above the form (a badge, links), not as fields."""
        entity = screen.store.entity
        access = screen.access
        may_write = screen.may(Permission.CREATE if creating else Permission.UPDATE)
        lines_editable = may_write and state in (None, DRAFT)
        sections = []
        layout = entity.form.sections
        layout_sections: list[tuple[str | None, str | None, int, list[_LaidOut]]]
        if not layout:
            fields: list[_LaidOut] = [(f, None, None, False) for f in entity.fields.values()]
            layout_sections = [(None, None, 1, fields)]
        else:
            layout_sections = [
                (
                    section.name,
                    section.label,
                    section.columns,
                    [
                        (entity.fields[item.field], item.label, item.help, item.read_only)
                        for item in section.fields
                        if item.field in entity.fields
                    ],
                )
                for section in layout
            ]
        for name, label, columns, items in layout_sections:
            widgets = [
                widget_for(
                    field,
                    editable=may_write
                    and not locked
                    and is_writable(field, access)
                    and lifecycle.editable_in(state, field),
                    label=item_label,
                    help_text=item_help,
                    columns=self._line_columns(field, lines_editable and not locked),
                )
                for field, item_label, item_help, locked in items
                if field.name not in access.hidden
                and not (entity.document and field.name in DOCUMENT_FIELDS)
            ]
            if widgets:
                sections.append(
                    {"name": name, "label": label, "columns": columns, "widgets": widgets}
                )
        return sections

    def _line_columns(self, field: FieldDef, editable: bool) -> tuple[Widget, ...]:
        """The widgets of a child table's columns: the line entity's fields."""
        if field.type is not FieldType.CHILDREN or field.entity is None:
            return ()
        line = self.live.current.project.entities[field.entity]
        return tuple(
            widget_for(f, editable=editable and is_writable(f, EMPTY_ACCESS))
            for f in line.fields.values()
            if TYPE_TRAITS[f.type].scalar or f.type is FieldType.FILE  # a file: link, upload
        )

    async def _reference_titles(
        self, screen: Screen, record: dict[str, Any], sections: list[dict[str, Any]]
    ) -> dict[str, str]:
        """The title of each referenced record the form shows, where the user may read it:
        by field name, and by ``<children field>[<position>].<field>`` for a line's."""
        shown: list[tuple[str, FieldDef, Any]] = []
        for section in sections:
            for widget in section["widgets"]:
                if widget.kind == "reference":
                    shown.append((widget.name, widget.field, record.get(widget.name)))
                if widget.kind != "children" or not isinstance(record.get(widget.name), list):
                    continue
                for position, line in enumerate(record[widget.name]):
                    for column in widget.columns:
                        if column.kind == "reference" and isinstance(line, dict):
                            key = f"{widget.name}[{position}].{column.name}"
                            shown.append((key, column.field, line.get(column.name)))
        titles: dict[str, str] = {}
        found: dict[tuple[str, str], str] = {}
        async with self.database.get().connection() as conn:
            for key, field, value in shown:
                if value in (None, ""):
                    continue
                if (field.to or "", str(value)) not in found:
                    title = await self._title_of(conn, screen, field.to or "", str(value))
                    found[(field.to or "", str(value))] = str(title or f"#{value}")
                titles[key] = found[(field.to or "", str(value))]
            titles.update(await user_titles(conn, self.database.get().sa_dialect, record, sections))
        return titles

    async def _title_of(
        self, conn: Connection, screen: Screen, target_name: str, value: str
    ) -> str | None:
        """The title of the record ``value`` of ``target_name`` if the user may read it; a
        line's label (its parent's title and its own) if they may read its parent."""
        model = self.live.current.model
        target = model.store_for(target_name)
        try:
            if target.entity.is_child:  # a line: named through its parent
                choice = await LinePicker(self.ui, screen.session, target.entity).choice(
                    conn, value
                )
                return choice.label if choice else None
            guard = guard_for(target, self.ui.actor(screen.session), model)
            linked = await guard.get(conn, parse_record_id(value))
        except (RecordNotFound, Forbidden, ApiProblem):
            return None
        title = linked.get(target.entity.title or "id")
        return None if title is None else str(title)

    @screen
    async def save(
        self, request: Request, pack: str, entity: str, record_id: str | None
    ) -> Response:
        session = await self.ui.checked(request)
        screen = self.ui.screen_for(session, pack, entity)
        form = await request.form()
        state = None
        if record_id is not None and screen.store.entity.document:
            state = lifecycle.status(screen.store.entity, await self.ui.stored(screen, record_id))
        sections = self._sections(screen, creating=record_id is None, state=state)
        widgets: list[Widget] = [w for s in sections for w in s["widgets"]]
        # what the document's state lets change; a new record's emptied defaults are computed
        unreadable: list[FieldError] = []  # numbers not as the user's locale writes them
        values = record_from_form(
            form,
            widgets,
            new=record_id is None,
            formats=self.ui.formats(session),
            problems=unreadable,
        )
        ctx = self.ui.write_context(session)
        try:
            if unreadable:
                raise ValidationFailed(unreadable)
            async with self.database.write(ctx) as conn:
                if record_id is None:
                    saved = await screen.guard.create(conn, values, ctx, None)
                else:
                    version = form_version(form_text(form.get("version")))
                    saved = await screen.guard.update(
                        conn, parse_record_id(record_id), values, ctx, expected_version=version
                    )
        except (ValidationFailed, Conflict, StaleVersion) as exc:
            errors, general = self.placed(screen, exc)
            if isinstance(exc, StaleVersion):
                general = [
                    f"This {screen.store.entity.label.lower()} was changed by someone else "
                    "since you opened it, so your changes were not saved. The form shows them "
                    "over the current version: check them, then save again."
                ]
            full = await self.ui.stored(screen, record_id)
            sections = self._sections(
                screen,
                creating=record_id is None,
                state=lifecycle.status(screen.store.entity, full),
            )
            editable = {w.name for s in sections for w in s["widgets"] if w.editable}
            typed = {k: v for k, v in values.items() if k in editable}  # nothing else stored
            shown = {**screen.guard.strip(dict(full)), **typed}
            status = 422 if isinstance(exc, ValidationFailed) else 409
            return await self.form_page(
                request, screen, shown, record_id, errors, status, general=general, full=full
            )
        location = f"{screen.entity_url}/{saved['id']}?saved=1"
        return RedirectResponse(location, status_code=303)

    def placed(
        self, screen: Screen, exc: ValidationFailed | Conflict | StaleVersion
    ) -> tuple[dict[str, list[str]], list[str]]:
        """A refusal's messages: at the form's fields (``lines[0].qty`` included) where
        they name one, the others for the summary above the form."""
        errors: dict[str, list[str]] = {}
        general: list[str] = []
        found = exc.errors if isinstance(exc, (ValidationFailed, Conflict)) else []
        for error in found:
            root = error.field.split("[", 1)[0] if error.field else ""
            if root in screen.store.entity.fields:
                errors.setdefault(error.field, []).append(error.message)
            else:
                general.append(error.message)
        if not found:
            general.append(exc.detail)
        return errors, general

    @screen
    async def delete(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        session = await self.ui.checked(request)
        screen = self.ui.screen_for(session, pack, entity)
        ctx = self.ui.write_context(session)
        files = self.live.current.record_api.files
        number = parse_record_id(record_id)
        async with self.database.write(ctx) as conn:
            old = await screen.guard.delete(conn, number, ctx)
            stored = await files.on_delete(conn, screen.store, number, old)
        await files.forget(stored)  # its files' bytes, once the delete committed
        return RedirectResponse(f"{screen.entity_url}?deleted=1", status_code=303)

    @screen
    async def conditions(self, request: Request, pack: str, entity: str) -> Response:
        """The form's ``visible_if`` and ``required_if`` for the values typed so far (the
        form asks as the user types)."""
        session = await self.ui.checked(request)
        screen = self.ui.screen_for(session, pack, entity)
        form = await request.form()
        values = {
            name: form.getlist(name)[-1]
            for name in screen.store.entity.fields
            if form.getlist(name) and isinstance(form.getlist(name)[-1], str)
        }
        lines = {name: typed_lines(form, name) for name in screen.store.children}
        state = screen.store.form_conditions.judge(values, self.ui.actor(session), lines)
        return JSONResponse(
            {
                "hidden_sections": sorted(state.hidden_sections),
                "hidden_fields": sorted(state.hidden_fields),
                "required": sorted(state.required),
            }
        )
