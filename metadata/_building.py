"""What the checkers of one kind of definition (fields, customizations) see of the project
being built: the sources of a pack, and the builder's shared checks and bookkeeping as a
protocol. The checkers name these instead of the builder, so the builder imports them without
an import cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from metadata._assignments import PendingAssign
    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import FieldDef
    from metadata._rules import PendingAction, PendingRole
    from metadata._yaml import SourceDocument


@dataclass
class PackSource:
    name: str
    path: Path
    document: SourceDocument
    entity_documents: dict[str, SourceDocument] = field(default_factory=dict)
    entity_names: set[str] = field(default_factory=set)
    """Every entity file name seen, including files that failed to load."""
    rule_documents: dict[str, SourceDocument] = field(default_factory=dict)
    form_documents: dict[str, SourceDocument] = field(default_factory=dict)
    view_documents: dict[str, SourceDocument] = field(default_factory=dict)
    dashboard_documents: dict[str, SourceDocument] = field(default_factory=dict)
    workflow_documents: dict[str, SourceDocument] = field(default_factory=dict)
    roles_document: SourceDocument | None = None


class Builder(Protocol):
    """The project builder (``metadata._project_builder.ProjectBuilder``) as the checkers use it."""

    problems: ProblemCollector
    child_owner: dict[str, str]
    """Line-item entity → the ``pack.entity.field`` that owns it."""
    pending_actions: list[PendingAction]
    pending_roles: list[PendingRole]
    pending_assigns: list[PendingAssign]

    def resolve_entity(
        self,
        pack: PackSource,
        target: str,
        document: SourceDocument,
        where: tuple[PathItem, ...],
        *,
        any_pack: bool = False,
    ) -> str | None: ...

    def check_title(
        self, document: SourceDocument, title: str | None, declared: set[str]
    ) -> None: ...

    def field_groups(
        self,
        document: SourceDocument,
        key: str,
        fields: Mapping[str, FieldDef],
        declared: set[str],
    ) -> tuple[tuple[str, ...], ...]: ...

    def check_renames(
        self,
        fields: Iterable[FieldDef],
        scopes: Mapping[str, tuple[SourceDocument, set[str]]],
    ) -> None: ...

    def check_document_events(
        self, document: SourceDocument, entity: str, rules: Any, at: tuple[str, ...] = ()
    ) -> None: ...
