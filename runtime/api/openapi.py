"""OpenAPI 3.1 paths and schemas for every generated endpoint, built from the definitions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.aggregate import MAX_GROUPS
from engine.fieldtypes import ID_SCHEMA
from engine.jsonschema import record_schema
from engine.query import DEFAULT_LIMIT, MAX_LIMIT
from metadata import FieldType
from runtime.auth import needs_authentication

if TYPE_CHECKING:
    from engine import EngineModel, EntityStore
    from metadata import ProjectDef

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "index": {"type": "integer"},
                    "rule": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status"],
}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


def _component_name(store: EntityStore, suffix: str = "") -> str:
    entity = store.entity
    return "".join(p.capitalize() for p in f"{entity.pack}_{entity.name}".split("_")) + suffix


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _envelope(schema: dict[str, Any], *, many: bool = False) -> dict[str, Any]:
    if many:
        return {
            "type": "object",
            "properties": {
                "data": {"type": "array", "items": schema},
                "meta": {
                    "type": "object",
                    "properties": {
                        "limit": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "next_cursor": {"type": ["string", "null"]},
                        "count": {"type": "integer"},
                    },
                },
            },
            "required": ["data", "meta"],
        }
    return {"type": "object", "properties": {"data": schema}, "required": ["data"]}


def _list_parameters(store: EntityStore) -> list[dict[str, Any]]:
    def query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description,
        }

    columns = store.query_columns
    parameters = [
        query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "Page size.",
        ),
        query("offset", {"type": "integer", "minimum": 0}, "Records to skip."),
        query("cursor", {"type": "string"}, "meta.next_cursor of the previous page."),
        query(
            "sort",
            {"type": "string"},
            "Comma-separated fields; a leading - sorts "
            f"descending. Sortable: {', '.join(columns.columns)}.",
        ),
        query("fields", {"type": "string"}, "Comma-separated fields to return."),
        query(
            "expand",
            {"type": "string"},
            "Comma-separated reference fields to return as "
            "objects."
            + (f" One of: {', '.join(columns.expandable)}." if columns.expandable else ""),
        ),
        query("count", {"type": "boolean"}, "Add meta.count, the number of matching records."),
        query(
            "q",
            {"type": "string", "maxLength": 200},
            f"Text search over: {', '.join(columns.search) or 'nothing'}.",
        ),
    ]
    for name, column in columns.columns.items():
        if column.type is FieldType.BOOLEAN:
            schema: dict[str, Any] = {"type": "boolean"}
        elif column.type is FieldType.ENUM:
            schema = {"type": "string", "enum": list(store.entity.fields[name].values)}
        elif column.type in {FieldType.INTEGER} or name == "version":
            schema = {"type": "integer"}
        elif column.type is None or column.type is FieldType.REFERENCE:
            schema = ID_SCHEMA
        else:
            schema = {"type": "string"}
        parameters.append(
            query(
                name,
                schema,
                f"Records whose {name} equals this. Operators: "
                f"{name}__ne, __gt, __gte, __lt, __lte, __in, __nin, __isnull"
                + (", __contains, __icontains, __startswith" if column.textual else "")
                + ".",
            )
        )
    return parameters


AGGREGATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"count": {"type": "integer"}},
                "additionalProperties": True,
            },
        },
        "meta": {
            "type": "object",
            "properties": {
                "group_by": {"type": "array", "items": {"type": "string"}},
                "measures": {"type": "array", "items": {"type": "string"}},
                "limit": {"type": "integer"},
                "truncated": {"type": "boolean"},
            },
        },
    },
    "required": ["data", "meta"],
}


def _aggregate_parameters(store: EntityStore) -> list[dict[str, Any]]:
    """The list's filters, ``q`` and ``limit`` (of groups), plus the aggregate's own."""
    own = {"offset", "cursor", "fields", "expand", "count", "sort"}
    parameters = [p for p in _list_parameters(store) if p["name"] not in own]
    text = {"type": "string"}
    for name, description in [
        (
            "group_by",
            f"Up to {MAX_GROUPS} comma-separated fields; a date or datetime may be bucketed: "
            "close_date__month (year, month, day).",
        ),
        (
            "measures",
            "Comma-separated FIELD__FUNCTION (sum, avg, min, max), e.g. amount__sum; "
            "count is always returned.",
        ),
        ("sort", "Comma-separated group keys or measures; a leading - sorts descending."),
    ]:
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": text,
                "description": description,
            }
        )
    return parameters


def _export_parameters(store: EntityStore) -> list[dict[str, Any]]:
    """The list's filters, ``q``, ``sort`` and ``fields`` (every page: no paging), plus
    ``format``."""
    paging = {"limit", "offset", "cursor", "expand", "count"}
    parameters = [p for p in _list_parameters(store) if p["name"] not in paging]
    parameters.append(
        {
            "name": "format",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["csv", "jsonl"], "default": "csv"},
            "description": "csv (a header line, then one line per record) or jsonl.",
        }
    )
    return parameters


def _entity_paths(
    store: EntityStore, schemas: dict[str, Any], project: ProjectDef
) -> dict[str, Any]:
    entity = store.entity
    read, create, patch = (_component_name(store, s) for s in ("", "Create", "Patch"))
    tag = entity.label_plural
    base = f"/api/v1/{entity.pack}/{entity.name}"
    id_param = {"name": "id", "in": "path", "required": True, "schema": ID_SCHEMA}
    one = {"content": {"application/json": {"schema": _envelope(_ref(read))}}}
    body = {"required": True, "content": {"application/json": {"schema": _ref(create)}}}
    common_errors = {
        "400": _problem("Malformed request"),
        "404": _problem("Not found"),
        "422": _problem("Invalid record"),
        "409": _problem("Conflict"),
        "413": _problem("Body too large"),
    }
    unique = list(entity.unique_fields())
    paths: dict[str, Any] = {
        base: {
            "get": {
                "tags": [tag],
                "summary": f"List {tag.lower()}",
                "operationId": f"list_{entity.pack}_{entity.name}",
                "parameters": _list_parameters(store),
                "responses": {
                    "200": {
                        "description": "A page of records",
                        "content": {
                            "application/json": {"schema": _envelope(_ref(read), many=True)}
                        },
                    },
                    "400": _problem("Unknown field or malformed parameter"),
                },
            },
            "post": {
                "tags": [tag],
                "summary": f"Create a {entity.label.lower()}",
                "operationId": f"create_{entity.pack}_{entity.name}",
                "requestBody": body,
                "responses": {"201": {"description": "Created", **one}, **common_errors},
            },
        },
        f"{base}/_aggregate": {
            "get": {
                "tags": [tag],
                "summary": f"Grouped counts and sums of {tag.lower()}",
                "operationId": f"aggregate_{entity.pack}_{entity.name}",
                "parameters": _aggregate_parameters(store),
                "responses": {
                    "200": {
                        "description": "One row per group: its keys, count and measures",
                        "content": {"application/json": {"schema": AGGREGATE_SCHEMA}},
                    },
                    "400": _problem("Unknown field or malformed parameter"),
                },
            }
        },
        f"{base}/_export": {
            "get": {
                "tags": [tag],
                "summary": f"Export {tag.lower()} as CSV or JSON lines",
                "operationId": f"export_{entity.pack}_{entity.name}",
                "parameters": _export_parameters(store),
                "responses": {
                    "200": {
                        "description": "Every matching record the caller may read",
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    "400": _problem("Unknown field or malformed parameter"),
                },
            }
        },
        f"{base}/_bulk": {
            "post": {
                "tags": [tag],
                "summary": f"Create many {tag.lower()} (all or nothing)",
                "operationId": f"bulk_{entity.pack}_{entity.name}",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "items": _ref(create),
                                "minItems": 1,
                                "maxItems": 1000,
                            }
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        "content": {
                            "application/json": {"schema": _envelope(_ref(read), many=True)}
                        },
                    },
                    **common_errors,
                },
            }
        },
        f"{base}/{{id}}": {
            "parameters": [id_param],
            "get": {
                "tags": [tag],
                "summary": f"Read a {entity.label.lower()}",
                "operationId": f"get_{entity.pack}_{entity.name}",
                "responses": {
                    "200": {"description": "The record (ETag: its version)", **one},
                    "404": _problem("Not found"),
                },
            },
            "patch": {
                "tags": [tag],
                "summary": f"Update a {entity.label.lower()}",
                "operationId": f"update_{entity.pack}_{entity.name}",
                "parameters": [
                    {
                        "name": "If-Match",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(patch)}},
                },
                "responses": {
                    "200": {"description": "Updated", **one},
                    **common_errors,
                    "412": _problem("Stale If-Match"),
                },
            },
            "delete": {
                "tags": [tag],
                "summary": f"Delete a {entity.label.lower()}",
                "operationId": f"delete_{entity.pack}_{entity.name}",
                "responses": {
                    "204": {"description": "Deleted"},
                    "404": _problem("Not found"),
                    "409": _problem("Still referenced"),
                    "412": _problem("Stale If-Match"),
                },
            },
        },
    }
    if unique:
        paths[f"{base}/by/{{field}}/{{value}}"] = {
            "put": {
                "tags": [tag],
                "summary": f"Create or update a {entity.label.lower()} by a unique field",
                "operationId": f"upsert_{entity.pack}_{entity.name}",
                "parameters": [
                    {
                        "name": "field",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": unique},
                    },
                    {"name": "value", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(patch)}},
                },
                "responses": {
                    "200": {"description": "Updated", **one},
                    "201": {"description": "Created", **one},
                    **common_errors,
                },
            }
        }
    schemas[read] = record_schema(entity, project, "read")
    schemas[create] = record_schema(entity, project, "create")
    schemas[patch] = record_schema(entity, project, "patch")
    return paths


def add_entity_paths(document: dict[str, Any], model: EngineModel) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    paths = document.setdefault("paths", {})
    for store in model.public_stores():
        paths.update(_entity_paths(store, schemas, model.project))
    _declare_bearer_tokens(document)
    return document


def _declare_bearer_tokens(document: dict[str, Any]) -> None:
    """Every operation under /api/ needs a bearer token, except signing in."""
    document["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from POST /api/v1/auth/token or `tessera token create`.",
    }
    unauthenticated = _problem("No valid bearer token")
    for path, operations in document["paths"].items():
        if not needs_authentication(path):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["security"] = [{"bearer": []}]
                operation["responses"].setdefault("401", unauthenticated)
