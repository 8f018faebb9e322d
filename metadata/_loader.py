"""Load module packs from disk into a checked, immutable ``ProjectDef``.

Two passes, as in Django's check framework: every file is parsed and checked against its
JSON Schema first; then the definitions are normalised and checked together (references,
indexes, children, names). All problems are collected and raised at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from metadata import _schemas
from metadata._errors import ProblemCollector, did_you_mean
from metadata._expressions import expression_syntax_error
from metadata._fieldkeys import TYPE_KEYS
from metadata._model import (
    RESERVED_PARAMETERS,
    SYSTEM_FIELDS,
    EntityDef,
    FieldDef,
    FieldType,
    ModuleDef,
    OnDelete,
    ProjectDef,
    frozen_mapping,
)
from metadata._yaml import SourceDocument, YamlSyntaxError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from jsonschema import ValidationError

    from metadata._errors import PathItem

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
AUTONUMBER_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+)\}")


@dataclass
class _PackSource:
    name: str
    path: Path
    document: SourceDocument
    entity_documents: dict[str, SourceDocument] = field(default_factory=dict)


def discover_packs(search_paths: Iterable[Path]) -> dict[str, Path]:
    """Pack folders by name; earlier search paths win over later ones."""
    found: dict[str, Path] = {}
    for root in search_paths:
        if not root.is_dir():
            continue
        for candidate in sorted(root.iterdir()):
            if (candidate / "module.yaml").is_file():
                found.setdefault(candidate.name, candidate)
    return found


def display_name(path: Path) -> str:
    """A short, clickable path: relative to the working folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def load_project(
    enabled: Sequence[str],
    search_paths: Sequence[Path],
    *,
    config_name: str = "tessera.yaml",
) -> ProjectDef:
    """Load the enabled packs and their dependencies; raise ``DefinitionError`` on problems."""
    problems = ProblemCollector()
    available = discover_packs(search_paths)
    packs = _PackResolver(available, problems, config_name).resolve(enabled)
    for pack in packs.values():
        _load_entity_documents(pack, problems)
    project = _ProjectBuilder(packs, problems).build()
    problems.raise_if_any()
    return project


def _load_document(path: Path, kind: str, problems: ProblemCollector) -> SourceDocument | None:
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
    if not isinstance(document.data, dict):
        problems.at(document, (), f"expected a mapping at the top of this {kind} file")
        return None
    broken = report_schema_errors(document, kind, problems)
    if broken is None:
        return None
    if broken:
        # Fields that broke the schema are left out of the second pass; the rest of the file
        # is still checked, so one run reports every problem.
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
        if kind == "entity" and len(path) >= 2 and path[0] == "fields":
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


class _PackResolver:
    """Finds enabled packs and their dependencies, in dependency order, detecting cycles."""

    def __init__(
        self, available: dict[str, Path], problems: ProblemCollector, config_name: str
    ) -> None:
        self.available = available
        self.problems = problems
        self.config_name = config_name
        self.ordered: dict[str, _PackSource] = {}
        self.failed: set[str] = set()

    def resolve(self, enabled: Sequence[str]) -> dict[str, _PackSource]:
        for name in enabled:
            self._visit(name, [], None)
        return self.ordered

    def _visit(
        self,
        name: str,
        stack: list[str],
        origin: tuple[SourceDocument, tuple[PathItem, ...]] | None,
    ) -> None:
        if name in self.ordered or name in self.failed:
            return
        if name in stack:
            cycle = " -> ".join([*stack[stack.index(name) :], name])
            self._report(origin, f"dependency cycle: {cycle}")
            self.failed.add(name)
            return
        path = self.available.get(name)
        if path is None:
            hint = did_you_mean(name, self.available)
            self._report(origin, f"unknown module pack '{name}'{hint}")
            self.failed.add(name)
            return
        document = _load_document(path / "module.yaml", "module", self.problems)
        if document is None:
            self.failed.add(name)
            return
        if document.data["name"] != path.name:
            self.problems.at(
                document,
                ("name",),
                f"pack name '{document.data['name']}' must equal its folder name '{path.name}'",
            )
        for index, dependency in enumerate(document.data.get("depends", [])):
            self._visit(dependency, [*stack, name], (document, ("depends", index)))
        self.ordered[name] = _PackSource(name, path, document)

    def _report(
        self, origin: tuple[SourceDocument, tuple[PathItem, ...]] | None, message: str
    ) -> None:
        if origin is None:
            self.problems.at_file(self.config_name, message)
        else:
            self.problems.at(origin[0], origin[1], message)


