"""Customizations (overlays, SPEC §3.6): ``<customizations>/<pack>/<entity>.yaml`` files that
change an entity of an enabled pack without touching the pack.

A customization may change the entity's labels and title, add fields, indexes and unique
groups, and tighten the fields the pack declares (``required: true``, a lower ``max_length``,
fewer enum values, ...). It never loosens or removes what the pack declares, so the pack's
own rules keep holding and the pack can be upgraded under it: an entry that adds a field the
pack later declares itself becomes a change of that field. What each field key may do is one
rule per key, registered in ``_RULES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from metadata._documents import (
    YAML_SUFFIXES,
    check_document,
    display_name,
    parse_document,
)
from metadata._errors import did_you_mean
from metadata._expressions import expression_syntax_error
from metadata._fieldkeys import DEFAULT_MAX_LENGTH, TYPE_KEYS
from metadata._fields import FieldChecker, default_problem, pattern_problem
from metadata._files import narrower_types, smaller_size
from metadata._model import OnDelete, frozen_mapping
from metadata._names import is_snake_case
from metadata._roles import ROLES_FILE
from metadata._rules import RuleChecker

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from metadata._building import Builder, PackSource
    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef, FieldDef
    from metadata._yaml import SourceDocument


@dataclass(frozen=True, slots=True)
class OverlaySource:
    """A customization file that passed the first pass."""

    document: SourceDocument
    removed: tuple[str, ...] = ()
    """Field entries whose value is not a mapping (``name: null``): attempts to remove."""
    pack: str | None = None
    """The pack that ships it (``overlays/``); None for the instance's customization."""
    templates: Path | None = None
    """Where its rules' e-mail templates are: the shipping pack's ``templates/``."""


def load_overlays(
    root: Path,
    packs: Mapping[str, PackSource],
    *,
    available: Mapping[str, Path],
    failed: set[str],
    config_name: str,
    problems: ProblemCollector,
) -> dict[str, OverlaySource]:
    """First pass over the customization folder: overlays by qualified entity name."""
    if not root.exists():
        return {}
    if not root.is_dir():
        problems.at_file(
            display_name(root), "customizations must be a folder of <pack>/<entity>.yaml files"
        )
        return {}
    overlays: dict[str, OverlaySource] = {}
    for folder in sorted(root.iterdir()):
        if folder.name.startswith("."):
            continue
        if not folder.is_dir():
            if folder.name == ROLES_FILE:
                continue  # the instance's roles, loaded with the packs' roles.yaml
            if folder.suffix in YAML_SUFFIXES:
                problems.at_file(
                    display_name(folder),
                    "a customization belongs in its pack's folder (<pack>/<entity>.yaml), "
                    "or is the instance's roles.yaml",
                )
            continue
        files = [
            path
            for path in sorted(folder.iterdir())
            if path.suffix in YAML_SUFFIXES and not path.name.startswith(".") and path.is_file()
        ]
        pack = packs.get(folder.name)
        if pack is None:
            if folder.name not in failed:  # a failed pack's problems are reported at the pack
                message = _not_enabled(folder.name, packs, available, config_name)
                for path in files:
                    problems.at_file(display_name(path), message)
            continue
        for path in files:
            _load_overlay_file(path, pack, overlays, problems)
    return overlays


PACK_OVERLAYS = "overlays"
"""A pack's folder of overlays onto the entities of packs it depends on:
``<pack>/overlays/<other pack>/<entity>.yaml``, in the customization format."""


def load_pack_overlays(
    packs: Mapping[str, PackSource],
    closure: Mapping[str, set[str]],
    problems: ProblemCollector,
) -> dict[str, list[OverlaySource]]:
    """First pass over every pack's ``overlays/`` folder: the overlays of each entity, in
    the order of the packs that declare them (dependencies first). A pack may overlay only
    the entities of packs it depends on."""
    found: dict[str, list[OverlaySource]] = {}
    for pack in packs.values():  # dependency order
        root = pack.path / PACK_OVERLAYS
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.name.startswith("."):
                continue
            files = [
                path
                for path in sorted(folder.iterdir() if folder.is_dir() else [folder])
                if path.suffix in YAML_SUFFIXES and not path.name.startswith(".")
            ]
            target = packs.get(folder.name)
            reachable = closure.get(pack.name, {pack.name}) - {pack.name}
            if not folder.is_dir() or target is None or folder.name not in reachable:
                message = (
                    "a pack's overlay belongs in overlays/<pack>/<entity>.yaml"
                    if not folder.is_dir()
                    else f"overlay of pack '{folder.name}', which pack '{pack.name}' does not "
                    f"depend on: add '{folder.name}' to depends in module.yaml"
                    f"{did_you_mean(folder.name, reachable)}"
                )
                for path in files:
                    problems.at_file(display_name(path), message)
                continue
            mine: dict[str, OverlaySource] = {}
            for path in files:
                _load_overlay_file(path, target, mine, problems)
            for qualified, overlay in mine.items():
                shipped = replace(overlay, pack=pack.name, templates=pack.path / "templates")
                found.setdefault(qualified, []).append(shipped)
    return found


