"""The fixed component schemas of the OpenAPI document: those that do not come from the
definitions (a problem, an aggregate's rows, an audit history entry, a document's
transition); runtime/api/openapi.py adds them beside the entities' own."""

from __future__ import annotations

from typing import Any

from engine.audit import WRITES

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