def _load_entity_documents(pack: _PackSource, problems: ProblemCollector) -> None:
    entity_dir = pack.path / "entities"
    if not entity_dir.is_dir():
        return
    for path in sorted(entity_dir.iterdir()):
        if path.suffix not in {".yaml", ".yml"}:
            continue
        if not NAME_PATTERN.match(path.stem) or "__" in path.stem:
            problems.at_file(
                display_name(path),
                f"entity file name '{path.stem}' must be snake_case (a-z, 0-9, single _)",
            )
            continue
        if path.stem in pack.entity_documents:
            problems.at_file(display_name(path), f"entity '{path.stem}' is defined twice")
            continue
        document = _load_document(path, "entity", problems)
        if document is not None:
            pack.entity_documents[path.stem] = document


def _dependency_closure(packs: dict[str, _PackSource]) -> dict[str, set[str]]:
    closure: dict[str, set[str]] = {}
    for name, pack in packs.items():  # dependency order: dependencies come first
        reachable = {name}
        for dependency in pack.document.data.get("depends", []):
            reachable |= closure.get(dependency, {dependency})
        closure[name] = reachable
    return closure


def _default_label(name: str) -> str:
    return name.replace("_", " ").capitalize()


class _ProjectBuilder:
    """Second pass: normalise every entity and check cross-references."""

    def __init__(self, packs: dict[str, _PackSource], problems: ProblemCollector) -> None:
        self.packs = packs
        self.problems = problems
        self.closure = _dependency_closure(packs)
        self.known_entities = {
            f"{pack.name}.{entity}" for pack in packs.values() for entity in pack.entity_documents
        }
        self.child_owner: dict[str, str] = {}

    def build(self) -> ProjectDef:
        entities: dict[str, EntityDef] = {}
        modules: dict[str, ModuleDef] = {}
        for pack in self.packs.values():
            for entity_name, document in pack.entity_documents.items():
                entity = self._build_entity(pack, entity_name, document)
                entities[entity.qualified_name] = entity
            data = pack.document.data
            modules[pack.name] = ModuleDef(
                name=pack.name,
                label=data.get("label") or _default_label(pack.name),
                version=data["version"],
                depends=tuple(data.get("depends", [])),
                description=data.get("description"),
                path=pack.path,
                entities=tuple(f"{pack.name}.{e}" for e in pack.entity_documents),
            )
        entities = self._attach_parents(entities)
        return ProjectDef(modules=frozen_mapping(modules), entities=frozen_mapping(entities))

    def _attach_parents(self, entities: dict[str, EntityDef]) -> dict[str, EntityDef]:
        result = dict(entities)
        for child, parent in self.child_owner.items():
            if child in result:
                old = result[child]
                result[child] = EntityDef(
                    pack=old.pack,
                    name=old.name,
                    label=old.label,
                    label_plural=old.label_plural,
                    description=old.description,
                    title=old.title,
                    fields=old.fields,
                    indexes=old.indexes,
                    unique=old.unique,
                    source=old.source,
                    parent=parent,
                )
        return result

    def _build_entity(self, pack: _PackSource, name: str, document: SourceDocument) -> EntityDef:
        data: dict[str, Any] = document.data
        fields: dict[str, FieldDef] = {}
        for field_name, raw in data["fields"].items():
            checker = _FieldChecker(self, pack, document, str(field_name), raw)
            built = checker.build()
            if built is not None:
                fields[built.name] = built
        title = data.get("title")
        if (
            title is not None
            and title not in data["fields"]
            and (title not in document.broken_fields)
        ):
            hint = did_you_mean(title, data["fields"])
            self.problems.at(document, ("title",), f"title '{title}' is not a field{hint}")
        groups = {}
        for key in ("indexes", "unique"):
            groups[key] = self._field_groups(document, key, data.get(key, []), fields)
        label = data.get("label") or name.replace("_", " ").title()
        return EntityDef(
            pack=pack.name,
            name=name,
            label=label,
            label_plural=data.get("label_plural") or f"{label}s",
            description=data.get("description"),
            title=title,
            fields=frozen_mapping(fields),
            indexes=groups["indexes"],
            unique=groups["unique"],
            source=document.display_name,
        )

    def _field_groups(
        self,
        document: SourceDocument,
        key: str,
        groups: list[list[str]],
        fields: dict[str, FieldDef],
    ) -> tuple[tuple[str, ...], ...]:
        result = []
        declared = {**document.data["fields"], **dict.fromkeys(document.broken_fields)}
        for group_index, group in enumerate(groups):
            for item_index, field_name in enumerate(group):
                where = (key, group_index, item_index)
                if field_name in SYSTEM_FIELDS:
                    continue
                if field_name not in declared:
                    hint = did_you_mean(field_name, declared)
                    self.problems.at(document, where, f"{key}: unknown field '{field_name}'{hint}")
                elif field_name in fields and not fields[field_name].is_stored:
                    self.problems.at(
                        document, where, f"{key}: '{field_name}' is a children field, not a column"
                    )
            if len(set(group)) != len(group):
                self.problems.at(document, (key, group_index), f"{key}: a field is listed twice")
            result.append(tuple(group))
        return tuple(result)

    def resolve_entity(
        self, pack: _PackSource, target: str, document: SourceDocument, where: tuple[PathItem, ...]
    ) -> str | None:
        qualified = target if "." in target else f"{pack.name}.{target}"
        target_pack = qualified.split(".", 1)[0]
        if qualified not in self.known_entities:
            candidates = [
                e.split(".", 1)[1] if e.startswith(pack.name + ".") else e
                for e in self.known_entities
            ]
            hint = did_you_mean(target, candidates)
            self.problems.at(document, where, f"unknown entity '{target}'{hint}")
            return None
        if target_pack not in self.closure.get(pack.name, {pack.name}):
            self.problems.at(
                document,
                where,
                f"entity '{qualified}' belongs to pack '{target_pack}', which pack "
                f"'{pack.name}' does not depend on; add it to depends in module.yaml",
            )
            return None
        return qualified