def _not_enabled(
    name: str, packs: Mapping[str, PackSource], available: Mapping[str, Path], config_name: str
) -> str:
    if name in available:
        return (
            f"customization of pack '{name}', which is not enabled; "
            f"add it to modules in {config_name}, or remove this file"
        )
    return f"customization of unknown module pack '{name}'{did_you_mean(name, packs)}"


def _load_overlay_file(
    path: Path,
    pack: PackSource,
    overlays: dict[str, OverlaySource],
    problems: ProblemCollector,
) -> None:
    name = path.stem
    qualified = f"{pack.name}.{name}"
    if not is_snake_case(name):
        problems.at_file(
            display_name(path),
            f"customization file name '{name}' must be snake_case (a-z, 0-9, single _)",
        )
        return
    if name not in pack.entity_names:
        hint = did_you_mean(name, pack.entity_names)
        problems.at_file(display_name(path), f"customization of unknown entity '{qualified}'{hint}")
        return
    if qualified in overlays:
        problems.at_file(display_name(path), f"entity '{qualified}' is customized twice")
        return
    overlay = _load_overlay(path, problems)
    if overlay is None:
        # The fields it adds are unknown: a use of one elsewhere is not reported again.
        problems.partly_failed.add(qualified)
    # An entity whose own file failed to load is left out; its problems are reported there.
    elif name in pack.entity_documents:
        overlays[qualified] = overlay


def _load_overlay(path: Path, problems: ProblemCollector) -> OverlaySource | None:
    document = parse_document(path, problems)
    if document is None:
        return None
    if document.data is None:  # empty, or only comments: customizes nothing
        document.data = {}
    removed: tuple[str, ...] = ()
    fields = document.data.get("fields") if isinstance(document.data, dict) else None
    if isinstance(fields, dict):
        removed = tuple(str(k) for k, v in fields.items() if not isinstance(v, dict))
        if removed:
            kept = {k: v for k, v in fields.items() if isinstance(v, dict)}
            document.data = {**document.data, "fields": kept}
    checked = check_document(document, "overlay", problems)
    return None if checked is None else OverlaySource(checked, removed)


