"""An entity's views (``views/<entity>.yaml``): list columns and sort, kanban grouping and
cards, checked against the entity's fields when the project loads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metadata._errors import did_you_mean
from metadata._fieldkeys import TYPE_TRAITS
from metadata._model import SYSTEM_FIELDS, FieldType, ViewDef

if TYPE_CHECKING:
    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef
    from metadata._yaml import SourceDocument


class ViewChecker:
    def __init__(self, entity: EntityDef, problems: ProblemCollector) -> None:
        self.entity = entity
        self.problems = problems
        self.names = [*entity.fields, *SYSTEM_FIELDS]

    def build(self, document: SourceDocument | None) -> ViewDef:
        if document is None:
            return ViewDef()
        data: dict[str, Any] = document.data
        listing = data.get("list") or {}
        kanban = data.get("kanban") or {}
        columns = self._columns(document, ("list", "columns"), listing.get("columns", []))
        sort = listing.get("sort")
        if sort is not None and not self._sort_ok(document, sort):
            sort = None
        group_by = kanban.get("group_by")
        if group_by is not None:
            field = self.entity.fields.get(group_by)
            if field is None and self.problems.has_failed(self.entity.qualified_name, group_by):
                group_by = None
            elif field is None or field.type is not FieldType.ENUM:
                self._error(
                    document,
                    ("kanban", "group_by"),
                    f"a board groups by an enum field; '{group_by}' is not one of "
                    f"{self.entity.qualified_name}'s enum fields",
                )
                group_by = None
        card = self._columns(document, ("kanban", "card"), kanban.get("card", []))
        return ViewDef(tuple(columns), sort, group_by, tuple(card))

    def _columns(
        self, document: SourceDocument, where: tuple[PathItem, ...], names: list[str]
    ) -> list[str]:
        kept = []
        for index, name in enumerate(names):
            field = self.entity.fields.get(name)
            if field is None and name not in SYSTEM_FIELDS:
                hint = did_you_mean(name, self.names)
                message = f"{self.entity.qualified_name} has no field '{name}'{hint}"
                self.problems.unknown(
                    document,
                    (*where, index),
                    message,
                    entity=self.entity.qualified_name,
                    field_name=name,
                )
            elif field is not None and not TYPE_TRAITS[field.type].scalar:
                message = f"'{name}' is a {field.type.value} field: it has no list column"
                self._error(document, (*where, index), message)
            elif name in kept:
                self._error(document, (*where, index), f"'{name}' is listed twice")
            else:
                kept.append(name)
        return kept

    def _sort_ok(self, document: SourceDocument, sort: str) -> bool:
        for item in sort.split(","):
            name = item.strip().removeprefix("-")
            if name not in self.names:
                hint = did_you_mean(name, self.names)
                message = (
                    f"cannot sort by '{name}': {self.entity.qualified_name} has no such field{hint}"
                )
                self.problems.unknown(
                    document,
                    ("list", "sort"),
                    message,
                    entity=self.entity.qualified_name,
                    field_name=name,
                )
                return False
        return True

    def _error(self, document: SourceDocument, where: tuple[PathItem, ...], message: str) -> None:
        self.problems.at(document, where, message)
