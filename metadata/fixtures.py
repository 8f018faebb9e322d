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
    pack: str = ""
    """The pack whose folder holds the file: the entity's own, or a pack that depends on
    the entity's pack (a file named ``<pack>.<entity>.yaml``)."""

    @property
    def extends(self) -> bool:
        """Whether the file adds to another pack's records (loaded after every pack's own)."""
        return bool(self.pack) and not self.entity.startswith(f"{self.pack}.")


def load_fixture_files(project: ProjectDef, folder: str) -> list[FixtureFile]:
    """Fixture files of every enabled pack, in the order they load: every pack's files of
    its own entities first, so that referenced entities come first; then the files a pack
    holds for the entities of the packs it depends on (``sales.opportunity.yaml`` in the
    integration pack's ``demo/``), in the same order among themselves. A record of such a
    file whose key exists updates that record (a draft) or is left alone (a submitted
    document), so an integration pack's demo can take the records of the packs it joins
    further: submit the order a rule made, invoice it, pay it."""
    problems = ProblemCollector()
    files = check_fixture_files(project, folder, problems)
    problems.raise_if_any()
    own = [f for f in files if not f.extends]
    return _ordered(project, own) + _ordered(project, [f for f in files if f.extends])


def check_fixture_files(
    project: ProjectDef, folder: str, problems: ProblemCollector
) -> list[FixtureFile]:
    """The fixture files of ``folder`` in every pack of ``project``, in pack order; problems
    go to ``problems``. ``project`` may be one whose load found problems (``tessera
    validate`` reports them all at once): a file of an entity that failed to load, or whose
    key is a field that failed, is left unchecked rather than reported again.

    A file is named after an entity of its pack (``account.yaml``) or, qualified, after an
    entity of a pack its pack depends on (``orders.sales_order.yaml``)."""
    files: list[FixtureFile] = []
    closure = _dependencies(project)
    for module in project.modules.values():
        directory = module.path / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.y*ml")):
            document = load_document(path, "fixture", problems)
            if document is None:
                continue
            qualified = path.stem if "." in path.stem else f"{module.name}.{path.stem}"
            target_pack = qualified.split(".", 1)[0]
            if target_pack not in closure.get(module.name, {module.name}):
                problems.at_file(
                    document.display_name,
                    f"'{path.name}' holds records of pack '{target_pack}', which pack "
                    f"'{module.name}' does not depend on; name it after an entity of "
                    f"'{module.name}' or of a pack in its depends",
                )
                continue
            entity = project.entities.get(qualified)
            if entity is None:
                if not problems.has_failed(qualified):
                    names = (
                        [e for e in project.entities if e.startswith(f"{target_pack}.")]
                        if "." in path.stem
                        else [e.split(".")[1] for e in module.entities]
                    )
                    hint = did_you_mean(path.stem, names)
                    problems.at_file(document.display_name, f"no entity '{qualified}'{hint}")
                continue
            key = document.data["key"]
            if key not in entity.unique_fields():
                if key in entity.fields or not problems.has_failed(qualified, key):
                    message = f"key '{key}' is not a unique field of {qualified}"
                    problems.at(document, ("key",), message)
                continue
            files.append(
                FixtureFile(
                    qualified,
                    key,
                    tuple(document.data["records"]),
                    document.display_name,
                    module.name,
                )
            )
    return files


def _dependencies(project: ProjectDef) -> dict[str, set[str]]:
    """Each pack with every pack it depends on, directly or through another."""
    closure: dict[str, set[str]] = {}

    def reach(name: str) -> set[str]:
        if name not in closure:
            closure[name] = {name}  # a cycle is a load error of its own; stop here
            module = project.modules.get(name)
            for dependency in module.depends if module is not None else ():
                closure[name] |= reach(dependency)
        return closure[name]

    for name in project.modules:
        reach(name)
    return closure


def _referenced(project: ProjectDef, name: str) -> list[str]:
    """Entities a record of ``name`` may refer to when written, including through its line
    items. A read-only reference (one a rule fills: an opportunity's sales order) is no
    reason to load first: a record never names it, and counting it would make cycles of
    references that a record can in fact be written in one order."""
    targets = []
    for field in project.entity(name).fields.values():
        if field.to and field.is_writable:
            targets.append(field.to)
        elif field.entity:
            lines = project.entity(field.entity).fields.values()
            targets += [f.to for f in lines if f.to and f.is_writable]
    return targets


def _ordered(project: ProjectDef, files: list[FixtureFile]) -> list[FixtureFile]:
    """``files`` so that an entity's files come after those of the entities it refers to
    (in a cycle, the pack order decides); an entity's files in pack order."""
    by_entity: dict[str, list[FixtureFile]] = {}
    for file in files:
        by_entity.setdefault(file.entity, []).append(file)
    ordered: list[FixtureFile] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name not in by_entity:
            return
        done.add(name)
        for target in _referenced(project, name):
            if target != name:
                visit(target)
        ordered.extend(by_entity[name])

    for name in by_entity:
        visit(name)
    return ordered
