"""The admin designer: add a field, a rule or a role grant from forms, see the overlay's
diff and the migration plan, then apply. It writes the same customization files and runs
the same load-and-migrate step as the meta API (``runtime.customizing``), so a change that
would not load or migrate is refused with nothing written."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import RedirectResponse, Response

from engine.errors import UnknownEntity
from metadata import ADMIN_ROLE, DefinitionError, FieldType
from metadata.overlay_editor import OverlayEditError, add_field, append_item, update_field
from runtime.api.problems import ApiProblem
from runtime.customizing import (
    CustomizationRejected,
    apply_change,
    overlay_path,
    preview_change,
)
from runtime.web.handling import screen

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from starlette.datastructures import FormData

    from metadata import EntityDef
    from runtime.settings import Settings
    from runtime.web.screens.base import WebUI
    from runtime.web.session import Session

KINDS = ("field", "edit", "rule", "grant")
ROLE_NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
FIELD_TYPES = [t.value for t in FieldType if t is not FieldType.CHILDREN]
ACTIONS = ("read", "create", "update", "delete")
EVENTS = ("create", "update", "delete")
_ROLES_HEADER = "# Roles of this instance (written by Tessera's designer; comments are kept)\n"


class Change:
    """One designer change: which file it edits, how, and the form values it came from."""

    def __init__(self, kind: str, target: Path, edit: Callable[[Path], None], summary: str):
        self.kind = kind
        self.target = target
        self.edit = edit
        self.summary = summary


class Designer:
    def __init__(self, ui: WebUI) -> None:
        self.ui = ui
        self.lock = asyncio.Lock()

    async def error_page(self, request: Request, status: int, detail: str) -> Response:
        return await self.ui.error_page(request, status, detail)

    @property
    def settings(self) -> Settings:
        return self.ui.live.settings

    async def _admin(self, request: Request, *, checked: bool = False) -> Session:
        session = await (self.ui.checked(request) if checked else self.ui.session(request))
        if ADMIN_ROLE not in self.ui.live.current.project.role_closure(session.user.roles):
            raise ApiProblem(403, "the designer is for administrators")
        if not self.settings.meta_api_writes or self.settings.customizations is None:
            raise ApiProblem(
                403,
                "changing definitions from the server is turned off: set 'customizations' and "
                "'meta_api_writes: true' in tessera.yaml",
            )
        return session

    def _entity(self, pack: str, name: str) -> EntityDef:
        entity = self.ui.live.current.project.entities.get(f"{pack}.{name}")
        if entity is None or entity.is_child:
            raise UnknownEntity(f"no entity '{pack}.{name}' is enabled")
        return entity

    @screen
    async def home(self, request: Request) -> Response:
        session = await self._admin(request)
        return await self.ui.render(
            request, "designer_home.html", session=session, title="Designer"
        )

    @screen
    async def entity_page(self, request: Request, pack: str, entity: str) -> Response:
        session = await self._admin(request)
        return await self._entity_page(request, session, self._entity(pack, entity), {}, None, 200)

    async def _entity_page(
        self,
        request: Request,
        session: Session,
        entity: EntityDef,
        values: dict[str, Any],
        errors: dict[str, list[str]] | None,
        status: int,
    ) -> Response:
        project = self.ui.live.current.project
        return await self.ui.render(
            request,
            "designer_entity.html",
            status,
            session=session,
            title=f"Designer: {entity.label_plural}",
            entity=entity,
            field_types=FIELD_TYPES,
            targets=[e for e in project.entities.values() if not e.is_child],
            roles=sorted(project.roles),
            actions=ACTIONS,
            events=EVENTS,
            values=values,
            errors=errors or {},
            applied=request.query_params.get("applied"),
            editing=entity.fields.get(
                request.query_params.get("edit") or (values.get("name") or [""])[-1]
                if errors and "edit" in errors
                else request.query_params.get("edit") or ""
            ),
        )

    @screen
    async def change(self, request: Request, pack: str, entity: str, kind: str) -> Response:
        """Preview (``step=preview``) or apply (``step=apply``) one change."""
        session = await self._admin(request, checked=True)
        definition = self._entity(pack, entity)
        if kind not in KINDS:
            raise UnknownEntity(f"the designer adds {', '.join(KINDS)}, not '{kind}'")
        form = await request.form()
        values = {key: form.getlist(key) for key in form}
        try:
            change = self._change(kind, definition, form)
        except ValueError as exc:
            return await self._entity_page(
                request, session, definition, values, {kind: [str(exc)]}, 422
            )
        try:
            async with self.lock:
                if form.get("step") == "apply":
                    applied = await asyncio.to_thread(
                        apply_change,
                        self.settings,
                        change.target,
                        lambda: change.edit(change.target),
                        applied_by=f"designer:{session.user.username}",
                    )
                    await self.ui.live.install(applied.project, applied.generation)
                    location = f"/app/_designer/{pack}/{entity}?applied={kind}"
                    return RedirectResponse(location, status_code=303)
                preview = await asyncio.to_thread(
                    preview_change, self.settings, change.target, change.edit
                )
        except (OverlayEditError, DefinitionError, CustomizationRejected) as exc:
            return await self._entity_page(
                request, session, definition, values, {kind: _problems(exc)}, 422
            )
        return await self.ui.render(
            request,
            "designer_preview.html",
            session=session,
            title="Preview the change",
            entity=definition,
            kind=kind,
            summary=change.summary,
            diff=preview.diff,
            steps=[step.description for step in preview.plan.steps],
            refused=preview.plan.reasons(permission="a migration from the command line")
            if preview.plan.refused
            else [],
            sql=preview.plan.sql,
            form=[
                (k, v) for k, vs in values.items() if k not in {"step", "csrf_token"} for v in vs
            ],
        )

    def _change(self, kind: str, entity: EntityDef, form: FormData) -> Change:
        overlay = overlay_path(self.settings, entity.pack, entity.name)
        if kind == "field":
            name, definition = _field(form)
            return Change(
                kind, overlay, lambda path: add_field(path, name, definition), f"field '{name}'"
            )
        if kind == "edit":
            name, changes = _field_changes(form, entity)
            return Change(
                kind,
                overlay,
                lambda path: update_field(path, name, changes),
                f"changes to field '{name}'",
            )
        if kind == "rule":
            rule = _rule(form)
            return Change(
                kind,
                overlay,
                lambda path: append_item(path, ("rules",), rule),
                f"rule '{rule['name']}'",
            )
        role, grant = _grant(form, entity)
        roles_file = overlay.parent.parent / "roles.yaml"  # <customizations>/roles.yaml
        return Change(
            kind,
            roles_file,
            lambda path: append_item(path, ("roles", role, "grants"), grant, header=_ROLES_HEADER),
            f"a grant for role '{role}'",
        )


def _text(form: FormData, key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _field(form: FormData) -> tuple[str, dict[str, Any]]:
    name = _text(form, "name")
    if not name:
        raise ValueError("the field needs a name")
    kind = _text(form, "type")
    if kind not in FIELD_TYPES:
        raise ValueError("choose the field's type")
    definition: dict[str, Any] = {"type": kind}
    if _text(form, "label"):
        definition["label"] = _text(form, "label")
    if form.get("required") == "true":
        definition["required"] = True
    if kind == "enum":
        values = _names(_text(form, "values"))
        if not values:
            raise ValueError("an enum field needs its values, separated by commas")
        definition["values"] = values
    if kind == "reference":
        if not _text(form, "to"):
            raise ValueError("a reference field needs the entity it refers to")
        definition["to"] = _text(form, "to")
    if _text(form, "help"):
        definition["help"] = _text(form, "help")
    return name, definition


def _field_changes(form: FormData, entity: EntityDef) -> tuple[str, dict[str, Any]]:
    """An existing field's label, help and required, as the form sets them; an emptied
    label or help, or an unticked box, removes the customization (the pack's value, if
    any, applies again)."""
    name = _text(form, "name")
    if name not in entity.fields:
        raise ValueError(f"{entity.qualified_name} has no field '{name[:60]}'")
    return name, {
        "label": _text(form, "label") or None,
        "help": _text(form, "help") or None,
        "required": True if form.get("required") == "true" else None,
    }


def _rule(form: FormData) -> dict[str, Any]:
    name = _text(form, "name")
    if not name:
        raise ValueError("the rule needs a name")
    rule: dict[str, Any] = {"name": name}
    events = [e for e in form.getlist("on") if e in EVENTS]
    if events and set(events) != {"create", "update"}:
        rule["on"] = events
    for key in ("when", "assert", "field", "message"):
        if _text(form, key):
            rule[key] = _text(form, key)
    if "assert" not in rule:
        raise ValueError("the rule needs the condition every record must meet (assert)")
    return rule


def _grant(form: FormData, entity: EntityDef) -> tuple[str, dict[str, Any]]:
    role = _text(form, "role") or _text(form, "new_role")
    if not role:
        raise ValueError("choose a role, or name a new one")
    if not ROLE_NAME.fullmatch(role):
        raise ValueError(f"'{role[:60]}' is not a role name: lowercase letters, digits and _")
    actions = [a for a in form.getlist("actions") if a in ACTIONS]
    if not actions:
        raise ValueError("tick at least one action")
    grant: dict[str, Any] = {"entity": entity.qualified_name, "actions": actions}
    if _text(form, "where"):
        grant["where"] = _text(form, "where")
    for key in ("hidden_fields", "readonly_fields"):
        names = _names(_text(form, key))
        if names:
            grant[key] = names
    return role, grant


def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, DefinitionError):
        return [str(problem) for problem in exc.problems]
    if isinstance(exc, CustomizationRejected):
        return list(exc.reasons)
    return [str(exc)]
