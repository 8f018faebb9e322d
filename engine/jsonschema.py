"""JSON Schemas (draft 2020-12) of each entity's records, generated from its definition.

Three shapes per entity: ``read`` (what the API returns), ``create`` (POST body: required
fields required) and ``patch`` (PATCH body: everything optional, except inside the lines of
a ``children`` field, which are always sent whole). They feed the OpenAPI document and
``GET /api/v1/_meta/entities``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from engine.fieldtypes import ID_SCHEMA, kind_of
from metadata import FieldType

if TYPE_CHECKING:
    from metadata import EntityDef, FieldDef, ProjectDef

Shape = Literal["read", "create", "patch"]

SYSTEM_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {**ID_SCHEMA, "readOnly": True, "description": "Opaque record id."},
    "created_at": {"type": "string", "format": "date-time", "readOnly": True},
    "updated_at": {"type": "string", "format": "date-time", "readOnly": True},
    "created_by": {"type": ["string", "null"], "readOnly": True},
    "updated_by": {"type": ["string", "null"], "readOnly": True},
    "version": {"type": "integer", "readOnly": True, "minimum": 1},
}


def field_schema(field: FieldDef, project: ProjectDef, shape: Shape) -> dict[str, Any]:
    if field.type is FieldType.CHILDREN and field.entity is not None:
        # a line is validated whole, also in a PATCH of its parent: its required fields too
        line_shape: Shape = "read" if shape == "read" else "create"
        child = record_schema(project.entity(field.entity), project, line_shape, child=True)
        schema: dict[str, Any] = {"type": "array", "items": child}
    elif field.type is FieldType.REFERENCE and shape == "read":
        schema = {**ID_SCHEMA, "description": f"Id of a {field.to} record."}
    else:
        kind = kind_of(field)
        schema = dict(kind.json_schema(field))
        if shape != "read" and field.required and kind.blank_is_empty:
            # the validator refuses "" for a required text field ("is required")
            schema["minLength"] = max(1, schema.get("minLength", 0))
    schema["title"] = field.label
    if field.help:
        schema["description"] = field.help
    default = None if field.default is None else kind_of(field).schema_default(field.default)
    if default is not None:
        schema["default"] = default
    if not field.is_writable:
        schema["readOnly"] = True
    nullable = not field.required
    if nullable and field.type is not FieldType.CHILDREN and schema:
        schema = {"anyOf": [schema, {"type": "null"}], "title": field.label}
    return schema


def record_schema(
    entity: EntityDef, project: ProjectDef, shape: Shape, *, child: bool = False
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if shape == "read":
        properties.update(SYSTEM_PROPERTIES)
    elif child:
        properties["id"] = {**ID_SCHEMA, "description": "Id of an existing line to keep."}
    required = []
    for field in entity.fields.values():
        if shape != "read" and not field.is_writable:
            continue
        properties[field.name] = field_schema(field, project, shape)
        if shape == "create" and field.required and field.default is None:
            required.append(field.name)
    schema: dict[str, Any] = {
        "type": "object",
        "title": entity.label,
        "properties": properties,
        "additionalProperties": shape == "read",
    }
    if shape != "read":
        # System fields are accepted and ignored so that a record read can be sent back.
        for name in SYSTEM_PROPERTIES:
            properties.setdefault(name, {})
    if required:
        schema["required"] = required
    return schema
