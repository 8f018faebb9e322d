"""First pass over one definition file: parse the YAML (keeping positions), then check it
against the JSON Schema of its kind. Problems are collected, never raised."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from metadata import _schemas
from metadata._errors import did_you_mean
from metadata._yaml import SourceDocument, YamlSyntaxError

if TYPE_CHECKING:
    from pathlib import Path

    from jsonschema import ValidationError

    from metadata._errors import PathItem, ProblemCollector

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
# Kinds whose ``fields`` entries are checked one by one: a field that breaks the schema is
# left out of the second pass while the rest of the file is still checked.
_FIELD_KINDS = frozenset({"entity", "overlay"})


def display_name(path: Path) -> str:
    """A short, clickable path: relative to the working folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def load_document(path: Path, kind: str, problems: ProblemCollector) -> SourceDocument | None:
    """Parse and schema-check one file; None when it is unusable (problems are reported)."""
    document = parse_document(path, problems)
    if document is None:
        return None
    return check_document(document, kind, problems)


def parse_document(path: Path, problems: ProblemCollector) -> SourceDocument | None:
    name = display_name(path)
    try:
        document = SourceDocument.load(path, name)
    except YamlSyntaxError as exc:
        problems.at_file(name, str(exc), exc.line, exc.column)
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.at_file(name, f"cannot read file: {exc}")
        return None
    for duplicate in document.duplicate_keys():
        problems.at(
            document,
            (*duplicate.path, duplicate.key),
            f"duplicate key '{duplicate.key}'",
            key=True,
        )
    return document


_LIST_KINDS = frozenset({"rules"})
"""Kinds of file whose top level is a list (SPEC §3.3) rather than a mapping."""


def check_document(
    document: SourceDocument, kind: str, problems: ProblemCollector
) -> SourceDocument | None:
    if kind in _LIST_KINDS:
        if document.data is None:  # empty, or only comments
            document.data = []
        if not isinstance(document.data, list):
            problems.at(document, (), f"expected a list at the top of this {kind} file")
            return None
    elif not isinstance(document.data, dict):
        problems.at(document, (), f"expected a mapping at the top of this {kind} file")
        return None
    broken = report_schema_errors(document, kind, problems)
    if broken is None:
        return None
    if broken and isinstance(document.data, dict):
        document.data = {
            **document.data,
            "fields": {k: v for k, v in document.data["fields"].items() if k not in broken},
        }
        document.broken_fields = broken
    return document


def report_schema_errors(
    document: SourceDocument, kind: str, problems: ProblemCollector
) -> set[str] | None:
    """Report every schema violation. Returns the names of fields with errors, or None when
    the file as a whole is unusable."""
    broken: set[str] = set()
    usable = True
    if _schemas.is_valid(kind, document.data):
        return broken
    for error in _schemas.validator(kind).iter_errors(document.data):
        _report_schema_error(document, error, problems)
        path = list(error.absolute_path)
        if kind in _FIELD_KINDS and len(path) >= 2 and path[0] == "fields":
            broken.add(str(path[1]))
        else:
            usable = False
    return broken if usable else None


def _report_schema_error(
    document: SourceDocument, error: ValidationError, problems: ProblemCollector
) -> None:
    path: list[PathItem] = list(error.absolute_path)
    where = ".".join(str(p) for p in path) or "document"
    expected: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed)
                problems.at(document, [*path, key], f"unknown key '{key}'{hint}", key=True)
    elif error.validator == "enum" and path and path[-1] == "type":
        choices = [str(v) for v in expected]
        hint = did_you_mean(str(error.instance), choices)
        problems.at(document, path, f"unknown field type '{error.instance}'{hint}")
    elif error.validator == "enum":
        listing = ", ".join(str(v) for v in expected)
        problems.at(document, path, f"{where}: '{error.instance}' is not one of: {listing}")
    elif error.validator == "required" and isinstance(error.instance, dict):
        missing = [k for k in expected if k not in error.instance]
        kind = error.instance.get("type")
        owner = f"a field of type {kind}" if kind and path else where
        for key in missing:
            problems.at(document, path, f"{owner} needs the key '{key}'", key=bool(path))
    elif error.validator == "type":
        expected_text = " or ".join(expected) if isinstance(expected, list) else expected
        problems.at(document, path, f"{where} must be of type {expected_text}")
    else:
        problems.at(document, path, f"{where}: {error.message}")
