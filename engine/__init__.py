"""Tessera's generic engine: tables, validation, queries and record storage.

Knows nothing about HTTP. The stable surface is listed in ``__all__``.
"""

from __future__ import annotations

from engine.database import Database, IntegrityViolation, open_database
from engine.errors import (
    BadQuery,
    Conflict,
    EngineError,
    FieldError,
    RecordNotFound,
    StaleVersion,
    UnknownEntity,
    ValidationFailed,
)
from engine.model import EngineModel, dialect_for_url
from engine.query import ListQuery
from engine.store import ListResult
from engine.writes import WriteContext
from engine.writes.pipeline import EntityStore

__all__ = [
    "BadQuery",
    "Conflict",
    "Database",
    "EngineError",
    "EngineModel",
    "EntityStore",
    "FieldError",
    "IntegrityViolation",
    "ListQuery",
    "ListResult",
    "RecordNotFound",
    "StaleVersion",
    "UnknownEntity",
    "ValidationFailed",
    "WriteContext",
    "dialect_for_url",
    "open_database",
]
