"""Checks of the expressions an entity's fields compute with, once the entity is whole
(its customizations applied): a ``computed`` expression reads fields of the record or the
names every expression has, a ``{{ ... }}`` default is a valid template, and computed
fields do not read each other in a circle. Each problem is reported at the key that
causes it, in the file that gave the field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metadata._errors import did_you_mean
from metadata._expressions import (
    SCOPE_NAMES,
    calendar_problems,
    expression_names,
    template_problem,
)
from metadata._model import SYSTEM_FIELDS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata._errors import ProblemCollector
    from metadata._model import EntityDef
    from metadata._yaml import SourceDocument


def check_computed(
    entity: EntityDef, documents: Mapping[str, SourceDocument], problems: ProblemCollector
) -> None:
    """Computed expressions read fields of the record (or the names every expression
    has), and computed fields do not read each other in a circle. ``documents``: the files
    that gave ``entity`` its fields, by display name (a field's ``origin``)."""
    failed = problems.failed_fields.get(entity.qualified_name, set())
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
            problems.at(document, ("fields", name, "computed"), message)
        reads[name] = names & computed.keys()
    for name, field_def in entity.fields.items():
        document = documents.get(field_def.origin)
        if document is None or not field_def.default_is_expression:
            continue
        problem = template_problem(str(field_def.default), scope)
        if problem:
            problems.at(document, ("fields", name, "default"), problem)
    for cycle in _cycles(reads):
        field_def = computed[cycle[0]]
        problems.at(
            documents[field_def.origin],
            ("fields", cycle[0], "computed"),
            f"computed fields read each other in a circle: {' -> '.join([*cycle, cycle[0]])}",
        )


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
