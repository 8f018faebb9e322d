"""Load module packs from disk into a checked, immutable ``ProjectDef``.

Two passes, as in Django's check framework: every file is parsed and checked against its
JSON Schema first; then the definitions are normalised and checked together (references,
indexes, children, names). Customizations (overlays, SPEC §3.6) are read in the first pass
and merged into their pack's entities in the second. All problems are collected and raised
at once.

A file that fails the first pass does not stop the second: its usable parts are checked
(an entity whose ``title`` breaks the schema still has its fields checked), and what failed
is recorded in the ``ProblemCollector`` so that nothing else reports a follow-on problem
about it (a reference to an entity whose file failed is not an "unknown entity").
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from metadata._action_checks import ActionChecks
from metadata._assignments import PendingAssign, check_assignments
from metadata._autonumbers import check_autonumbers
from metadata._building import PackSource
from metadata._calendars import load_calendars
from metadata._dashboards import DashboardChecker, load_dashboard_documents
from metadata._documents import YAML_SUFFIXES, display_name, load_document
from metadata._errors import ProblemCollector, did_you_mean
from metadata._expressions import (
    CALENDARS,
    SCOPE_NAMES,
    calendar_problems,
    expression_names,
    template_problem,
)
from metadata._fields import FieldChecker
from metadata._forms import FormChecker
from metadata._lookups import check_lookups
from metadata._model import (
    ADMIN_ROLE,
    AMENDED_FROM,
    DOCSTATUS,
    DOCSTATUSES,
    DOCUMENT_FIELDS,
    RESERVED_PACK_NAMES,
    RUN_AS_SYSTEM,
    RUN_AS_USER,
    SYSTEM_FIELDS,
    DashboardDef,
    EntityDef,
    FieldDef,
    FieldType,
    ModuleDef,
    OnDelete,
    ProjectDef,
    RoleDef,
    RuleEvent,
    frozen_mapping,
)
from metadata._money import check_currencies
from metadata._names import default_label, is_snake_case
from metadata._overlays import Customizer, load_overlays, load_pack_overlays
from metadata._postings import PostingParts, check_postings
from metadata._reports import load_reports
from metadata._roles import ROLES_FILE, RolesBuilder
from metadata._rollups import check_rollups
from metadata._rules import (
    PendingAction,
    PendingRole,
    RuleChecker,
    check_line_rules,
    load_entity_files,
)
from metadata._views import ViewChecker
from metadata._workflows import WorkflowChecker
from metadata.fixtures import check_fixture_files

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from metadata._errors import PathItem
    from metadata._overlays import OverlaySource
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
    resolver = _PackResolver(available, problems, config_name)
    packs = resolver.resolve(enabled)
    for pack in packs.values():
        _load_entity_documents(pack, problems)
        names = pack.entity_names
        pack.rule_documents = load_entity_files(pack.path, "rules", "rules", names, problems)
        pack.form_documents = load_entity_files(pack.path, "forms", "form", names, problems)
        pack.view_documents = load_entity_files(pack.path, "views", "view", names, problems)
        pack.dashboard_documents = load_dashboard_documents(pack.path, problems)
        pack.workflow_documents = load_entity_files(
            pack.path, "workflows", "workflow", names, problems
        )
        pack.roles_document = _optional_document(pack.path / ROLES_FILE, "roles", problems)
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
    pack_overlays = load_pack_overlays(packs, _dependency_closure(packs), problems)
    instance_roles = (
        _optional_document(customizations / ROLES_FILE, "roles", problems)
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


def _optional_document(path: Path, kind: str, problems: ProblemCollector) -> SourceDocument | None:
    return load_document(path, kind, problems) if path.is_file() else None


class _PackResolver:
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


def _cycles(reads: Mapping[str, set[str]]) -> list[list[str]]:
    """Each circle of names in ``reads`` once, starting at its first name in order."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()

    def walk(name: str, path: list[str]) -> None:
        for target in sorted(reads.get(name, ())):
            if target == path[0]:
                if frozenset(path) not in seen:
                    seen.add(frozenset(path))
                    found.append(list(path))
            elif target not in path and target in reads:
                walk(target, [*path, target])

    for start in reads:
        walk(start, [start])
    return found


