"""``GET /api/v1/_meta/entities``: what is defined, with each entity's JSON Schema."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from engine.jsonschema import record_schema
from metadata import Permission
from runtime.api.problems import json_default
from runtime.auth import current_user

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine import EngineModel
    from engine.access import EntityAccess
    from metadata import ActionDef, EntityDef, FieldDef, RuleDef, WorkflowDef


def describe_field(field: FieldDef) -> dict[str, Any]:
    result: dict[str, Any] = {
        "name": field.name,
        "type": field.type.value,
        "label": field.label,
        "required": field.required,
    }
    for key in (
        "help",
        "to",
        "entity",
        "computed",
        "format",
        "date_field",
        "pattern",
        "max_length",
        "min_length",
        "precision",
        "scale",
        "default",
    ):
        value = getattr(field, key)
        if value is not None:
            result[key] = value
    for key in ("unique", "index", "read_only", "allow_on_submit"):
        if getattr(field, key):
            result[key] = True
    if field.values:
        result["values"] = list(field.values)
    if field.on_delete:
        result["on_delete"] = field.on_delete.value
    if field.format is not None:
        result["assign"] = field.assign.value  # an autonumber's: insert, or submit
        result["gapless"] = field.gapless  # false: numbers drawn outside the write's transaction
    if field.min is not None:
        result["min"] = str(field.min)
    if field.max is not None:
        result["max"] = str(field.max)
    if field.lookup is not None:  # filled by the engine when a write leaves it empty
        result["lookup"] = {"entity": field.lookup.entity, "field": field.lookup.field}
    return result


def describe_workflow(workflow: WorkflowDef) -> dict[str, Any]:
    return {
        "field": workflow.field,
        "initial": workflow.initial,
        "transitions": [
            {
                "from": sorted(t.sources),
                "to": t.target,
                "label": t.label,
                "roles": sorted(t.roles),
                "when": t.when,
            }
            for t in workflow.transitions
        ],
        "source": workflow.origin,
    }


def describe_entity(model: EngineModel, entity: EntityDef) -> dict[str, Any]:
    return {
        "name": entity.qualified_name,
        "pack": entity.pack,
        "label": entity.label,
        "label_plural": entity.label_plural,
        "description": entity.description,
        "title": entity.title,
        "parent": entity.parent,
        "endpoint": None if entity.is_child else f"/api/v1/{entity.pack}/{entity.name}",
        "fields": [describe_field(f) for f in entity.fields.values()],
        "indexes": [list(g) for g in entity.indexes],
        "unique": [list(g) for g in entity.unique],
        "rules": [describe_rule(r) for r in entity.rules],
        "form": describe_form(entity),
        "workflow": describe_workflow(entity.workflow) if entity.workflow else None,
        "document": entity.document,
        "ledger": entity.ledger is not None,
        "balance": list(entity.balance.key) if entity.balance is not None else None,
        "schema": record_schema(entity, model.project, "read"),
    }


def describe_form(entity: EntityDef) -> dict[str, Any]:
    """The layout a client renders; each field's label and help resolved (the form's own,
    else the field's)."""
    return {
        "sections": [
            {
                "name": section.name,
                "label": section.label,
                "columns": section.columns,
                "visible_if": section.visible_if,
                "fields": [
                    {
                        "field": item.field,
                        "label": item.label or entity.fields[item.field].label,
                        "help": item.help or entity.fields[item.field].help,
                        "visible_if": item.visible_if,
                        "read_only": item.read_only or not entity.fields[item.field].is_writable,
                    }
                    for item in section.fields
                ],
            }
            for section in entity.form.sections
        ]
    }


def describe_rule(rule: RuleDef) -> dict[str, Any]:
    """What a client (a form showing why a save may fail, a designer) needs of a rule."""
    return {
        "name": rule.name,
        "on": sorted(rule.events),
        "when": rule.when,
        "assert": rule.assertion,
        "field": rule.field,
        "message": rule.message,
        "actions": [_action(action) for action in rule.actions],
    }


def _action(action: ActionDef) -> dict[str, Any]:
    """An action's form; ``for_each`` (any kind may run once per line) beside its kind."""
    described = action.describe()
    return described if action.for_each is None else {"for_each": action.for_each, **described}


def _as_seen(entity: dict[str, Any], access: EntityAccess) -> dict[str, Any]:
    """An entity's description for a caller: without the fields hidden from them, with
    what they may do and which fields they may not write."""
    hidden = access.hidden
    seen = dict(entity)
    seen["fields"] = [f for f in entity["fields"] if f["name"] not in hidden]
    schema = dict(entity["schema"])
    schema["properties"] = {
        k: v for k, v in schema.get("properties", {}).items() if k not in hidden
    }
    if "required" in schema:
        schema["required"] = [k for k in schema["required"] if k not in hidden]
    seen["schema"] = schema
    seen["form"] = {
        "sections": [
            {**section, "fields": [f for f in section["fields"] if f["field"] not in hidden]}
            for section in entity["form"]["sections"]
        ]
    }
    seen["permissions"] = {
        "actions": sorted(p.value for p in access.permissions),
        "readonly_fields": sorted(access.readonly - hidden),
    }
    return seen


class MetaDocuments:
    """The metadata responses, serialized once per set of definitions (and per set of
    roles: a caller sees only the entities they may read, without their hidden fields)."""

    def __init__(self, model: EngineModel) -> None:
        self._model = model
        self._by_roles: dict[frozenset[str], bytes] = {}
        entities = [describe_entity(model, e) for e in model.project.entities.values()]
        self._described = entities
        modules = [
            {
                "name": m.name,
                "label": m.label,
                "version": m.version,
                "depends": list(m.depends),
                "description": m.description,
            }
            for m in model.project.modules.values()
        ]
        self.entities = orjson.dumps(
            {"data": entities, "meta": {"count": len(entities)}}, default=json_default
        )
        self.modules = orjson.dumps({"data": modules, "meta": {"count": len(modules)}})

    def entities_for(self, roles: frozenset[str]) -> bytes:
        cached = self._by_roles.get(roles)
        if cached is not None:
            return cached
        policy = self._model.access
        project = self._model.project
        seen = []
        for described in self._described:
            entity = project.entity(described["name"])
            owner = entity.parent if entity.is_child and entity.parent else entity.qualified_name
            access = policy.access(owner, roles)
            if not access.allows(Permission.READ):
                continue
            if entity.is_child:  # lines follow their parent's grant, with no field hidden
                access = dataclasses.replace(access, hidden=frozenset(), readonly=frozenset())
            seen.append(_as_seen(described, access))
        document = orjson.dumps({"data": seen, "meta": {"count": len(seen)}}, default=json_default)
        if len(self._by_roles) < 1024:
            self._by_roles[roles] = document
        return document


def meta_router(documents: Callable[[], MetaDocuments]) -> APIRouter:
    """Read-only metadata; ``documents`` returns those of the definitions now in force."""
    router = APIRouter(prefix="/api/v1/_meta", tags=["Metadata"])

    @router.get("/entities", summary="Entity definitions with their JSON Schemas")
    async def list_entities(request: Request) -> Response:
        """The entities the caller may read; for non-admins without their hidden fields."""
        user = current_user(request)
        body = documents().entities if user.is_admin else documents().entities_for(user.roles)
        return Response(body, media_type="application/json")

    @router.get("/modules", summary="Enabled module packs")
    async def list_modules() -> Response:
        return Response(documents().modules, media_type="application/json")

    return router
