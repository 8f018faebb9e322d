"""Advice on definitions that load but will be slow: things ``tessera validate`` points out
without refusing them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metadata._model import AllOf, CompareOp, FieldComparison, Permission, UserValue

if TYPE_CHECKING:
    from collections.abc import Iterator

    from metadata._model import EntityDef, ProjectDef, RecordFilter


def access_index_advice(project: ProjectDef) -> list[str]:
    """Grants whose ``where`` keeps a user to their own records (``field == user.id``) on a
    field no index starts with: every list of such a user reads past everyone else's
    records, so an index led by that field is what makes their lists as fast as an
    admin's."""
    advice = []
    for role in project.roles.values():
        for grant in role.grants:
            entity = project.entities.get(grant.entity)
            if entity is None or grant.where_filter is None:
                continue
            if Permission.READ not in grant.permissions:
                continue
            for name in dict.fromkeys(_owner_fields(grant.where_filter)):
                if _leads_an_index(entity, name):
                    continue
                advice.append(
                    f"{grant.origin}: role '{role.name}' reads {grant.entity} where "
                    f"{grant.where}, and no index starts with '{name}': that role's lists read "
                    f"past every other user's records; add to {grant.entity} "
                    f"indexes: [[{name}, <the field its lists sort by>]]"
                )
    return advice


def _owner_fields(where: RecordFilter) -> Iterator[str]:
    """Fields the filter requires to equal a property of the user (at its top level)."""
    if isinstance(where, FieldComparison):
        if where.op == CompareOp.EQ and isinstance(where.value, UserValue):
            yield where.field
    elif isinstance(where, AllOf):
        for part in where.parts:
            yield from _owner_fields(part)


def _leads_an_index(entity: EntityDef, name: str) -> bool:
    field = entity.fields.get(name)
    if field is not None and (field.index or field.unique):
        return True
    return any(group[:1] == (name,) for group in (*entity.indexes, *entity.unique))
