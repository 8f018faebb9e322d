"""First pass over one definition file: parse the YAML (keeping positions), then check it
against the JSON Schema of its kind. Problems are collected, never raised."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metadata import _schemas
from metadata._errors import did_you_mean
from metadata._names import is_snake_case
from metadata._yaml import SourceDocument, YamlSyntaxError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from jsonschema import ValidationError

    from metadata._errors import PathItem, ProblemCollector

YAML_SUFFIXES = frozenset({".yaml", ".yml"})
# Kinds whose ``fields`` entries are checked one by one: a field that breaks the schema is
# left out of the second pass while the rest of the file is still checked.
_FIELD_KINDS = frozenset({"entity", "overlay"})
_ENTITY_KEYS = frozenset({"label", "label_plural", "description", "title", "indexes", "unique"})


@dataclass(frozen=True, slots=True)
class _Salvage:
    """What the second pass can do without, in one kind of file: a part that breaks the
    schema is left out (its problems are reported) and the rest of the file is still
    checked. Parts not named here (a rule's own keys, ``fields``, a workflow's ``initial``,
    ``depends``) would cause follow-on problems or wrong checks when left out: breaking one
    makes the file unusable, or for ``fields`` entries, that field (``_FIELD_KINDS``)."""

    keys: frozenset[str] = frozenset()
    """Optional top-level keys, left out when broken."""
    unknown_keys: bool = False
    """Unknown top-level keys are left out. Not for module.yaml (a misspelt ``depends``
    would leave the pack without its dependencies) nor workflows (a misspelt ``initial``)."""
    items: tuple[tuple[str | None, ...], ...] = ()
    """Lists (by path; None matches any key) whose broken items become None, so that the
    others keep their index (and position); the checkers skip None."""
    mappings: tuple[tuple[str | None, ...], ...] = ()
    """Mappings whose broken or unknown keys are left out, and that become None when they
    are not a mapping at all."""


_SALVAGE: dict[str, _Salvage] = {
    "entity": _Salvage(keys=_ENTITY_KEYS | {"document"}, unknown_keys=True),
    "overlay": _Salvage(keys=_ENTITY_KEYS | {"form", "rules"}, items=(("rules",),)),
    "rules": _Salvage(items=((),)),
    "view": _Salvage(keys=frozenset({"list", "kanban"}), unknown_keys=True),
    "dashboard": _Salvage(
        keys=frozenset({"label", "description"}), unknown_keys=True, items=(("tiles",),)
    ),
    "form": _Salvage(unknown_keys=True, items=(("sections",),)),
    "workflow": _Salvage(items=(("transitions",),)),
    "fixture": _Salvage(unknown_keys=True),
    "roles": _Salvage(
        unknown_keys=True, items=(("roles", None, "grants"),), mappings=(("roles", None),)
    ),
}


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


def load_optional_document(
    path: Path, kind: str, problems: ProblemCollector
) -> SourceDocument | None:
    """``load_document`` of a file a pack or an instance may leave out (``roles.yaml``):
    None, and no problem, when there is none."""
    return load_document(path, kind, problems) if path.is_file() else None


def load_folder_documents(
    pack_path: Path, folder: str, kind: str, problems: ProblemCollector
) -> dict[str, SourceDocument]:
    """The schema-checked ``kind`` documents of a pack's ``folder`` (``dashboards/``,
    ``reports/``), by file name; a name that is not snake_case is reported and skipped, as
    are dot files (editor and lock files)."""
    directory = pack_path / folder
    if not directory.is_dir():
        return {}
    documents: dict[str, SourceDocument] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in YAML_SUFFIXES or path.name.startswith("."):
            continue
        if not is_snake_case(path.stem):
            problems.at_file(
                display_name(path), f"{kind} file name '{path.stem}' must be snake_case"
            )
            continue
        document = load_document(path, kind, problems)
        if document is not None:
            documents[path.stem] = document
    return documents


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
    the file as a whole is unusable. The broken parts the second pass can do without
    (``_SALVAGE``) are left out of ``document.data``."""
    broken: set[str] = set()
    if _schemas.is_valid(kind, document.data):
        return broken
    salvage = _SALVAGE.get(kind, _Salvage())
    edits: list[tuple[tuple[PathItem, ...], Callable[[Any], Any]]] = []
    usable = True
    for error in _schemas.validator(kind).iter_errors(document.data):
        _report_schema_error(document, error, problems)
        path = list(error.absolute_path)
        if kind in _FIELD_KINDS and len(path) >= 2 and path[0] == "fields":
            broken.add(str(path[1]))
        elif (edit := _salvage_edit(salvage, error, path)) is not None:
            edits.append(edit)
        else:
            usable = False
    if not usable:
        return None
    for where, change in edits:
        document.data = _edited(document.data, where, change)
    return broken


def _salvage_edit(
    salvage: _Salvage, error: ValidationError, path: list[PathItem]
) -> tuple[tuple[PathItem, ...], Callable[[Any], Any]] | None:
    """Where and how to leave out what ``error`` is about, or None if the file cannot do
    without it."""
    for pattern in salvage.items:
        size = len(pattern)
        if len(path) > size and _matches(path[:size], pattern) and isinstance(path[size], int):
            return tuple(path[:size]), _without_item(path[size])
    for pattern in salvage.mappings:
        size = len(pattern)
        if len(path) > size and _matches(path[:size], pattern):
            return tuple(path[:size]), _without_keys({str(path[size])})
        if len(path) == size and _matches(path, pattern):
            unknown = _unknown_keys(error)
            if unknown:
                return tuple(path), _without_keys(unknown)
            return tuple(path[:-1]), _without_item(path[-1])
    if path and path[0] in salvage.keys:
        return (), _without_keys({str(path[0])})
    if not path and salvage.unknown_keys and (unknown := _unknown_keys(error)):
        return (), _without_keys(unknown)
    return None


def _matches(path: list[PathItem], pattern: tuple[str | None, ...]) -> bool:
    return all(want is None or want == item for item, want in zip(path, pattern, strict=True))


def _unknown_keys(error: ValidationError) -> set[str]:
    """The keys an ``additionalProperties: false`` error is about."""
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return set()
    allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    return {str(key) for key in error.instance if key not in allowed}


def _without_item(item: PathItem) -> Callable[[Any], Any]:
    """A list item (or mapping value) replaced by None: the others keep their index."""

    def change(container: Any) -> Any:
        if isinstance(container, list) and isinstance(item, int) and item < len(container):
            return [None if index == item else value for index, value in enumerate(container)]
        if isinstance(container, dict) and item in container:
            return {**container, item: None}
        return container

    return change


def _without_keys(keys: set[str]) -> Callable[[Any], Any]:
    def change(container: Any) -> Any:
        if not isinstance(container, dict):
            return container
        return {k: v for k, v in container.items() if str(k) not in keys}

    return change


def _edited(data: Any, path: Sequence[PathItem], change: Callable[[Any], Any]) -> Any:
    """``data`` with the value at ``path`` changed, copying what it passes through (a YAML
    alias may share a value between two places) and leaving data it cannot follow as is."""
    if not path:
        return change(data)
    head, rest = path[0], path[1:]
    if isinstance(data, dict) and head in data:
        return {**data, head: _edited(data[head], rest, change)}
    if isinstance(data, list) and isinstance(head, int) and head < len(data):
        copy = list(data)
        copy[head] = _edited(data[head], rest, change)
        return copy
    return data


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
    elif error.validator == "enum" and len(path) >= 2 and path[-1] == "type" and "fields" in path:
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
