"""The second pass of loading (``metadata._loader``): every entity normalised from its
file, its rules, form, view and workflow checked, the customizations of other packs
(``overlays/``) and of the instance merged in, then the checks across entities
(references, line items, rollups, lookups, record actions, postings, roles, dashboards).
Checkers of one kind of definition see the builder through ``metadata._building.Builder``;
the checks of rule actions that write records are its mixin ``ActionChecks``."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from metadata._action_checks import ActionChecks
from metadata._assignments import PendingAssign, check_assignments
from metadata._autonumbers import check_autonumbers
from metadata._computed import check_computed
from metadata._dashboards import DashboardChecker
from metadata._errors import did_you_mean
from metadata._fields import FieldChecker
from metadata._forms import FormChecker
from metadata._lookups import check_lookups
from metadata._model import (
    ADMIN_ROLE,
    AMENDED_FROM,
    DOCSTATUS,
    DOCSTATUSES,
    DOCUMENT_FIELDS,
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
from metadata._money import check_currencies, check_parent_currencies
from metadata._names import default_label
from metadata._overlays import Customizer
from metadata._packs import dependency_closure
from metadata._postings import PostingParts, check_postings
from metadata._roles import RolesBuilder
from metadata._rollups import check_rollups
from metadata._rules import PendingAction, PendingRole, RuleChecker, check_line_rules
from metadata._views import ViewChecker
from metadata._workflows import WorkflowChecker

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from metadata._building import PackSource
    from metadata._errors import PathItem, ProblemCollector
    from metadata._overlays import OverlaySource
    from metadata._yaml import SourceDocument


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
        self.closure = dependency_closure(packs)
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
        check_parent_currencies(
            entities, [*sources.values(), *(d for _, d, _ in overlaid)], self.problems
        )
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
        check_computed(entity, documents, self.problems)
        check_autonumbers(entity, documents, self.problems)
        check_currencies(entity, documents, self.problems)
        workflow = WorkflowChecker(entity, self.problems).build(pack.workflow_documents.get(name))
        return replace(entity, workflow=workflow)

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
