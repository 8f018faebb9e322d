"""OpenAPI 3.1 paths and schemas for every generated endpoint, built from the definitions.

The document says what the server does, so that a generated client gets every operation
and a fuzzer finds no drift:

- component names, and the titles generated clients name their models after, are the
  pack and entity in PascalCase with the shape: ``ContactsAccount`` (read),
  ``ContactsAccountCreate``, ``ContactsAccountPatch``, ``ContactsAccountUpsert``; the lines
  of a ``children`` field ``KitchenItemLine`` (read) and ``KitchenItemLineInput`` (written
  whole, in a create, patch or upsert alike). Always qualified with the pack, so that
  enabling another pack with the same entity name renames nothing in a client generated
  before;
- every problem status an operation can answer is listed (``components/responses``), as
  ``application/problem+json``; a method a path does not list is answered 405 with
  ``Allow`` (runtime/api/methods.py);
- FastAPI's own routes answer a malformed parameter or body with a 400 problem, not its
  default 422 ``HTTPValidationError``: the document says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.fieldtypes import ID_SCHEMA
from engine.jsonschema import record_schema
from metadata import FieldType
from runtime.api.openapi_files import file_paths
from runtime.api.openapi_queries import (
    aggregate_parameters,
    export_parameters,
    list_parameters,
    query_parameter,
)
from runtime.api.openapi_schemas import (
    AGGREGATE_SCHEMA,
    HISTORY_ENTRY_SCHEMA,
    PROBLEM_ERROR_SCHEMA,
    PROBLEM_SCHEMA,
    TRANSITION_SCHEMA,
)
from runtime.api.reports import report_paths
from runtime.auth import needs_authentication

if TYPE_CHECKING:
    from engine import EngineModel, EntityStore
    from metadata import EntityDef, ProjectDef

MAX_HISTORY_NUMBER = 10**18 - 1
"""``after`` and ``limit`` of a history: at most 18 digits (runtime/api/records.py)."""

_HEADER_TEXT = {"schema": {"type": "string"}, "required": True}
_PROBLEMS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "400": ("BadRequest", "Malformed request: not JSON, an unknown or malformed parameter", {}),
    "401": (
        "Unauthorized",
        "No valid bearer token",
        {"WWW-Authenticate": {**_HEADER_TEXT, "description": "Bearer"}},
    ),
    "403": ("Forbidden", "Your roles do not allow this", {}),
    "404": ("NotFound", "No such record, or none you may read", {}),
    "409": ("Conflict", "A unique value is taken, or the record is still referenced", {}),
    "412": ("PreconditionFailed", "If-Match is not the record's current version", {}),
    "413": ("TooLarge", "The body is over max_body_bytes, or too many records", {}),
    "422": ("Invalid", "Invalid record: every field error at once, in errors", {}),
    "429": (
        "TooManyRequests",
        "Too many attempts: wait",
        {"Retry-After": {**_HEADER_TEXT, "description": "Seconds to wait"}},
    ),
    "503": (
        "Unavailable",
        "The definitions changed or the database is not ready: retry",
        {"Retry-After": {"schema": {"type": "string"}, "required": False}},
    ),
}


def _problem_component(status: str) -> dict[str, Any]:
    _, description, headers = _PROBLEMS[status]
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _problems(*statuses: str) -> dict[str, Any]:
    """Responses for ``statuses``, each a reference to its shared problem response."""
    return {s: {"$ref": f"#/components/responses/{_PROBLEMS[s][0]}"} for s in statuses}


def component_name(entity: EntityDef, suffix: str = "") -> str:
    """``kitchen.item_line`` → ``KitchenItemLine`` + ``suffix``."""
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


_ETAG = {"ETag": {**_HEADER_TEXT, "description": 'The record\'s version, quoted: "3"'}}
_LOCATION = {"Location": {**_HEADER_TEXT, "description": "The record's URL"}}
_IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "pattern": '^(\\*|(W/)?"?[0-9]{1,12}"?)$'},
    "description": 'The version read (the ETag, "3"): 412 if the record changed since.',
}


def _entity_schemas(
    entity: EntityDef, project: ProjectDef, schemas: dict[str, Any], public: set[str]
) -> None:
    """The read, create, patch and upsert schemas of ``entity`` (and of its lines)."""
    read = record_schema(entity, project, "read")
    _expandable_references(entity, project, read, public)
    _name(schemas, component_name(entity), _hoist_lines(entity, project, read, schemas, ""))
    for shape, suffix in [("create", "Create"), ("patch", "Patch"), ("patch", "Upsert")]:
        schema = record_schema(entity, project, shape)  # type: ignore[arg-type]
        schema = _hoist_lines(entity, project, schema, schemas, "Input")
        if suffix == "Upsert":
            schema["description"] = (
                "Updates the record with this key like a PATCH; when there is none, creates "
                "it with the key from the path: then the fields required on create are "
                "required (a 422 names any missing)."
            )
        _name(schemas, component_name(entity, suffix), schema)


def _name(schemas: dict[str, Any], name: str, schema: dict[str, Any]) -> None:
    schema["title"] = name
    schemas[name] = schema


def _hoist_lines(
    entity: EntityDef,
    project: ProjectDef,
    schema: dict[str, Any],
    schemas: dict[str, Any],
    suffix: str,
) -> dict[str, Any]:
    """``schema`` with the lines of each ``children`` field as a reference to a component
    of their own (``KitchenItemLine`` to read, ``KitchenItemLineInput`` to write)."""
    for field in entity.fields.values():
        if field.type is not FieldType.CHILDREN or field.entity is None:
            continue
        child = project.entity(field.entity)
        prop = schema["properties"].get(field.name)
        if prop is None or "items" not in prop:
            continue
        name = component_name(child, suffix)
        line = _hoist_lines(child, project, prop["items"], schemas, suffix)
        _name(schemas, name, line)
        prop["items"] = _ref(name)
    return schema


def _expandable_references(
    entity: EntityDef, project: ProjectDef, read: dict[str, Any], public: set[str]
) -> None:
    """A reference reads as the target's id, or with ``expand`` as the target record."""
    for field in entity.fields.values():
        if field.type is not FieldType.REFERENCE or field.to not in public:
            continue
        target = component_name(project.entity(field.to))
        choices: list[dict[str, Any]] = [
            {**ID_SCHEMA, "description": f"Id of a {field.to} record."},
            {**_ref(target), "description": f"The {field.to} record (with expand={field.name})."},
        ]
        if not field.required:
            choices.append({"type": "null"})
        schema: dict[str, Any] = {"anyOf": choices, "title": field.label}
        if field.help:
            schema["description"] = field.help
        if not field.is_writable:  # e.g. a document's amended_from
            schema["readOnly"] = True
        read["properties"][field.name] = schema


