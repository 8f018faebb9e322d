"""Fixture and demo records shipped in packs (``data/`` and ``demo/``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metadata._documents import load_document
from metadata._errors import ProblemCollector, did_you_mean

if TYPE_CHECKING:
    from metadata._model import ProjectDef


@dataclass(frozen=True, slots=True)
class FixtureFile:
    entity: str
    key: str
    records: tuple[dict[str, Any], ...]
    source: str


def load_fixture_files(project: ProjectDef, folder: str) -> list[FixtureFile]:
    """Fixture files of every enabled pack, ordered so referenced entities load first."""
    problems = ProblemCollector()
    files = check_fixture_files(project, folder, problems)
    problems.raise_if_any()
    return _ordered(project, files)


def check_fixture_files(
    project: ProjectDef, folder: str, problems: ProblemCollector
) -> dict[str, FixtureFile]:
    """The fixture files of ``folder`` in every pack of ``project``, by entity; problems go
    to ``problems``. ``project`` may be one whose load found problems (``tessera validate``
    reports them all at once): a file of an entity that failed to load, or whose key is a
    field that failed, is left unchecked rather than reported again."""
    files: dict[str, FixtureFile] = {}
    for module in project.modules.values():
        directory = module.path / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.y*ml")):
            document = load_document(path, "fixture", problems)
            if document is None:
                continue
            qualified = f"{module.name}.{path.stem}"
            entity = project.entities.get(qualified)
            if entity is None:
                if not problems.has_failed(qualified):
                    hint = did_you_mean(path.stem, [e.split(".")[1] for e in module.entities])
                    problems.at_file(document.display_name, f"no entity '{qualified}'{hint}")
                continue
            key = document.data["key"]
            if key not in entity.unique_fields():
                if key in entity.fields or not problems.has_failed(qualified, key):
                    message = f"key '{key}' is not a unique field of {qualified}"
                    problems.at(document, ("key",), message)
                continue
            files[qualified] = FixtureFile(
                qualified, key, tuple(document.data["records"]), document.display_name
            )
    return files


def _referenced(project: ProjectDef, name: str) -> list[str]:
    """Entities a record of ``name`` refers to, including through its line items."""
    targets = []
    for field in project.entity(name).fields.values():
        if field.to:
            targets.append(field.to)
        elif field.entity:
            targets += [f.to for f in project.entity(field.entity).fields.values() if f.to]
    return targets


def _ordered(project: ProjectDef, files: dict[str, FixtureFile]) -> list[FixtureFile]:
    ordered: list[FixtureFile] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in visiting or name not in files or files[name] in ordered:
            return
        visiting.add(name)
        for target in _referenced(project, name):
            if target != name:
                visit(target)
        ordered.append(files[name])

    for name in files:
        visit(name)
    return ordered