class _FieldChecker:
    """Normalises and checks one field definition."""

    def __init__(
        self,
        builder: _ProjectBuilder,
        pack: _PackSource,
        document: SourceDocument,
        name: str,
        raw: dict[str, Any],
    ) -> None:
        self.builder = builder
        self.pack = pack
        self.document = document
        self.name = name
        self.raw = raw
        self.path: tuple[PathItem, ...] = ("fields", name)
        self.ok = True

    def error(self, message: str, key: str | None = None, *, at_key: bool = False) -> None:
        where = (*self.path, key) if key else self.path
        self.builder.problems.at(self.document, where, message, key=at_key or key is None)
        self.ok = False

    def build(self) -> FieldDef | None:
        self._check_name()
        field_type = FieldType(self.raw["type"])
        for key in self.raw:
            if key not in TYPE_KEYS[field_type]:
                self.error(
                    f"key '{key}' does not apply to a field of type {field_type}", key, at_key=True
                )
        for key in ("required_if", "computed"):
            if key in self.raw:
                message = expression_syntax_error(self.raw[key])
                if message:
                    self.error(message, key)
        built = FieldDef(
            name=self.name,
            type=field_type,
            label=self.raw.get("label") or _default_label(self.name),
            help=self.raw.get("help"),
            required=bool(self.raw.get("required", False)),
            required_if=self.raw.get("required_if"),
            unique=bool(self.raw.get("unique", False)),
            index=bool(self.raw.get("index", False)),
            default=self._default(field_type),
            min=self._number("min"),
            max=self._number("max"),
            min_length=self.raw.get("min_length"),
            max_length=self.raw.get("max_length"),
            pattern=self._pattern(),
            values=tuple(self.raw.get("values", ())),
            to=self._target("to") if field_type is FieldType.REFERENCE else None,
            on_delete=self._on_delete(field_type),
            entity=self._children() if field_type is FieldType.CHILDREN else None,
            computed=self.raw.get("computed"),
            read_only=bool(self.raw.get("read_only", False)),
            precision=self._precision(field_type),
            scale=self._scale(field_type),
            format=self._format(),
        )
        self._check_ranges(built)
        return built if self.ok else None

    def _check_name(self) -> None:
        if not NAME_PATTERN.match(self.name) or "__" in self.name:
            self.error(f"field name '{self.name}' must be snake_case (a-z, 0-9, single _)")
        elif self.name in SYSTEM_FIELDS:
            self.error(f"'{self.name}' is a system field every record has; choose another name")
        elif self.name in RESERVED_PARAMETERS:
            self.error(f"'{self.name}' is reserved as a list parameter; choose another name")

    def _number(self, key: str) -> Decimal | None:
        value = self.raw.get(key)
        if value is None:
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.error(f"{key} must be a number, not '{value}'", key)
            return None

    def _pattern(self) -> str | None:
        pattern = self.raw.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.error(f"pattern is not a valid regular expression: {exc}", "pattern")
        return pattern

    def _target(self, key: str) -> str | None:
        return self.builder.resolve_entity(
            self.pack, self.raw[key], self.document, (*self.path, key)
        )

    def _on_delete(self, field_type: FieldType) -> OnDelete | None:
        if field_type is not FieldType.REFERENCE:
            return None
        on_delete = OnDelete(self.raw.get("on_delete", "restrict"))
        if on_delete is OnDelete.SET_NULL and self.raw.get("required"):
            self.error("on_delete: set_null cannot apply to a required reference", "on_delete")
        return on_delete

    def _children(self) -> str | None:
        target = self.raw["entity"]
        qualified = self._target("entity")
        if qualified is None:
            return None
        owner = f"{self.pack.name}.{self.document.path.stem}"
        if qualified.split(".", 1)[0] != self.pack.name:
            self.error(
                f"children entity '{target}' must belong to pack '{self.pack.name}'", "entity"
            )
        elif qualified == owner:
            self.error("an entity cannot be its own children entity", "entity")
        elif qualified in self.builder.child_owner:
            self.error(
                f"entity '{target}' is already the children entity of "
                f"'{self.builder.child_owner[qualified]}'",
                "entity",
            )
        else:
            child_document = self.pack.entity_documents.get(qualified.split(".", 1)[1])
            if child_document and any(
                f.get("type") == "children" for f in child_document.data["fields"].values()
            ):
                self.error(
                    f"children entity '{target}' has children of its own; "
                    "only one level of line items is supported",
                    "entity",
                )
            self.builder.child_owner[qualified] = owner
        return qualified

    def _precision(self, field_type: FieldType) -> int | None:
        if field_type is not FieldType.DECIMAL:
            return None
        return int(self.raw.get("precision", 18))

    def _scale(self, field_type: FieldType) -> int | None:
        if field_type is not FieldType.DECIMAL:
            return None
        scale = int(self.raw.get("scale", 2))
        if scale > int(self.raw.get("precision", 18)):
            self.error("scale cannot exceed precision", "scale")
        return scale

    def _format(self) -> str | None:
        fmt = self.raw.get("format")
        if fmt is not None and not any(
            token.startswith("#") for token in AUTONUMBER_TOKEN.findall(fmt)
        ):
            self.error("autonumber format needs a counter such as {#####}", "format")
        return fmt

    def _default(self, field_type: FieldType) -> Any:
        if "default" not in self.raw:
            return None
        value = self.raw["default"]
        problem = _default_problem(field_type, value, self.raw)
        if problem:
            self.error(problem, "default")
        return value

    def _check_ranges(self, built: FieldDef) -> None:
        if built.min is not None and built.max is not None and built.min > built.max:
            self.error("min is greater than max", "min")
        if (
            built.min_length is not None
            and built.max_length is not None
            and built.min_length > built.max_length
        ):
            self.error("min_length is greater than max_length", "min_length")
        if built.computed and built.required:
            self.error("a computed field cannot be required", "required")


def _default_problem(field_type: FieldType, value: Any, raw: dict[str, Any]) -> str | None:
    if value is None:
        return None
    if field_type is FieldType.ENUM and value not in raw.get("values", ()):
        hint = did_you_mean(str(value), raw.get("values", ()))
        return f"default '{value}' is not one of the values{hint}"
    if field_type is FieldType.BOOLEAN and not isinstance(value, bool):
        return "default of a boolean field must be true or false"
    if field_type is FieldType.INTEGER and (isinstance(value, bool) or not isinstance(value, int)):
        return "default of an integer field must be a whole number"
    if field_type is FieldType.DECIMAL:
        try:
            Decimal(str(value))
        except InvalidOperation:
            return "default of a decimal field must be a number"
    if field_type in {FieldType.CHILDREN, FieldType.AUTONUMBER, FieldType.REFERENCE}:
        return f"a {field_type} field cannot have a default"
    return None