class Customizer:
    """Second pass for one customization: merges it into its pack's entity."""

    def __init__(
        self,
        builder: Builder,
        pack: PackSource,
        pack_document: SourceDocument,
        overlay: OverlaySource,
        *,
        by_pack: bool = False,
    ) -> None:
        self.by_pack = by_pack
        """An overlay shipped by another pack (``overlays/``), not the instance's."""
        self.builder = builder
        self.problems = builder.problems
        self.pack = pack
        self.pack_document = pack_document
        self.overlay = overlay
        self.document = overlay.document
        self.data: dict[str, Any] = overlay.document.data

    def apply(self, entity: EntityDef, pack_declared: set[str]) -> EntityDef:
        """``entity`` as its pack declares it, customized; ``pack_declared`` holds the names
        of every field in the pack's file, including fields that failed their checks."""
        entries: dict[str, dict[str, Any]] = {
            str(k): v for k, v in self.data.get("fields", {}).items()
        }
        renamed = {f.renamed_from: f.name for f in entity.fields.values() if f.renamed_from}
        fields = dict(entity.fields)
        added: dict[str, FieldDef] = {}
        for name in self.overlay.removed:
            self._report_removal(name, pack_declared)
        for name, raw in entries.items():
            if name in fields:
                fields[name] = FieldChange(self, fields[name], raw).apply()
            elif name in pack_declared:
                continue  # the pack's own definition is broken; reported in the pack
            elif name in renamed:
                self._error(
                    name,
                    f"pack {self.pack.name} renamed its field '{name}' to '{renamed[name]}'; "
                    f"rename this entry ('{renamed[name]}' to change that field)",
                )
            elif "type" in raw:
                checker = FieldChecker(
                    self.builder, self.pack, self.document, name, raw, customization=True
                )
                if (built := checker.build()) is not None:
                    added[name] = built
            else:
                hint = did_you_mean(name, pack_declared)
                self._error(
                    name,
                    f"'{name}' is not a field of {entity.qualified_name} and has no type "
                    f"(a new field needs one){hint}",
                )
        fields.update(added)
        declared = pack_declared | entries.keys() | self.document.broken_fields
        declared |= set(self.overlay.removed)
        if "title" in self.data:
            self.builder.check_title(self.document, self.data["title"], declared)
        self.builder.check_renames(
            fields.values(),
            {
                self.pack_document.display_name: (self.pack_document, pack_declared),
                self.document.display_name: (self.document, declared),
            },
        )
        taken = {rule.name: rule.origin for rule in entity.rules}
        rule_checker = RuleChecker(
            self.document,
            ("rules",),
            declared,
            self.problems,
            entity=entity.qualified_name,
            templates=self.overlay.templates or self.pack.path / "templates",
        )
        added_rules = rule_checker.build(self.data.get("rules", []), taken)
        if not entity.document:
            self.builder.check_document_events(
                self.document, entity.qualified_name, self.data.get("rules"), ("rules",)
            )
        self.builder.pending_actions += [
            replace(p, pack=self.overlay.pack) for p in rule_checker.pending
        ]
        self.builder.pending_roles += rule_checker.pending_roles
        self.builder.pending_assigns += rule_checker.pending_assigns
        label = self.data.get("label", entity.label)
        plural = self.data.get("label_plural") or self.pack_document.data.get("label_plural")
        return replace(
            entity,
            label=label,
            label_plural=plural or f"{label}s",
            description=self.data.get("description", entity.description),
            title=self.data.get("title", entity.title),
            fields=frozen_mapping(fields),
            indexes=self._groups("indexes", entity.indexes, fields, declared),
            unique=self._groups("unique", entity.unique, fields, declared),
            customization=entity.customization if self.by_pack else self.document.display_name,
            rules=(*entity.rules, *added_rules),
        )

    def _error(self, name: str, message: str) -> None:
        self.problems.at(self.document, ("fields", name), message, key=True)

    def _report_removal(self, name: str, pack_declared: set[str]) -> None:
        if name in pack_declared:
            self._error(name, f"a customization cannot remove pack field '{name}'")
        else:
            self.problems.at(
                self.document,
                ("fields", name),
                f"field '{name}' needs a mapping of field keys, such as {{type: string}}",
            )

    def _groups(
        self,
        key: str,
        pack_groups: tuple[tuple[str, ...], ...],
        fields: Mapping[str, FieldDef],
        declared: set[str],
    ) -> tuple[tuple[str, ...], ...]:
        """The pack's groups, then the customization's that the pack does not have (yet)."""
        merged = list(pack_groups)
        for group in self.builder.field_groups(self.document, key, fields, declared):
            if group not in merged:
                merged.append(group)
        return tuple(merged)


class FieldChange:
    """One customization entry applied to a field the pack declares: only tightenings pass.

    Problems are reported at the entry's keys in the customization file; when there is any,
    the pack's field is kept as it is.
    """

    def __init__(self, customizer: Customizer, field_def: FieldDef, raw: dict[str, Any]) -> None:
        self.customizer = customizer
        self.field = field_def
        self.raw = raw
        self.pack = customizer.pack.name
        self.changes: dict[str, Any] = {}
        self.ok = True

    def error(
        self, key: str, message: str, *, item: int | None = None, at_key: bool = False
    ) -> None:
        where: tuple[PathItem, ...] = ("fields", self.field.name, key)
        if item is not None:
            where = (*where, item)
        self.customizer.problems.at(self.customizer.document, where, message, key=at_key)
        self.ok = False

    def loosens(self, key: str, written: str, pack_value: str) -> None:
        self.error(
            key,
            f"{key} {written} loosens the {key} {pack_value} of pack {self.pack}; "
            "a customization may only tighten it",
        )

    def apply(self) -> FieldDef:
        field_type = self.field.type
        if "type" in self.raw and self.raw["type"] != field_type:
            self.error(
                "type",
                f"field '{self.field.name}' has type {field_type} in pack '{self.pack}'; "
                "a customization cannot change its type",
            )
            return self.field
        for key, value in self.raw.items():
            if key == "type":
                continue
            if key not in TYPE_KEYS[field_type]:
                message = f"key '{key}' does not apply to a field of type {field_type}"
                self.error(key, message, at_key=True)
                continue
            _RULES[key](self, key, value)
        if not self.ok or not self.changes:
            return self.field
        merged = replace(self.field, **self.changes)
        self._check_merged(merged)
        return merged if self.ok else self.field

    def decimal(self, key: str, value: Any) -> Decimal | None:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.error(key, f"{key} must be a number, not '{value}'")
            return None

    def _check_merged(self, merged: FieldDef) -> None:
        """Checks that involve more than one key, at the key the customization wrote."""
        raw = self.raw
        if merged.min is not None and merged.max is not None and merged.min > merged.max:
            self.error("min" if "min" in raw else "max", "min is greater than max")
        if (
            merged.min_length is not None
            and merged.max_length is not None
            and merged.min_length > merged.max_length
        ):
            key = "min_length" if "min_length" in raw else "max_length"
            self.error(key, "min_length is greater than max_length")
        if merged.required and "required" in raw:
            if merged.computed:
                self.error("required", "a computed field cannot be required")
            elif merged.on_delete is OnDelete.SET_NULL:
                self.error("required", "on_delete: set_null cannot apply to a required reference")
        if "default" in raw or "values" in raw:
            problem = default_problem(merged.type, merged.default, merged.values)
            if problem and "default" in raw:
                self.error("default", problem)
            elif problem:
                self.error(
                    "values",
                    f"the pack's default '{merged.default}' is not among these values; "
                    "set a default too",
                )