_DOCUMENT_OPERATIONS = (
    ("_submit", "submit", "Submit a draft {noun} (it is then frozen)", "Submitted", "200"),
    ("_cancel", "cancel", "Cancel a submitted {noun}", "Cancelled", "200"),
    ("_amend", "amend", "A new draft copy of a cancelled {noun}", "The new draft", "201"),
)


def _document_paths(
    base: str,
    op: str,
    tag: str,
    noun: str,
    id_param: dict[str, Any],
    one: dict[str, Any],
) -> dict[str, Any]:
    """``_submit``, ``_cancel`` and ``_amend`` of a document (``document: true``)."""
    paths: dict[str, Any] = {}
    for suffix, verb, summary, answer, status in _DOCUMENT_OPERATIONS:
        headers = {**_LOCATION, **_ETAG} if status == "201" else _ETAG
        paths[f"{base}/{{id}}/{suffix}"] = {
            "parameters": [id_param],
            "post": {
                "tags": [tag],
                "summary": summary.format(noun=noun),
                "operationId": f"{verb}_{op}",
                "parameters": [_IF_MATCH],
                "responses": {
                    status: {"description": answer, "headers": headers, **one},
                    **_problems("400", "403", "404", "409", "412", "422", "503"),
                },
            },
        }
    return paths


