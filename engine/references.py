"""Reference traversal in expressions (SPEC §3.2): ``account.name`` reads a field of the
record a reference points at.

Which references an entity's expressions traverse is found once, from their syntax trees.
Only those are loaded, and in batches: every write has a cache of target records (on its
``WriteContext``), filled with one query per target entity for all the records of a bulk
request or an import batch, so a list of writes costs one lookup, not one per record.
Traversal goes one level deep (``account.name``; ``account.parent`` is the parent's id).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from metadata import EntityDef

ReferenceCache = dict[tuple[str, str], "Mapping[str, Any] | None"]
"""Target records by (qualified entity name, id); None for an id with no record."""


class ComparesAsId:
    """Something an expression compares, hashes and prints as its id (text), the way
    reference columns and ``created_by`` hold it: a referenced record, the acting user."""

    __slots__ = ("id",)

    def __init__(self, record_id: str) -> None:
        self.id = record_id

    def __eq__(self, other: object) -> bool:
        other_id = other.id if isinstance(other, ComparesAsId) else other
        return other_id is not None and str(other_id) == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __str__(self) -> str:
        return self.id


class RecordRef(ComparesAsId):
    """A reference as an expression sees it: the target's id (it compares, prints and
    converts as the id) whose attributes are the target record's fields."""

    __slots__ = ("_fields",)

    def __init__(self, record_id: str, fields: Mapping[str, Any] | None) -> None:
        super().__init__(record_id)
        self._fields = fields or {}

    def __getattr__(self, name: str) -> Any:
        fields = object.__getattribute__(self, "_fields")
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def __getitem__(self, name: str) -> Any:
        return self._fields[name]

    def __repr__(self) -> str:
        return f"RecordRef({self.id!r})"

    def __bool__(self) -> bool:
        return True


def traversed_references(entity: EntityDef, sources: Iterable[str]) -> dict[str, str]:
    """The reference fields of ``entity`` that ``sources`` (expressions and templates) read
    attributes of, with their target entities."""
    references = {name: field.to for name, field in entity.fields.items() if field.to is not None}
    if not references:
        return {}
    environment = ImmutableSandboxedEnvironment()
    found: dict[str, str] = {}
    for source in sources:
        tree = environment.parse(source if "{{" in source else "{{ (" + source + ") }}")
        for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
            target = node.node  # type: ignore[attr-defined]
            if isinstance(target, nodes.Getattr | nodes.Getitem) and _is_old(target.node):
                name = target.attr if isinstance(target, nodes.Getattr) else None
            elif isinstance(target, nodes.Name):
                name = target.name
            else:
                continue
            if name in references:
                found[name] = references[name]
    return found


def _is_old(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "old"


def expression_sources(entity: EntityDef) -> list[str]:
    """Every expression and template of an entity's definition."""
    sources: list[str] = []
    for rule in entity.rules:
        sources += [s for s in (rule.when, rule.assertion) if s]
        for action in rule.actions:
            sources += action.templates()
            if action.when:
                sources.append(action.when)
            if action.for_each is not None and "." in action.for_each:
                sources.append(action.for_each)  # <reference>.<children>: load its target
    for field in entity.fields.values():
        sources += [s for s in (field.computed, field.required_if) if s]
        if field.default_is_expression:
            sources.append(str(field.default))
        if field.lookup is not None:
            sources += field.lookup.sources()
    if entity.workflow is not None:
        sources += [t.when for t in entity.workflow.transitions if t.when]
    return sources


def reference_id(value: Any) -> str | None:
    """The id a reference value names, when it is one (not a lookup by a unique field)."""
    if isinstance(value, RecordRef):
        return value.id
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    return None
