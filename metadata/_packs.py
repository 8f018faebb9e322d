"""The first pass's view of packs: which packs there are (``discover_packs``), which of
them an instance loads (the enabled ones and their dependencies, in dependency order, with
cycles and unknown names reported) and the definition files each pack holds, parsed and
schema-checked (``read_pack_files``). What fails here is reported and remembered in the
``ProblemCollector``, so that the second pass reports no follow-on problem about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metadata._building import PackSource
from metadata._dashboards import load_dashboard_documents
from metadata._documents import (
    YAML_SUFFIXES,
    display_name,
    load_document,
    load_optional_document,
)
from metadata._errors import did_you_mean
from metadata._model import RESERVED_PACK_NAMES
from metadata._names import is_snake_case
from metadata._roles import ROLES_FILE
from metadata._rules import load_entity_files

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from pathlib import Path

    from metadata._errors import PathItem, ProblemCollector
    from metadata._yaml import SourceDocument


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


def read_pack_files(pack: PackSource, problems: ProblemCollector) -> None:
    """Parse and schema-check the definition files of ``pack`` into it: entities first
    (the other files are by entity name), then rules, forms, views, dashboards, workflows
    and roles."""
    _load_entity_documents(pack, problems)
    names = pack.entity_names
    pack.rule_documents = load_entity_files(pack.path, "rules", "rules", names, problems)
    pack.form_documents = load_entity_files(pack.path, "forms", "form", names, problems)
    pack.view_documents = load_entity_files(pack.path, "views", "view", names, problems)
    pack.dashboard_documents = load_dashboard_documents(pack.path, problems)
    pack.workflow_documents = load_entity_files(pack.path, "workflows", "workflow", names, problems)
    pack.roles_document = load_optional_document(pack.path / ROLES_FILE, "roles", problems)


def dependency_closure(packs: dict[str, PackSource]) -> dict[str, set[str]]:
    """Each pack's name with every pack it depends on, directly or not; ``packs`` is in
    dependency order (as ``PackResolver.resolve`` returns them)."""
    closure: dict[str, set[str]] = {}
    for name, pack in packs.items():  # dependency order: dependencies come first
        reachable = {name}
        for dependency in pack.document.data.get("depends", []):
            reachable |= closure.get(dependency, {dependency})
        closure[name] = reachable
    return closure


class PackResolver:
    """Finds enabled packs and their dependencies, in dependency order, detecting cycles."""

    def __init__(
        self, available: dict[str, Path], problems: ProblemCollector, config_name: str
    ) -> None:
        self.available = available
        self.problems = problems
        self.config_name = config_name
        self.ordered: dict[str, PackSource] = {}
        self.failed: set[str] = set()

    def resolve(self, enabled: Sequence[str]) -> dict[str, PackSource]:
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
        document = load_document(path / "module.yaml", "module", self.problems)
        if document is None:
            self.failed.add(name)
            # Its entities exist, in a pack that could not be loaded: references to them
            # are not follow-on "unknown entity" problems.
            entity_dir = path / "entities"
            if entity_dir.is_dir():
                self.problems.failed_entities.update(
                    f"{name}.{p.stem}" for p in entity_dir.iterdir() if p.suffix in YAML_SUFFIXES
                )
            return
        if document.data["name"] != path.name:
            self.problems.at(
                document,
                ("name",),
                f"pack name '{document.data['name']}' must equal its folder name '{path.name}'",
            )
        elif path.name in RESERVED_PACK_NAMES:
            self.problems.at(
                document,
                ("name",),
                f"'{path.name}' is reserved for the API's own paths (/api/v1/{path.name}/...); "
                "rename the pack",
            )
        for index, dependency in enumerate(document.data.get("depends", [])):
            self._visit(dependency, [*stack, name], (document, ("depends", index)))
        self.ordered[name] = PackSource(name, path, document)

    def _report(
        self, origin: tuple[SourceDocument, tuple[PathItem, ...]] | None, message: str
    ) -> None:
        if origin is None:
            self.problems.at_file(self.config_name, message)
        else:
            self.problems.at(origin[0], origin[1], message)


def _load_entity_documents(pack: PackSource, problems: ProblemCollector) -> None:
    entity_dir = pack.path / "entities"
    if not entity_dir.is_dir():
        return
    for path in sorted(entity_dir.iterdir()):
        if path.suffix not in YAML_SUFFIXES:
            continue
        if not is_snake_case(path.stem):
            problems.at_file(
                display_name(path),
                f"entity file name '{path.stem}' must be snake_case (a-z, 0-9, single _)",
            )
            continue
        if path.stem in pack.entity_names:
            problems.at_file(display_name(path), f"entity '{path.stem}' is defined twice")
            continue
        pack.entity_names.add(path.stem)
        document = load_document(path, "entity", problems)
        if document is None:
            problems.failed_entities.add(f"{pack.name}.{path.stem}")
        else:
            pack.entity_documents[path.stem] = document