def _entity_paths(store: EntityStore) -> dict[str, Any]:
    entity = store.entity
    read, create, patch, upsert = (
        component_name(entity, s) for s in ("", "Create", "Patch", "Upsert")
    )
    tag = entity.label_plural
    noun = entity.label.lower()
    base = f"/api/v1/{entity.pack}/{entity.name}"
    op = f"{entity.pack}_{entity.name}"
    id_param = {"name": "id", "in": "path", "required": True, "schema": ID_SCHEMA}
    one = {"content": {"application/json": {"schema": _envelope(_ref(read))}}}
    many = {"content": {"application/json": {"schema": _envelope(_ref(read), many=True)}}}

    def body(schema: dict[str, Any]) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    paths: dict[str, Any] = {
        base: {
            "get": {
                "tags": [tag],
                "summary": f"List {tag.lower()}",
                "operationId": f"list_{op}",
                "parameters": list_parameters(store),
                "responses": {
                    "200": {"description": "A page of records", **many},
                    **_problems("400", "403", "503"),
                },
            },
            "post": {
                "tags": [tag],
                "summary": f"Create a {noun}",
                "operationId": f"create_{op}",
                "requestBody": body(_ref(create)),
                "responses": {
                    "201": {"description": "Created", "headers": {**_LOCATION, **_ETAG}, **one},
                    **_problems("400", "403", "409", "413", "422", "503"),
                },
            },
        },
        f"{base}/_aggregate": {
            "get": {
                "tags": [tag],
                "summary": f"Grouped counts and sums of {tag.lower()}",
                "operationId": f"aggregate_{op}",
                "parameters": aggregate_parameters(store),
                "responses": {
                    "200": {
                        "description": "One row per group: its keys, count and measures",
                        "content": {"application/json": {"schema": AGGREGATE_SCHEMA}},
                    },
                    **_problems("400", "403", "503"),
                },
            }
        },
        f"{base}/_export": {
            "get": {
                "tags": [tag],
                "summary": f"Export {tag.lower()} as CSV or JSON lines",
                "operationId": f"export_{op}",
                "parameters": export_parameters(store),
                "responses": {
                    "200": {
                        "description": "Every matching record the caller may read",
                        "content": {
                            "text/csv": {"schema": {"type": "string"}},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems("400", "403", "503"),
                },
            }
        },
        f"{base}/_bulk": {
            "post": {
                "tags": [tag],
                "summary": f"Create many {tag.lower()} (all or nothing)",
                "operationId": f"bulk_{op}",
                "requestBody": body(
                    {"type": "array", "items": _ref(create), "minItems": 1, "maxItems": 1000}
                ),
                "responses": {
                    "201": {"description": "Created", **many},
                    **_problems("400", "403", "409", "413", "422", "503"),
                },
            }
        },
        f"{base}/{{id}}": {
            "parameters": [id_param],
            "get": {
                "tags": [tag],
                "summary": f"Read a {noun}",
                "operationId": f"get_{op}",
                "parameters": [p for p in list_parameters(store) if p["name"] in _READ_PARAMS],
                "responses": {
                    "200": {"description": "The record", "headers": _ETAG, **one},
                    **_problems("400", "403", "404", "503"),
                },
            },
            "patch": {
                "tags": [tag],
                "summary": f"Update a {noun}",
                "operationId": f"update_{op}",
                "parameters": [_IF_MATCH],
                "requestBody": body(_ref(patch)),
                "responses": {
                    "200": {"description": "Updated", "headers": _ETAG, **one},
                    **_problems("400", "403", "404", "409", "412", "413", "422", "503"),
                },
            },
            "delete": {
                "tags": [tag],
                "summary": f"Delete a {noun}",
                "operationId": f"delete_{op}",
                "parameters": [_IF_MATCH],
                "responses": {
                    "204": {"description": "Deleted"},
                    **_problems("400", "403", "404", "409", "412", "422", "503"),
                },
            },
        },
        f"{base}/{{id}}/_history": {
            "parameters": [id_param],
            "get": {
                "tags": [tag],
                "summary": f"The history of a {noun}: who changed what, when",
                "operationId": f"history_{op}",
                "parameters": [
                    query_parameter(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": MAX_HISTORY_NUMBER},
                        "Entries after this entry id (meta.next_after of the previous page).",
                    ),
                    query_parameter(
                        "limit",
                        {"type": "integer", "minimum": 0, "maximum": MAX_HISTORY_NUMBER},
                        "Entries per page: default 100, at most 1000.",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "The record's changes, oldest first",
                        "content": {"application/json": {"schema": _HISTORY_PAGE}},
                    },
                    **_problems("400", "403", "404", "503"),
                },
            },
        },
        f"{base}/{{id}}/_print": {
            "parameters": [id_param],
            "get": {
                "tags": [tag],
                "summary": f"A {noun} printed through a print format, as PDF or HTML",
                "operationId": f"print_{op}",
                "parameters": [
                    query_parameter(
                        "format", {"type": "string", "enum": ["pdf", "html"]}, "Default: pdf."
                    ),
                    query_parameter(
                        "template",
                        {"type": "string"},
                        "A print format (<name>.print.html) of the packs' templates/; "
                        "default: <entity>.print.html if there is one, else a generic layout.",
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "The printed record (docs/print.md)",
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                            "text/html": {"schema": {"type": "string"}},
                        },
                    },
                    **_problems("400", "403", "404", "422", "503"),
                },
            },
        },
    }
    shared = _problems("400", "403", "404", "409", "503")
    lines = {name: child.entity for name, child in store.children.items()}
    paths.update(
        file_paths(
            entity, base=base, op=op, tag=tag, id_param=id_param, problems=shared, lines=lines
        )
    )
    if store.workflow is not None:
        paths[f"{base}/{{id}}/_transitions"] = {
            "parameters": [id_param],
            "get": {
                "tags": [tag],
                "summary": f"The workflow moves a {noun} can take now",
                "operationId": f"transitions_{op}",
                "responses": {
                    "200": {
                        "description": "Each move out of the current state, and whether "
                        "you may take it",
                        "content": {"application/json": {"schema": _TRANSITIONS_PAGE}},
                    },
                    **_problems("403", "404", "503"),
                },
            },
        }
    if entity.document:
        paths.update(_document_paths(base, op, tag, noun, id_param, one))
    unique = list(entity.unique_fields())
    if unique:
        paths[f"{base}/by/{{field}}/{{value}}"] = {
            "put": {
                "tags": [tag],
                "summary": f"Create or update a {noun} by a unique field",
                "operationId": f"upsert_{op}",
                "parameters": [
                    {
                        "name": "field",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": unique},
                    },
                    {
                        "name": "value",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The key: a value of the field (422 if it is not one).",
                    },
                ],
                "requestBody": body(_ref(upsert)),
                "responses": {
                    "200": {"description": "Updated", "headers": {**_LOCATION, **_ETAG}, **one},
                    "201": {"description": "Created", "headers": {**_LOCATION, **_ETAG}, **one},
                    **_problems("400", "403", "409", "413", "422", "503"),
                },
            }
        }
    if entity.append_only:  # a ledger or balance: only postings write it (405 otherwise)
        return _read_only(paths)
    return paths


def _read_only(paths: dict[str, Any]) -> dict[str, Any]:
    """``paths`` without their writes (and without the paths that only write)."""
    kept = {}
    for path, item in paths.items():
        reads = {k: v for k, v in item.items() if k not in {"post", "patch", "delete", "put"}}
        if set(reads) - {"parameters"}:
            kept[path] = reads
    return kept


_READ_PARAMS = frozenset({"fields", "expand"})
_HISTORY_PAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"type": "array", "items": _ref("HistoryEntry")},
        "meta": {
            "type": "object",
            "properties": {
                "limit": {"type": "integer"},
                "next_after": {
                    "type": ["string", "null"],
                    "description": "after for the next page; null on the last",
                },
            },
        },
    },
    "required": ["data", "meta"],
}
_TRANSITIONS_PAGE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "data": {"type": "array", "items": _ref("Transition")},
        "meta": {
            "type": "object",
            "properties": {
                "field": {"type": "string", "description": "The workflow's field"},
                "state": {"description": "The record's current state"},
            },
        },
    },
    "required": ["data", "meta"],
}


