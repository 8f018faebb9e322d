"""The JSON Schemas of the definition language, shipped as files beside this module."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

from metadata._actions import action_kinds, action_schemas, on_new_kind

if TYPE_CHECKING:
    from collections.abc import Callable

    from jsonschema import Draft202012Validator

SCHEMA_DIR = Path(__file__).parent / "schemas"
SCHEMA_KINDS: tuple[str, ...] = (
    "module",
    "entity",
    "rules",
    "form",
    "workflow",
    "overlay",
    "fixture",
    "dashboard",
    "view",
    "report",
)


def schema_document(kind: str) -> dict[str, Any]:
    document = _read(kind)
    _inline_definitions(document)
    if kind == "overlay":
        _with_customizable_field(document)
    _with_actions(document)
    return document


def _read(kind: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text("utf-8"))
    return document


def _inline_definitions(document: dict[str, Any]) -> None:
    """A definition that is only a ``$ref`` to another schema's definition
    (``{"$ref": "entity.schema.json#/$defs/fieldGroups"}``) becomes a copy of it, so that
    each shape is written once and the published schema stands alone."""
    definitions = document.get("$defs", {})
    for name, definition in definitions.items():
        target = definition.get("$ref", "") if len(definition) == 1 else ""
        file, _, pointer = target.partition("#/$defs/")
        if file.endswith(".schema.json") and pointer:
            definitions[name] = _read(file.removesuffix(".schema.json"))["$defs"][pointer]


def _with_customizable_field(document: dict[str, Any]) -> None:
    """The overlay's field entry is entity.schema.json's field in which ``type`` may be left
    out (an entry without it changes a pack field), so the keys a type requires are
    required only when the entry gives the type; overlay.schema.json says what each key
    means in a customization."""
    field: dict[str, Any] = _read("entity")["$defs"]["field"]
    field.pop("required", None)
    for condition in field.get("allOf", []):
        condition["if"] = {"required": ["type"], **condition["if"]}
    meanings = document["$defs"]["field"].get("properties", {})
    field["properties"] = {
        key: {**schema, **meanings.get(key, {})} for key, schema in field["properties"].items()
    }
    document["$defs"]["field"] = field


def _with_actions(document: dict[str, Any]) -> None:
    """A schema with a rule action (``$defs.action``: the rules and overlay schemas) takes
    its action kinds from the registered definitions (``metadata.action_kind``), each with
    its own body schema, next to the properties the file gives every action (``async``)."""
    action = document.get("$defs", {}).get("action")
    if action is not None:
        common = {k: v for k, v in action["properties"].items() if k not in action_kinds()}
        action["properties"] = {**action_schemas(), **common}


def _forget_compiled() -> None:
    validator.cache_clear()
    fast_check.cache_clear()


@functools.cache
def validator(kind: str) -> Draft202012Validator:
    """Compiled once per process; the schemas are immutable package data. Imported here,
    not at the top: jsonschema loads its format checkers (``rfc3987_syntax`` builds a parser,
    over a second), and loading only asks for this validator when ``fast_check`` failed."""
    from jsonschema import Draft202012Validator

    schema = schema_document(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def fast_check(kind: str) -> Callable[[Any], Any]:
    """The same schema compiled to Python code by fastjsonschema: ~50x faster than the
    interpreting validator, but it stops at the first error. Loading runs it first and only
    asks ``validator`` for the full, positioned list of errors when it fails. The schemas use
    no keyword newer than draft-07, so it compiles them as draft-07."""
    schema = {**schema_document(kind), "$schema": "http://json-schema.org/draft-07/schema#"}
    check: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return check


def is_valid(kind: str, data: Any) -> bool:
    try:
        fast_check(kind)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def all_schemas() -> dict[str, dict[str, Any]]:
    return {kind: schema_document(kind) for kind in SCHEMA_KINDS}


on_new_kind(_forget_compiled)