def _dependency_closure(packs: dict[str, PackSource]) -> dict[str, set[str]]:
    closure: dict[str, set[str]] = {}
    for name, pack in packs.items():  # dependency order: dependencies come first
        reachable = {name}
        for dependency in pack.document.data.get("depends", []):
            reachable |= closure.get(dependency, {dependency})
        closure[name] = reachable
    return closure


class ProjectBuilder(ActionChecks):
    """Second pass: normalise every entity, merge its customization, check cross-references."""

    def __init__(
        self,
        packs: dict[str, PackSource],
        problems: ProblemCollector,
        overlays: Mapping[str, OverlaySource],
        instance_roles: SourceDocument | None = None,
        pack_overlays: Mapping[str, Sequence[OverlaySource]] | None = None,
    ) -> None:
        self.packs = packs
        self.problems = problems
        self.overlays = overlays
        self.pack_overlays = pack_overlays or {}
        """Overlays other packs ship onto an entity (``overlays/``), applied before the
        instance's customization, in dependency order."""
        self.instance_roles = instance_roles
        self.closure = _dependency_closure(packs)
        self.known_entities = {
            f"{pack.name}.{entity}" for pack in packs.values() for entity in pack.entity_documents
        }
        for pack in packs.values():
            for entity, document in pack.entity_documents.items():
                if document.broken_fields:
                    problems.failed_fields[f"{pack.name}.{entity}"] = set(document.broken_fields)
        for qualified, extras in self.pack_overlays.items():
            for extra in extras:
                problems.failed_fields.setdefault(qualified, set()).update(
                    extra.document.broken_fields
                )
        for qualified, overlay in overlays.items():
            problems.failed_fields.setdefault(qualified, set()).update(
                overlay.document.broken_fields
            )
        self.child_owner: dict[str, str] = {}
        self.pending_actions: list[PendingAction] = []
        self._entities: Mapping[str, EntityDef] = {}
        self.pending_roles: list[PendingRole] = []
        self.pending_assigns: list[PendingAssign] = []
        self.pending_events: list[tuple[SourceDocument, str, Any, tuple[str, ...]]] = []
        """Rule lists of non-documents, checked for ``on: submit``/``cancel`` at the end."""
        self.posting_files: dict[str, SourceDocument] = {}
        """Entity files declaring ``ledger:`` or ``balance:``, by qualified name."""

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
                label=data.get("label") or default_label(pack.name),
                version=data["version"],
                depends=tuple(data.get("depends", [])),
                description=data.get("description"),
                path=pack.path,
                entities=tuple(f"{pack.name}.{e}" for e in pack.entity_documents),
            )
        for child, parent in self.child_owner.items():
            if child in entities:
                entities[child] = replace(entities[child], parent=parent)
                if entities[child].document:
                    pack_name, name = child.split(".", 1)
                    self.problems.at(
                        self.packs[pack_name].entity_documents[name],
                        ("document",),
                        f"{child} is the line items of {parent}: lines follow their "
                        f"document's lifecycle; put 'document: true' on {parent} instead",
                    )
            self._check_line_rules(child, parent)
        self._check_pending_events(entities)
        sources = {
            f"{pack.name}.{name}": document
            for pack in self.packs.values()
            for name, document in pack.entity_documents.items()
        }
        overlaid = [
            (qualified, overlay.document, overlay.pack)
            for qualified, shipped in self.pack_overlays.items()
            for overlay in shipped
        ]
        if self.overlays:
            overlaid += [(q, o.document, None) for q, o in self.overlays.items()]
        entities = check_rollups(entities, sources, self.closure, self.problems, overlaid)
        overlay_documents = [overlay.document for overlay in self.overlays.values()]
        entities = check_lookups(entities, [*sources.values(), *overlay_documents], self.problems)
        self._entities = entities
        for pending in self.pending_actions:
            self._check_action(pending, entities)
        check_postings(self, entities)  # ledgers, balances and the actions posting to them
        roles = RolesBuilder(entities, self.problems)
        for pack in self.packs.values():
            if pack.roles_document is not None:
                roles.add(pack.roles_document, pack.name)
        if self.instance_roles is not None:
            roles.add(self.instance_roles, None)
        built_roles = roles.build()
        self._check_run_as(built_roles)
        check_assignments(self.pending_assigns, entities, built_roles, self.problems)
        return ProjectDef(
            modules=frozen_mapping(modules),
            entities=frozen_mapping(entities),
            roles=frozen_mapping(built_roles),
            dashboards=frozen_mapping(self._dashboards(entities)),
        )

    def _check_line_rules(self, child: str, parent: str) -> None:
        """The rules a pack and a customization give the line item entity ``child``."""
        pack_name, name = child.split(".", 1)
        pack = self.packs.get(pack_name)
        document = pack.rule_documents.get(name) if pack is not None else None
        if document is not None:
            check_line_rules(document, (), document.data, child, parent, self.problems)
        overlay = self.overlays.get(child)
        if overlay is not None and isinstance(overlay.document.data, dict):
            rules = overlay.document.data.get("rules")
            check_line_rules(overlay.document, ("rules",), rules, child, parent, self.problems)

    def _check_run_as(self, roles: Mapping[str, RoleDef]) -> None:
        """Every role a rule's ``run_as`` names is declared (or is ``admin``)."""
        for pending_role in self.pending_roles:
            if pending_role.role not in roles and pending_role.role != ADMIN_ROLE:
                choices = [*roles, ADMIN_ROLE, RUN_AS_SYSTEM, RUN_AS_USER]
                hint = did_you_mean(pending_role.role, choices)
                message = (
                    f"run_as: '{pending_role.role}' is not a role of any roles.yaml{hint} "
                    "(use system, user or a declared role)"
                )
                self.problems.at(pending_role.document, pending_role.where, message)

    def _dashboards(self, entities: Mapping[str, EntityDef]) -> dict[str, DashboardDef]:
        dashboards = {}
        for pack in self.packs.values():
            checker = DashboardChecker(pack.name, entities, self.problems)
            for name, document in pack.dashboard_documents.items():
                dashboard = checker.build(name, document)
                if dashboard is not None:
                    dashboards[dashboard.qualified_name] = dashboard
        return dashboards

    def _add_document_fields(
        self, pack: PackSource, name: str, document: SourceDocument, fields: dict[str, FieldDef]
    ) -> None:
        """A document's system fields, read-only: ``docstatus`` (draft by default, also the
        column's DEFAULT) and ``amended_from`` (the cancelled document it replaces)."""
        for system in DOCUMENT_FIELDS:
            if system in document.data["fields"]:
                self.problems.at(
                    document,
                    ("fields", system),
                    f"'{system}' is a system field of every document (document: true); "
                    "choose another name",
                    key=True,
                )
        fields[DOCSTATUS] = FieldDef(
            name=DOCSTATUS,
            type=FieldType.ENUM,
            label="Status",
            values=DOCSTATUSES,
            default=DOCSTATUSES[0],
            required=True,
            index=True,
            read_only=True,
            origin=document.display_name,
        )
        fields[AMENDED_FROM] = FieldDef(
            name=AMENDED_FROM,
            type=FieldType.REFERENCE,
            label="Amended from",
            to=f"{pack.name}.{name}",
            on_delete=OnDelete.RESTRICT,
            read_only=True,
            origin=document.display_name,
        )

    def check_document_events(
        self, document: SourceDocument, entity: str, rules: Any, at: tuple[str, ...] = ()
    ) -> None:
        """``on: submit`` and ``on: cancel`` belong to documents (``document: true``) and
        their line items: ``rules`` (the rule list of ``document``, at path ``at``) of a
        non-document, checked once every line entity's parent is known."""
        self.pending_events.append((document, entity, rules, at))

    def _check_pending_events(self, entities: Mapping[str, EntityDef]) -> None:
        for document, entity, rules, at in self.pending_events:
            parent = entities.get(self.child_owner.get(entity, ""))
            if parent is None or not parent.document:
                self._check_document_events(document, entity, rules, at)

    def _check_document_events(
        self, document: SourceDocument, entity: str, rules: Any, at: tuple[str, ...]
    ) -> None:
        if not isinstance(rules, list):
            return
        for index, raw in enumerate(rules):
            events = raw.get("on", []) if isinstance(raw, dict) else []
            events = [events] if isinstance(events, str) else events
            moves = [e for e in events if e in {RuleEvent.SUBMIT, RuleEvent.CANCEL}]
            if moves:
                self.problems.at(
                    document,
                    (*at, index, "on"),
                    f"'on: {moves[0]}' applies only to documents, and {entity} is not one: "
                    "add 'document: true' to its entity file (line items may have such "
                    "rules when their parent is a document)",
                )

    def _build_entity(self, pack: PackSource, name: str, document: SourceDocument) -> EntityDef:
        data: dict[str, Any] = document.data
        fields: dict[str, FieldDef] = {}
        for field_name, raw in data["fields"].items():
            checker = FieldChecker(self, pack, document, str(field_name), raw)
            built = checker.build()
            if built is not None:
                fields[built.name] = built
        if data.get("document"):
            self._add_document_fields(pack, name, document, fields)
        postings = PostingParts.read(document, fields, self.problems, pack=pack.name)
        declared = {*data["fields"], *document.broken_fields, *fields}
        self.check_title(document, data.get("title"), declared)
        label = data.get("label") or name.replace("_", " ").title()
        entity = EntityDef(
            pack=pack.name,
            name=name,
            label=label,
            label_plural=data.get("label_plural") or f"{label}s",
            description=data.get("description"),
            title=data.get("title"),
            fields=frozen_mapping(fields),
            indexes=self.field_groups(document, "indexes", fields, declared),
            unique=self.field_groups(document, "unique", fields, declared),
            source=document.display_name,
            document=bool(data.get("document")),
        )
        entity = postings.apply(entity)
        if "ledger" in data or "balance" in data:
            self.posting_files[entity.qualified_name] = document
        rules_document = pack.rule_documents.get(name)
        if rules_document is not None:
            rule_checker = RuleChecker(
                rules_document,
                (),
                declared,
                self.problems,
                entity=entity.qualified_name,
                templates=pack.path / "templates",
            )
            entity = replace(entity, rules=tuple(rule_checker.build(rules_document.data, {})))
            if not entity.document:
                self.check_document_events(
                    rules_document, entity.qualified_name, rules_document.data
                )
            self.pending_actions += [replace(p, pack=pack.name) for p in rule_checker.pending]
            self.pending_roles += rule_checker.pending_roles
            self.pending_assigns += rule_checker.pending_assigns
        form = FormChecker(entity, self.problems).pack_form(pack.form_documents.get(name))
        view = ViewChecker(entity, self.problems).build(pack.view_documents.get(name))
        entity = replace(entity, form=form, view=view)
        overlay = self.overlays.get(entity.qualified_name)
        documents = {document.display_name: document}
        for extra in self.pack_overlays.get(entity.qualified_name, ()):
            entity = Customizer(self, pack, document, extra, by_pack=True).apply(entity, declared)
            form = FormChecker(entity, self.problems).customize(
                entity.form, extra.document, extra.document.data.get("form", {})
            )
            entity = replace(entity, form=form)
            documents[extra.document.display_name] = extra.document
            declared = declared | set(extra.document.data.get("fields", {}))
        if overlay is not None:
            entity = Customizer(self, pack, document, overlay).apply(entity, declared)
            form_changes = overlay.document.data.get("form", {})
            form = FormChecker(entity, self.problems).customize(
                entity.form, overlay.document, form_changes
            )
            entity = replace(entity, form=form)
            documents[overlay.document.display_name] = overlay.document
        else:
            scopes = {document.display_name: (document, declared)}
            self.check_renames(entity.fields.values(), scopes)
        self._check_computed(entity, documents)
        check_autonumbers(entity, documents, self.problems)
        check_currencies(entity, documents, self.problems)
        workflow = WorkflowChecker(entity, self.problems).build(pack.workflow_documents.get(name))
        return replace(entity, workflow=workflow)

    def _check_computed(self, entity: EntityDef, documents: Mapping[str, SourceDocument]) -> None:
        """Computed expressions read fields of the record (or the names every expression
        has), and computed fields do not read each other in a circle."""
        failed = self.problems.failed_fields.get(entity.qualified_name, set())
        scope = {*entity.fields, *SYSTEM_FIELDS, *SCOPE_NAMES, *failed}
        computed = {f.name: f for f in entity.fields.values() if f.computed}
        reads: dict[str, set[str]] = {}
        for name, field_def in computed.items():
            document = documents.get(field_def.origin)
            if document is None:
                continue
            names = expression_names(field_def.computed or "")
            messages = [
                f"unknown name '{unknown}' in expression{did_you_mean(unknown, scope)}"
                for unknown in sorted(names - scope)
            ]
            for message in messages + calendar_problems(field_def.computed or ""):
                self.problems.at(document, ("fields", name, "computed"), message)
            reads[name] = names & computed.keys()
        for name, field_def in entity.fields.items():
            document = documents.get(field_def.origin)
            if document is None or not field_def.default_is_expression:
                continue
            problem = template_problem(str(field_def.default), scope)
            if problem:
                self.problems.at(document, ("fields", name, "default"), problem)
        for cycle in _cycles(reads):
            field_def = computed[cycle[0]]
            self.problems.at(
                documents[field_def.origin],
                ("fields", cycle[0], "computed"),
                f"computed fields read each other in a circle: {' -> '.join([*cycle, cycle[0]])}",
            )

    def check_title(self, document: SourceDocument, title: str | None, declared: set[str]) -> None:
        if title is not None and title not in declared:
            hint = did_you_mean(title, declared)
            self.problems.at(document, ("title",), f"title '{title}' is not a field{hint}")

    def field_groups(
        self,
        document: SourceDocument,
        key: str,
        fields: Mapping[str, FieldDef],
        declared: set[str],
    ) -> tuple[tuple[str, ...], ...]:
        """The ``indexes`` or ``unique`` groups of ``document``, checked against the fields."""
        result = []
        for group_index, group in enumerate(document.data.get(key, [])):
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

    def check_renames(
        self,
        fields: Iterable[FieldDef],
        scopes: Mapping[str, tuple[SourceDocument, set[str]]],
    ) -> None:
        """``renamed_from`` must name a field that no longer exists, claimed by one field.

        ``scopes`` maps each field's ``origin`` to its document (to point at the key) and to
        the field names that file can see: a pack's fields never see a customization's.
        """
        claimed: dict[str, str] = {}
        for field_def in fields:
            old = field_def.renamed_from
            if old is None:
                continue
            document, existing = scopes[field_def.origin]
            where = ("fields", field_def.name, "renamed_from")
            if old in existing:
                self.problems.at(
                    document, where, f"renamed_from '{old}' names a field that still exists"
                )
            elif old in claimed:
                self.problems.at(
                    document,
                    where,
                    f"renamed_from '{old}' is already claimed by field '{claimed[old]}'",
                )
            else:
                claimed[old] = field_def.name

    def resolve_entity(
        self,
        pack: PackSource,
        target: str,
        document: SourceDocument,
        where: tuple[PathItem, ...],
        *,
        any_pack: bool = False,
    ) -> str | None:
        """The qualified name of ``target`` as written in ``pack``, or None (reported).

        ``any_pack`` allows entities of every enabled pack, not only of the pack's
        dependencies: customizations belong to the instance, which enables them all.
        """
        qualified = target if "." in target else f"{pack.name}.{target}"
        target_pack = qualified.split(".", 1)[0]
        if qualified not in self.known_entities and not self.problems.has_failed(qualified):
            candidates = [
                e.split(".", 1)[1] if e.startswith(pack.name + ".") else e
                for e in self.known_entities
            ]
            hint = did_you_mean(target, candidates)
            self.problems.at(document, where, f"unknown entity '{target}'{hint}")
            return None
        if not any_pack and target_pack not in self.closure.get(pack.name, {pack.name}):
            self.problems.at(
                document,
                where,
                f"entity '{qualified}' belongs to pack '{target_pack}', which pack "
                f"'{pack.name}' does not depend on; add it to depends in module.yaml",
            )
            return None
        return qualified