def add_entity_paths(document: dict[str, Any], model: EngineModel) -> dict[str, Any]:
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ProblemError"] = PROBLEM_ERROR_SCHEMA
    schemas["HistoryEntry"] = HISTORY_ENTRY_SCHEMA
    schemas["Transition"] = TRANSITION_SCHEMA
    components["responses"] = {name: _problem_component(s) for s, (name, _, _) in _PROBLEMS.items()}
    paths = document.setdefault("paths", {})
    stores = model.public_stores()
    public = {store.entity.qualified_name for store in stores}
    for store in stores:
        paths.update(_entity_paths(store))
        _entity_schemas(store.entity, model.project, schemas, public)
    paths.update(report_paths(model))
    _answer_bad_parameters_with_400(document)
    _document_routes(document)
    _declare_bearer_tokens(document)
    return document


_FIELD_CHANGE = ("400", "403", "404", "409", "413", "422")
_ROUTE_PROBLEMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("get", "/healthz"): ("503",),
    ("post", "/api/v1/auth/token"): ("400", "401", "413", "429"),
    ("get", "/api/v1/_outbox"): ("400", "403"),
    ("get", "/api/v1/_outbox/{event_id}"): ("400", "403", "404"),
    ("post", "/api/v1/_outbox/{event_id}/retry"): ("400", "403", "404", "409"),
    ("post", "/api/v1/_meta/entities/{qualified}/fields"): _FIELD_CHANGE,
    ("patch", "/api/v1/_meta/entities/{qualified}/fields/{name}"): _FIELD_CHANGE,
    ("delete", "/api/v1/_meta/entities/{qualified}/fields/{name}"): (
        "400",
        "403",
        "404",
        "409",
        "422",
    ),
}
"""The problems the application's own routes answer (runtime/api/auth.py, outbox.py,
customize.py): admin-only routes 403, changing fields also while ``meta_api_writes`` is
off."""
_SIGN_IN_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "title": "SignIn",
                "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                "required": ["username", "password"],
            }
        }
    },
}