# One rule per field key: what a customization may do to a pack field's key.
_Rule = Callable[[FieldChange, str, Any], None]


def _replace(change: FieldChange, key: str, value: Any) -> None:
    change.changes[key] = value


def _only_true(change: FieldChange, key: str, value: bool) -> None:
    if value:
        change.changes[key] = True
    elif getattr(change.field, key):
        change.error(
            key,
            f"{key}: false loosens the {key}: true of pack {change.pack}; "
            "a customization may only tighten it",
        )


def _at_most(change: FieldChange, key: str, value: Any) -> None:
    new = change.decimal(key, value) if key == "max" else value
    if new is None:
        return
    current = getattr(change.field, key)
    shown = str(current)
    if key == "max_length" and current is None:
        current = DEFAULT_MAX_LENGTH.get(change.field.type)
        shown = f"{current} (the default for {change.field.type})"
    if current is not None and new > current:
        change.loosens(key, str(value), shown)
    else:
        change.changes[key] = new


def _at_least(change: FieldChange, key: str, value: Any) -> None:
    new = change.decimal(key, value) if key == "min" else value
    if new is None:
        return
    current = getattr(change.field, key)
    if current is not None and new < current:
        change.loosens(key, str(value), str(current))
    else:
        change.changes[key] = new


def _only_where_unset(change: FieldChange, key: str, value: str) -> None:
    problem = pattern_problem(value) if key == "pattern" else expression_syntax_error(value)
    if problem:
        change.error(key, problem)
        return
    current = getattr(change.field, key)
    if current is None or current == value:
        change.changes[key] = value
    else:
        change.error(
            key,
            f"pack {change.pack} already sets {key} '{current}'; "
            f"a customization may only add a {key} where the pack has none",
        )


def _subset(change: FieldChange, key: str, value: list[str]) -> None:
    allowed = change.field.values
    for index, item in enumerate(value):
        if item not in allowed:
            change.error(
                key,
                f"'{item}' is not among the values of pack {change.pack} ({', '.join(allowed)}); "
                f"a customization may only restrict them{did_you_mean(item, allowed)}",
                item=index,
            )
    if change.ok:
        change.changes[key] = tuple(value)


def _fixed(change: FieldChange, key: str, value: Any) -> None:
    current = getattr(change.field, key)
    if _normalised(change, key, value) == current:
        return
    name = change.field.name
    if current is None:
        change.error(key, f"a customization cannot set {key} on pack field '{name}'")
    else:
        shown = f"'{current}'" if isinstance(current, str) else str(current)
        change.error(
            key,
            f"pack {change.pack} sets {key} {shown} on field '{name}'; "
            "a customization cannot change it",
        )


def _normalised(change: FieldChange, key: str, value: Any) -> Any:
    if key in {"to", "entity"} and isinstance(value, str) and "." not in value:
        return f"{change.pack}.{value}"
    if key == "on_delete":
        return OnDelete(value)
    return value


_RULES: dict[str, _Rule] = {
    "label": _replace,
    "help": _replace,
    "default": _replace,  # checked against the merged field's values in _check_merged
    "required": _only_true,
    "unique": _only_true,
    "index": _only_true,
    "read_only": _only_true,
    "allow_on_submit": _replace,  # a customer may free a field of a submitted document, or not
    "currency": _replace,  # how people read an amount; the stored value is the same
    "gapless": _replace,  # how the next numbers are drawn; the numbers taken stay
    "max_length": _at_most,
    "max": _at_most,
    "min_length": _at_least,
    "min": _at_least,
    "pattern": _only_where_unset,
    "required_if": _only_where_unset,
    "max_size": smaller_size,
    "accept": narrower_types,
    "values": _subset,
    **dict.fromkeys(
        (
            "to",
            "on_delete",
            "entity",
            "computed",
            "precision",
            "scale",
            "format",
            "assign",
            "date_field",
            "renamed_from",
            "lookup",
        ),
        _fixed,
    ),
}
