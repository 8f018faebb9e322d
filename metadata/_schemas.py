"""The JSON Schemas of the definition language, shipped as files beside this module."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_KINDS: tuple[str, ...] = ("module", "entity", "fixture")


def schema_document(kind: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text("utf-8"))
    return document


@functools.cache
def validator(kind: str) -> Draft202012Validator:
    """Compiled once per process; the schemas are immutable package data."""
    schema = schema_document(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def all_schemas() -> dict[str, dict[str, Any]]:
    return {kind: schema_document(kind) for kind in SCHEMA_KINDS}