def _document_routes(document: dict[str, Any]) -> None:
    """The problem responses of the application's own routes, and the sign-in body
    (read by hand, so FastAPI does not know it)."""
    for (method, path), statuses in _ROUTE_PROBLEMS.items():
        operation = document["paths"].get(path, {}).get(method)
        if operation is None:
            continue
        for status, response in _problems(*statuses).items():
            if status in operation["responses"] and "content" in operation["responses"][status]:
                continue
            operation["responses"][status] = response
    sign_in = document["paths"].get("/api/v1/auth/token", {}).get("post")
    if sign_in is not None:
        sign_in.setdefault("requestBody", _SIGN_IN_BODY)
    for path, operations in document["paths"].items():
        if not path.startswith("/api/v1/_outbox/{event_id}"):
            continue
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                if parameter["name"] == "event_id":  # a whole number (runtime/api/outbox.py)
                    parameter["schema"] = {"type": "string", "pattern": "^[0-9]{1,18}$"}


def _answer_bad_parameters_with_400(document: dict[str, Any]) -> None:
    """FastAPI documents a 422 ``HTTPValidationError`` for each of its own routes that
    takes parameters or a body; Tessera answers those requests with a 400 problem."""
    schemas = document["components"]["schemas"]
    for operations in document["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            default = responses.get("422", {})
            schema = default.get("content", {}).get("application/json", {}).get("schema", {})
            if schema.get("$ref") == "#/components/schemas/HTTPValidationError":
                del responses["422"]
                responses.setdefault("400", _problems("400")["400"])
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def _declare_bearer_tokens(document: dict[str, Any]) -> None:
    """Every operation under /api/ needs a bearer token, except signing in."""
    document["components"].setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from POST /api/v1/auth/token or `tessera token create`.",
    }
    for path, operations in document["paths"].items():
        if not needs_authentication(path):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["security"] = [{"bearer": []}]
                operation["responses"].setdefault("401", _problems("401")["401"])
