"""Dashboards (``dashboards/<name>.yaml`` in a pack): tiles checked against the entities
they read when the project loads, so a dashboard never fails when it is opened."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metadata._aggregates import (
    DATE_BUCKETS,
    DATES,
    FILTER_OPERATORS,
    MEASURE_FUNCTIONS,
    UNGROUPABLE,
    measurable,
)
from metadata._documents import load_folder_documents
from metadata._errors import did_you_mean
from metadata._model import DashboardDef, FieldType, TileDef, TileKind
from metadata._names import default_label

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef
    from metadata._yaml import SourceDocument

_SYSTEM_DATES = {"created_at": FieldType.DATETIME, "updated_at": FieldType.DATETIME}


def load_dashboard_documents(
    pack_path: Path, problems: ProblemCollector
) -> dict[str, SourceDocument]:
    return load_folder_documents(pack_path, "dashboards", "dashboard", problems)


class DashboardChecker:
    def __init__(
        self, pack: str, entities: Mapping[str, EntityDef], problems: ProblemCollector
    ) -> None:
        self.pack = pack
        self.entities = entities
        self.problems = problems

    def build(self, name: str, document: SourceDocument) -> DashboardDef | None:
        data: dict[str, Any] = document.data
        tiles = []
        ok = True
        for index, raw in enumerate(data["tiles"]):
            # None: the tile broke the schema (reported, left out)
            tile = None if raw is None else self._tile(document, ("tiles", index), raw)
            if tile is None:
                ok = False
            else:
                tiles.append(tile)
        if not ok:
            return None
        return DashboardDef(
            pack=self.pack,
            name=name,
            label=data.get("label") or default_label(name),
            tiles=tuple(tiles),
            description=data.get("description"),
        )

    def aggregated_entity(
        self, document: SourceDocument, where: tuple[PathItem, ...], name: str
    ) -> EntityDef | None:
        """The entity a tile or a report section aggregates, ``name`` as written in the
        pack; None, reported at ``where``, when no such entity is enabled or it is a line
        item (lines are read through their document)."""
        target = name if "." in name else f"{self.pack}.{name}"
        entity = self.entities.get(target)
        if entity is not None and not entity.is_child:
            return entity
        hint = did_you_mean(target, [n for n, e in self.entities.items() if not e.is_child])
        message = f"no entity '{target}' is enabled{hint}"
        if entity is None:
            self.problems.unknown(document, where, message, entity=target)
        else:
            self.problems.at(document, where, message)
        return None

    def _tile(
        self, document: SourceDocument, where: tuple[PathItem, ...], raw: dict[str, Any]
    ) -> TileDef | None:
        entity = self.aggregated_entity(document, (*where, "entity"), raw["entity"])
        if entity is None:
            return None
        target = entity.qualified_name
        kind = TileKind(raw["type"])
        errors = []
        measure = raw.get("measure", "count")
        errors += [("measure", m) for m in self._measure_problems(entity, measure)]
        group_by = raw.get("group_by")
        if kind is TileKind.NUMBER and group_by is not None:
            errors.append(("group_by", "a number tile has no groups: drop group_by or use a bar"))
        elif kind is not TileKind.NUMBER:
            if group_by is None:
                errors.append(("type", f"a {kind.value} tile needs group_by"))
            else:
                errors += [("group_by", m) for m in self._group_problems(entity, group_by)]
        columns = raw.get("columns")
        errors += self._columns_problems(entity, kind, columns, group_by)
        pairs = []
        for key, value in (raw.get("filter") or {}).items():
            problem = self._filter_problem(entity, str(key))
            if problem:
                errors.append(("filter", problem))
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            pairs.append((str(key), text))
        for key, message in errors:
            self.problems.at(document, (*where, key), message)
        if errors:
            return None
        return TileDef(
            label=raw["label"],
            entity=target,
            kind=kind,
            measure=measure,
            group_by=group_by,
            filter=tuple(pairs),
            limit=int(raw.get("limit", 12)),
            columns=columns,
        )

    def _columns_problems(
        self, entity: EntityDef, kind: TileKind, columns: str | None, group_by: str | None
    ) -> list[tuple[str, str]]:
        """A table tile's ``columns``: a second grouping, other than its rows'."""
        if columns is not None and kind is not TileKind.TABLE:
            return [("columns", f"only a table tile has columns, not a {kind.value} tile")]
        if kind is not TileKind.TABLE:
            return []
        if columns is None:
            return [("type", "a table tile needs columns (and group_by, its rows)")]
        if columns == group_by:
            return [("columns", "the columns must be another grouping than the rows")]
        return [("columns", m) for m in self._group_problems(entity, columns)]

    def _type(self, entity: EntityDef, name: str) -> FieldType | None:
        field = entity.fields.get(name)
        if field is not None:
            return field.type
        return _SYSTEM_DATES.get(name)

    def _measure_problems(self, entity: EntityDef, measure: str) -> list[str]:
        if measure == "count":
            return []
        name, _, function = measure.rpartition("__")
        if function not in MEASURE_FUNCTIONS or not name:
            functions = ", ".join(MEASURE_FUNCTIONS)
            return [f"'{measure}' is not a measure: count, or FIELD__FUNCTION ({functions})"]
        kind = self._type(entity, name)
        if kind is None:
            return self._no_field(entity, name)
        if kind not in measurable(function):
            return [f"cannot take {function} of '{name}', of type {kind.value}"]
        return []

    def _group_problems(self, entity: EntityDef, group_by: str) -> list[str]:
        name, _, bucket = group_by.partition("__")
        kind = self._type(entity, name)
        if kind is None:
            return self._no_field(entity, name)
        if kind in UNGROUPABLE:
            return [f"cannot group by '{name}', of type {kind.value}"]
        if bucket and (bucket not in DATE_BUCKETS or kind not in DATES):
            buckets = ", ".join(DATE_BUCKETS)
            return [f"'{group_by}': only date and datetime fields have buckets ({buckets})"]
        return []

    def _filter_problem(self, entity: EntityDef, key: str) -> str | None:
        parts = key.split("__")
        if self._type(entity, parts[0]) is None and parts[0] not in {
            "created_by",
            "updated_by",
            "id",
        }:
            return next(iter(self._no_field(entity, parts[0])), None)
        if (
            len(parts) > 1
            and parts[-1] not in FILTER_OPERATORS
            and entity.fields.get(parts[0]) is not None
        ):
            field = entity.fields[parts[0]]
            if field.type is not FieldType.REFERENCE:
                return f"unknown filter operator '{parts[-1]}' in '{key}'"
        return None

    def _no_field(self, entity: EntityDef, name: str) -> list[str]:
        """The problem of naming ``name``, which ``entity`` lacks; none when it is a field
        that failed to load (that is reported at the field)."""
        if self.problems.has_failed(entity.qualified_name, name):
            return []
        hint = did_you_mean(name, entity.fields)
        return [f"{entity.qualified_name} has no field '{name}'{hint}"]
