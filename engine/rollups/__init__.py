"""Rollups (``rollups:`` of an entity, docs/rollups.md): stored fields of referenced records
kept, in each write's transaction, by the writes of the records that point at them.

``compile_rollups`` runs once per ``EngineModel``: it groups the rollups (source, via,
target), compiles their statements (``_group``) and gives a ``Keeper`` to each store whose
writes can change one (``_keep``); the pipeline calls ``store.rollups.after_write`` after
each create, update, delete, submit and cancel, which moves the kept values by the write's
delta (``_delta``) or, when it cannot prove one, recomputes them. ``drift``
(``recompute``) compares every kept value with its source records, for ``tessera
recompute`` and tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.rollups._computed import Recomputer, reading
from engine.rollups._group import Change, RollupDefinitionError, RollupGroup
from engine.rollups._keep import Keeper, RollupPlan
from engine.rollups.recompute import Drift, drift
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Dialect

    from engine.rollups._computed import ComputingStore
    from engine.store import RecordStore
    from metadata import ProjectDef
    from metadata._rollup_model import RollupDef

__all__ = [
    "Change",
    "Drift",
    "Keeper",
    "RollupDefinitionError",
    "RollupGroup",
    "RollupPlan",
    "compile_rollups",
    "drift",
]


def compile_rollups(
    project: ProjectDef,
    stores_for: Callable[[str], ComputingStore],
    *,
    dialect: Dialect,
    dialect_name: str,
) -> tuple[RollupPlan, dict[str, Keeper]]:
    """The project's rollup plan, and the keeper of each store whose writes change a
    rollup, by qualified entity name (a line source's parent included)."""

    def records_for(name: str) -> RecordStore:
        return stores_for(name).records

    groups: list[RollupGroup] = []
    by_source: dict[str, list[RollupGroup]] = {}
    for entity in project.entities.values():
        shared: dict[tuple[str, str], list[RollupDef]] = {}
        for rollup in entity.rollups:
            shared.setdefault((rollup.via, rollup.target), []).append(rollup)
        parent = records_for(entity.parent) if entity.parent else None
        for (_, target), rollups in shared.items():
            group = RollupGroup(
                rollups,
                records_for(entity.qualified_name),
                records_for(target),
                parent,
                dialect=dialect,
                dialect_name=dialect_name,
            )
            if reading(stores_for(target), group.fields):
                group.recomputer = Recomputer(stores_for(target))
            groups.append(group)
            by_source.setdefault(entity.qualified_name, []).append(group)
    plan = RollupPlan(groups)
    keepers: dict[str, Keeper] = {}
    writers = set(by_source) | {
        project.entity(s).parent or "" for s in by_source if project.entity(s).parent
    }
    for name in sorted(writers - {""}):
        entity = project.entity(name)
        lines = {
            field.name: by_source.get(field.entity or "", [])
            for field in entity.fields.values()
            if field.type is FieldType.CHILDREN
        }
        keepers[name] = Keeper(plan, records_for(name), by_source.get(name, []), lines)
    return plan, keepers
