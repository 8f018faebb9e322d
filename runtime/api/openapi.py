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

from engine.aggregate import MAX_GROUPS
from engine.audit import WRITES
from engine.fieldtypes import ID_SCHEMA, kind_of_type
from engine.jsonschema import record_schema
from engine.query import DEFAULT_LIMIT, MAX_LIMIT, MAX_SORT_KEYS
from metadata import FILTER_OPERATORS, FieldType
from runtime.auth import needs_authentication

if TYPE_CHECKING:
    from collections.abc import Iterable

    from engine import EngineModel, EntityStore
    from metadata import EntityDef, ProjectDef

INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
MAX_OFFSET = 10**9
MAX_HISTORY_NUMBER = 10**18 - 1
"""``after`` and ``limit`` of a history: at most 18 digits (runtime/api/records.py)."""

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {
            "type": "string",
            "description": "The type's last segment, e.g. submitted (a frozen document).",
        },
        "errors": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/ProblemError"},
        },
    },
    "required": ["type", "title", "status"],
}
PROBLEM_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ProblemError",
    "description": "One invalid field: ``field`` is a path (``lines[0].qty``); ``index`` "
    "the record's position in a _bulk request.",
    "properties": {
        "field": {"type": "string"},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "index": {"type": "integer"},
        "rule": {"type": "string"},
    },
}

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


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _filter_schema(store: EntityStore, name: str, column_type: FieldType | None) -> dict[str, Any]:
    """What the list parser accepts as ``name=value`` (engine/query.py): typed values,
    decimals that fit the column, any text; each field type says (``filter_schema``)."""
    if column_type is None:
        return dict(ID_SCHEMA)
    return kind_of_type(column_type).filter_schema(store.entity.fields.get(name))


def _operators_of(column_type: FieldType | None) -> list[str]:
    """The operators a filter of ``column_type`` takes (besides ``eq``, which is bare), from
    the registry: those of every field first, then those of some types only."""
    specs = [s for s in FILTER_OPERATORS.values() if s.name != "eq" and s.applies_to(column_type)]
    return [s.name for s in specs if s.types is None] + [
        s.name for s in specs if s.types is not None
    ]


def _names_pattern(names: Iterable[str]) -> str:
    """Comma-separated ``names`` (``fields``, ``expand``)."""
    name = f"({'|'.join(names)})"
    return f"^{name}(,{name})*$"


def _sort_pattern(names: Iterable[str]) -> str:
    """Empty, or up to ``MAX_SORT_KEYS`` comma-separated ``names``, each with an optional
    leading -, none twice (the lookahead)."""
    name = f"-?({'|'.join(names)})"
    twice = r"(?!(.*,)?-?([a-z0-9_]+),(.*,)?-?\2(,|$))"
    return f"^{twice}({name}(,{name}){{0,{MAX_SORT_KEYS - 1}}})?$"


def _list_parameters(store: EntityStore) -> list[dict[str, Any]]:
    columns = store.query_columns
    parameters = [
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "Page size.",
        ),
        _query(
            "offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, "Records to skip."
        ),
        _query("cursor", {"type": "string"}, "meta.next_cursor of the previous page."),
        _query(
            "sort",
            {"type": "string", "pattern": _sort_pattern(columns.columns)},
            f"Up to {MAX_SORT_KEYS} comma-separated fields, each once; a leading - sorts "
            f"descending. Sortable: {', '.join(columns.columns)}.",
        ),
        _query(
            "fields",
            {"type": "string", "pattern": _names_pattern(columns.all_fields)},
            f"Comma-separated fields to return: {', '.join(columns.all_fields)}.",
        ),
        _query("count", {"type": "boolean"}, "Add meta.count, the number of matching records."),
        _query(
            "q",
            {"type": "string", "maxLength": 200},
            f"Text search over: {', '.join(columns.search) or 'nothing'}.",
        ),
    ]
    if columns.expandable:
        parameters.append(
            _query(
                "expand",
                {"type": "string", "pattern": _names_pattern(columns.expandable)},
                "Comma-separated reference fields to return as the records they name: "
                f"{', '.join(columns.expandable)}.",
            )
        )
    for name, column in columns.columns.items():
        parameters.append(
            _query(
                name,
                _filter_schema(store, name, column.type),
                f"Records whose {name} equals this. Operators: {name}__"
                + ", __".join(_operators_of(column.type))
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

HISTORY_ENTRY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "HistoryEntry",
    "description": "One change of a record: when, by whom (the user's id and name; null "
    "for the system's own writes), what, and each changed field's old and new values "
    "(fields your roles hide left out).",
    "properties": {
        "id": {"type": "string", "description": "The entry's id; pass it as after."},
        "at": {"type": "string", "format": "date-time"},
        "user_id": {"type": ["string", "null"]},
        "username": {"type": ["string", "null"]},
        "action": {"type": "string", "enum": [action.value for action in WRITES]},
        "changes": {
            "type": "object",
            "description": "Field name → [old value, new value].",
            "additionalProperties": True,
        },
    },
    "required": ["id", "at", "action", "changes"],
    "additionalProperties": True,
}

TRANSITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Transition",
    "description": "A workflow move out of the record's current state.",
    "properties": {
        "to": {"type": "string"},
        "label": {"type": "string"},
        "allowed": {"type": "boolean", "description": "Whether you may take it now."},
        "reason": {"type": ["string", "null"], "description": "Why not, when not allowed."},
    },
    "required": ["to", "label", "allowed", "reason"],
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
        parameters.append(_query(name, text, description))
    return parameters


def _export_parameters(store: EntityStore) -> list[dict[str, Any]]:
    """The list's filters, ``q``, ``sort`` and ``fields`` (every page: no paging), plus
    ``format``."""
    paging = {"limit", "offset", "cursor", "expand", "count"}
    parameters = [p for p in _list_parameters(store) if p["name"] not in paging]
    parameters.append(
        _query(
            "format",
            {"type": "string", "enum": ["csv", "jsonl"], "default": "csv"},
            "csv (a header line, then one line per record) or jsonl.",
        )
    )
    return parameters


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
                "parameters": _list_parameters(store),
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
                "parameters": _aggregate_parameters(store),
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
                "parameters": _export_parameters(store),
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
                "parameters": [p for p in _list_parameters(store) if p["name"] in _READ_PARAMS],
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
                    _query(
                        "after",
                        {"type": "integer", "minimum": 0, "maximum": MAX_HISTORY_NUMBER},
                        "Entries after this entry id (meta.next_after of the previous page).",
                    ),
                    _query(
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
                    _query("format", {"type": "string", "enum": ["pdf", "html"]}, "Default: pdf."),
                    _query(
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
