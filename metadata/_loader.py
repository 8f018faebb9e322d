"""Load module packs from disk into a checked, immutable ``ProjectDef``.

Two passes, as in Django's check framework: every file is parsed and checked against its
JSON Schema first; then the definitions are normalised and checked together (references,
indexes, children, names). Customizations (overlays, SPEC §3.6) are read in the first pass
and merged into their pack's entities in the second. All problems are collected and raised
at once.

The first pass is ``metadata._packs`` (which packs, and their files), the second
``metadata._project_builder``; this module runs them, with the calendars, reports and
fixture files that are checked against the built project.

A file that fails the first pass does not stop the second: its usable parts are checked
(an entity whose ``title`` breaks the schema still has its fields checked), and what failed
is recorded in the ``ProblemCollector`` so that nothing else reports a follow-on problem
about it (a reference to an entity whose file failed is not an "unknown entity").
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from metadata._calendars import load_calendars
from metadata._documents import load_optional_document
from metadata._errors import ProblemCollector
from metadata._expressions import CALENDARS
from metadata._model import ProjectDef, frozen_mapping
from metadata._overlays import load_overlays, load_pack_overlays
from metadata._packs import PackResolver, dependency_closure, discover_packs, read_pack_files
from metadata._project_builder import ProjectBuilder
from metadata._reports import load_reports
from metadata._roles import ROLES_FILE
from metadata.fixtures import check_fixture_files

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from metadata._overlays import OverlaySource

__all__ = ["discover_packs", "load_project"]  # discover_packs: re-exported by ``metadata``


def load_project(
    enabled: Sequence[str],
    search_paths: Sequence[Path],
    *,
    config_name: str = "tessera.yaml",
    customizations: Path | None = None,
    fixture_folders: Sequence[str] = (),
    instance_names: Mapping[str, Any] | None = None,
) -> ProjectDef:
    """Load the enabled packs and their dependencies; raise ``DefinitionError`` on problems.

    ``customizations`` is the instance's overlay folder: ``<pack>/<entity>.yaml`` files there
    add fields to, and tighten, the entities of enabled packs. A folder that does not exist
    (yet) customizes nothing. ``fixture_folders`` (``data``, ``demo``) are checked too, their
    problems reported with the definitions' (``tessera validate``). ``instance_names``: the
    values the instance gives names of expressions (``company_currency``).
    """
    problems = ProblemCollector()
    available = discover_packs(search_paths)
    resolver = PackResolver(available, problems, config_name)
    packs = resolver.resolve(enabled)
    for pack in packs.values():
        read_pack_files(pack, problems)
    overlays: dict[str, OverlaySource] = {}
    if customizations is not None:
        overlays = load_overlays(
            customizations,
            packs,
            available=available,
            failed=resolver.failed,
            config_name=config_name,
            problems=problems,
        )
    pack_overlays = load_pack_overlays(packs, dependency_closure(packs), problems)
    instance_roles = (
        load_optional_document(customizations / ROLES_FILE, "roles", problems)
        if customizations is not None
        else None
    )
    calendars = load_calendars(((p.name, p.path) for p in packs.values()), problems)
    known = CALENDARS.set(frozenset(calendars))  # expressions naming one are checked
    try:
        project = ProjectBuilder(packs, problems, overlays, instance_roles, pack_overlays).build()
        reports = load_reports(((p.name, p.path) for p in packs.values()), project, problems)
    finally:
        CALENDARS.reset(known)
    for folder in fixture_folders:
        check_fixture_files(project, folder, problems)
    problems.raise_if_any()
    if calendars:
        project = replace(project, calendars=frozen_mapping(calendars))
    if reports:
        project = replace(project, reports=frozen_mapping(reports))
    if instance_names:
        project = replace(project, instance_names=frozen_mapping(instance_names))
    return project
