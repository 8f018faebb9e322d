"""``GET /api/v1/_meta/entities``: what is defined, with each entity's JSON Schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from engine.jsonschema import record_schema
from runtime.api.problems import json_default

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine import EngineModel
    from metadata import EntityDef, FieldDef, RuleDef, WorkflowDef


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
    for key in ("unique", "index", "read_only"):
        if getattr(field, key):
            result[key] = True
    if field.values:
        result["values"] = list(field.values)
    if field.on_delete:
        result["on_delete"] = field.on_delete.value
    if field.min is not None:
        result["min"] = str(field.min)
    if field.max is not None:
        result["max"] = str(field.max)
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
        "actions": [
            {action.kind.value: {"entity": action.entity, "values": dict(action.values)}}
            if action.entity
            else {action.kind.value: {"values": dict(action.values)}}
            for action in rule.actions
        ],
    }


class MetaDocuments:
    """The metadata responses, serialized once per set of definitions."""

    def __init__(self, model: EngineModel) -> None:
        entities = [describe_entity(model, e) for e in model.project.entities.values()]
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


def meta_router(documents: Callable[[], MetaDocuments]) -> APIRouter:
    """Read-only metadata; ``documents`` returns those of the definitions now in force."""
    router = APIRouter(prefix="/api/v1/_meta", tags=["Metadata"])

    @router.get("/entities", summary="Entity definitions with their JSON Schemas")
    async def list_entities() -> Response:
        return Response(documents().entities, media_type="application/json")

    @router.get("/modules", summary="Enabled module packs")
    async def list_modules() -> Response:
        return Response(documents().modules, media_type="application/json")

    return router
