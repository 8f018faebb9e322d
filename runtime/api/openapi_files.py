"""OpenAPI paths of a record's files (runtime/api/files.py): ``…/{id}/_files/{field}`` for
an entity with ``file`` fields, ``…/{id}/{lines}/{line_id}/_files/{field}`` for its line
items' ``file`` fields, ``…/{id}/_attachments[/{file_id}]`` for every entity that clients
may write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.fieldtypes import ID_SCHEMA
from engine.fieldtypes.files import FILE_SCHEMA
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata import EntityDef

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_OWN_PROBLEMS = {
    "413": "The file is larger than the field's or the instance's max_size (file-too-large)",
    "415": "The file's content type, read from its bytes, is not accepted here "
    "(unsupported-file-type)",
}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_FILE_BYTES = {"type": "string", "format": "binary", "minLength": 1}
"""An upload: at least one byte (an empty one is refused, 400 empty-file)."""
_UPLOAD_BODY = {
    "required": True,
    "description": "The file: a multipart form with a part named 'file' (its filename "
    "kept), or the raw bytes (named by ?filename= or a Content-Disposition header).",
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": _FILE_BYTES},
                "required": ["file"],
                "additionalProperties": False,
            }
        },
        "application/octet-stream": {"schema": _FILE_BYTES},
    },
}
_FILENAME = {
    "name": "filename",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "The file's name, for a raw-body upload (made safe: no path, no controls).",
}
ATTACHMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **FILE_SCHEMA["properties"],
        "sha256": {"type": "string"},
        "created_by": {"type": ["string", "null"]},
        "created_at": {"type": "number", "description": "Seconds since 1970 (UTC)."},
    },
    "required": ["id", "name", "size", "content_type", "url", "sha256"],
}
_DOWNLOAD = {
    "description": "The file, as an attachment (Content-Disposition with filename*), always "
    "as application/octet-stream (its content type is in its value or listing)",
    "headers": {
        "Content-Disposition": {"schema": {"type": "string"}, "required": True},
        "ETag": {"schema": {"type": "string"}, "description": "The file's SHA-256, quoted"},
    },
    "content": {"application/octet-stream": _BINARY},
}


def _problems(refs: dict[str, Any], *statuses: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        if status in _OWN_PROBLEMS:
            out[status] = {"description": _OWN_PROBLEMS[status], "content": _PROBLEM}
        else:
            out[status] = refs[status]
    return out


def _one(schema: dict[str, Any]) -> dict[str, Any]:
    body = {"type": "object", "properties": {"data": schema}, "required": ["data"]}
    return {"application/json": {"schema": body}}


def _field_param(names: list[str]) -> dict[str, Any]:
    return {
        "name": "field",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": names},
    }


def _field_path(
    parameters: list[dict[str, Any]], tag: str, op: str, problems: dict[str, Any], of: str
) -> dict[str, Any]:
    """The download, upload and clear operations of a file field (``of``: a line's)."""
    return {
        "parameters": parameters,
        "get": {
            "tags": [tag],
            "summary": f"Download a file field's file{of}",
            "operationId": f"download_file_{op}",
            "responses": {"200": _DOWNLOAD, **_problems(problems, "403", "404", "503")},
        },
        "put": {
            "tags": [tag],
            "summary": f"Upload a file field's file{of} (replaces the one it holds)",
            "operationId": f"upload_file_{op}",
            "parameters": [_FILENAME],
            "requestBody": _UPLOAD_BODY,
            "responses": {
                "201": {"description": "The field's new value", "content": _one(FILE_SCHEMA)},
                **_problems(problems, "400", "403", "404", "409", "413", "415", "503"),
            },
        },
        "delete": {
            "tags": [tag],
            "summary": f"Clear a file field{of} (its file is deleted)",
            "operationId": f"clear_file_{op}",
            "responses": {
                "200": {"description": "Cleared", "content": _one({"type": "null"})},
                **_problems(problems, "403", "404", "409", "503"),
            },
        },
    }


def file_paths(
    entity: EntityDef,
    *,
    base: str,
    op: str,
    tag: str,
    id_param: dict[str, Any],
    problems: dict[str, Any],
    lines: Mapping[str, EntityDef] | None = None,
) -> dict[str, Any]:
    """The paths; ``problems`` maps a status to the document's shared problem response;
    ``lines``: the line entity of each children field, whose file fields get
    ``…/{id}/{lines}/{line_id}/_files/{field}``."""
    paths: dict[str, Any] = {}
    names = [n for n, f in entity.fields.items() if f.type is FieldType.FILE]
    if names:
        paths[f"{base}/{{id}}/_files/{{field}}"] = _field_path(
            [id_param, _field_param(names)], tag, op, problems, ""
        )
    for children, line in (lines or {}).items():
        in_lines = [n for n, f in line.fields.items() if f.type is FieldType.FILE]
        if not in_lines:
            continue
        line_param = {
            "name": "line_id",
            "in": "path",
            "required": True,
            "schema": ID_SCHEMA,
            "description": f"The id of one of the record's '{children}' lines.",
        }
        paths[f"{base}/{{id}}/{children}/{{line_id}}/_files/{{field}}"] = _field_path(
            [id_param, line_param, _field_param(in_lines)],
            tag,
            f"{op}_{children}",
            problems,
            f" of a line ({children}; access follows the record)",
        )
    if entity.append_only:
        return paths
    listing = {
        "type": "object",
        "properties": {
            "data": {"type": "array", "items": ATTACHMENT_SCHEMA},
            "meta": {"type": "object", "properties": {"count": {"type": "integer"}}},
        },
        "required": ["data", "meta"],
    }
    paths[f"{base}/{{id}}/_attachments"] = {
        "parameters": [id_param],
        "get": {
            "tags": [tag],
            "summary": "List a record's attachments",
            "operationId": f"list_attachments_{op}",
            "responses": {
                "200": {
                    "description": "Its attachments, oldest first",
                    "content": {"application/json": {"schema": listing}},
                },
                **_problems(problems, "403", "404", "503"),
            },
        },
        "post": {
            "tags": [tag],
            "summary": "Attach a file to a record",
            "operationId": f"attach_{op}",
            "parameters": [_FILENAME],
            "requestBody": _UPLOAD_BODY,
            "responses": {
                "201": {"description": "The attachment", "content": _one(ATTACHMENT_SCHEMA)},
                **_problems(problems, "400", "403", "404", "413", "415", "503"),
            },
        },
    }
    file_param = {"name": "file_id", "in": "path", "required": True, "schema": ID_SCHEMA}
    paths[f"{base}/{{id}}/_attachments/{{file_id}}"] = {
        "parameters": [id_param, file_param],
        "get": {
            "tags": [tag],
            "summary": "Download an attachment",
            "operationId": f"download_attachment_{op}",
            "responses": {"200": _DOWNLOAD, **_problems(problems, "403", "404", "503")},
        },
        "delete": {
            "tags": [tag],
            "summary": "Remove an attachment (its file is deleted)",
            "operationId": f"remove_attachment_{op}",
            "responses": {
                "200": {"description": "Removed", "content": _one({"type": "null"})},
                **_problems(problems, "403", "404", "503"),
            },
        },
    }
    return paths
