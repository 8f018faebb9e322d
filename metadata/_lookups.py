"""Lookups: a field whose value, when a write leaves it empty, is read from another entity's
record (an invoice's exchange rate from the rate table, a line's rate from a price list)::

    # finance/entities/sales_invoice.yaml (fields)
    exchange_rate:
      type: decimal
      scale: 6
      default: 1
      lookup:
        entity: currency_rate                 # this pack's, or pack.entity of a dependency
        field: rate                           # the value taken
        where: {from_currency: currency, to_currency: company_currency}
        latest: {by: date, on_or_before: posting_date}
        when: "currency != company_currency"  # else the default (1)
        code: no_exchange_rate                # 422 at the field when nothing matches

Read in two passes: ``read_lookup`` with the field (the entity named, the expressions
parsed), ``check_lookups`` once every entity is built (the fields exist and fit, the
expressions read names in scope — ``parent`` on a line entity —, ``latest.by`` is a date).
The engine (``engine/lookups.py``) compiles each into one SELECT. See docs/definitions.md.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from metadata._errors import did_you_mean
from metadata._expressions import SCOPE_NAMES, expression_names, expression_syntax_error
from metadata._fieldkeys import TEXTUAL_TYPES
from metadata._lookup_model import (
    DEFAULT_LOOKUP_CODE,
    LINE_PARENT_KEY,
    LOOKUP_PARENT,
    LookupDef,
)
from metadata._model import SYSTEM_FIELDS, FieldType, frozen_mapping

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef, FieldDef
    from metadata._yaml import SourceDocument

_NOT_LOOKED_UP = frozenset(
    {FieldType.CHILDREN, FieldType.JSON, FieldType.AUTONUMBER, FieldType.FILE}
)
_DATES = frozenset({FieldType.DATE, FieldType.DATETIME})
_NUMBERS = frozenset({FieldType.INTEGER, FieldType.DECIMAL})


class _FieldBeingRead(Protocol):
    """What ``read_lookup`` needs of the field checker (``metadata._fields.FieldChecker``)."""

    raw: dict[str, Any]
    builder: Any
    pack: Any
    document: SourceDocument
    path: tuple[PathItem, ...]
    customization: bool
    ok: bool

    def error(self, message: str, key: str | None = None, *, at_key: bool = False) -> None: ...


def read_lookup(checker: _FieldBeingRead) -> LookupDef | None:
    """The ``lookup`` of the field ``checker`` builds (its shape checked by the schema), its
    entity resolved and its expressions parsed; None, reported, when it cannot be one."""
    raw: dict[str, Any] = checker.raw["lookup"]
    if checker.raw.get("computed"):
        checker.error("a computed field cannot have a lookup: it is always computed", "lookup")
        return None
    entity = checker.builder.resolve_entity(
        checker.pack,
        str(raw["entity"]),
        checker.document,
        (*checker.path, "lookup", "entity"),
        any_pack=checker.customization,
    )
    where = tuple((str(key), _source(value)) for key, value in (raw.get("where") or {}).items())
    latest = raw.get("latest") or {}
    lookup = LookupDef(
        entity=entity or "",
        field=str(raw["field"]),
        where=where,
        latest_by=latest.get("by"),
        on_or_before=latest.get("on_or_before"),
        when=raw.get("when"),
        code=raw.get("code", DEFAULT_LOOKUP_CODE),
        message=raw.get("message"),
    )
    if not where and lookup.latest_by is None:
        checker.error("a lookup needs 'where', 'latest' or both: which record to read", "lookup")
    for path, source in _expressions(lookup):
        problem = expression_syntax_error(source)
        if problem:
            checker.builder.problems.at(checker.document, (*checker.path, "lookup", *path), problem)
            checker.ok = False
    return lookup if entity is not None else None


def _source(value: Any) -> str:
    """A ``where`` value: an expression; a YAML number or boolean is the same constant."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _expressions(lookup: LookupDef) -> list[tuple[tuple[PathItem, ...], str]]:
    """Each expression of ``lookup`` with its path under the ``lookup`` key."""
    found: list[tuple[tuple[PathItem, ...], str]] = [
        (("where", key), source) for key, source in lookup.where
    ]
    if lookup.on_or_before is not None:
        found.append((("latest", "on_or_before"), lookup.on_or_before))
    if lookup.when is not None:
        found.append((("when",), lookup.when))
    return found


def check_lookups(
    entities: Mapping[str, EntityDef],
    documents: Iterable[SourceDocument],
    problems: ProblemCollector,
) -> dict[str, EntityDef]:
    """``entities`` with every lookup checked against the entity it reads (problems at their
    keys, found in ``documents`` by the field's origin) and, for each, an index on the columns
    it selects by added to that entity, unless one already starts with them."""
    by_origin = {document.display_name: document for document in documents}
    checked = dict(entities)
    indexes: dict[str, list[tuple[str, ...]]] = {}
    for entity in entities.values():
        for field_def in entity.fields.values():
            lookup = field_def.lookup
            document = by_origin.get(field_def.origin)
            if lookup is None or document is None:
                continue
            target = entities.get(lookup.entity)
            if target is None:
                continue
            checker = _Checker(entity, field_def, target, document, problems, entities)
            if not checker.check(lookup):
                fields = dict(checked[entity.qualified_name].fields)
                fields[field_def.name] = replace(field_def, lookup=None)
                checked[entity.qualified_name] = replace(
                    checked[entity.qualified_name], fields=frozen_mapping(fields)
                )
            elif not lookup.selects_by_parent:
                # a lookup by a line's parent reads the few lines of one record, through
                # the parent column's own index
                columns = tuple(key for key, _ in lookup.where)
                if lookup.latest_by is not None:
                    columns += (lookup.latest_by,)
                indexes.setdefault(target.qualified_name, []).append(columns)
    for name, wanted in indexes.items():
        checked[name] = _with_indexes(checked[name], wanted)
    return checked


def _with_indexes(entity: EntityDef, wanted: list[tuple[str, ...]]) -> EntityDef:
    groups = list(entity.indexes)
    covered = [*entity.indexes, *entity.unique]
    for columns in wanted:
        if not any(group[: len(columns)] == columns for group in covered):
            groups.append(columns)
            covered.append(columns)
    return replace(entity, indexes=tuple(groups))


class _Checker:
    """The checks of one field's lookup; every problem reported at its key."""

    def __init__(
        self,
        entity: EntityDef,
        field_def: FieldDef,
        target: EntityDef,
        document: SourceDocument,
        problems: ProblemCollector,
        entities: Mapping[str, EntityDef],
    ) -> None:
        self.entity = entity
        self.field = field_def
        self.target = target
        self.document = document
        self.problems = problems
        self.parent = entities.get(entity.parent) if entity.parent else None
        self.ok = True

    def problem(self, path: tuple[PathItem, ...], message: str, *, key: bool = False) -> None:
        self.problems.at(
            self.document, ("fields", self.field.name, "lookup", *path), message, key=key
        )
        self.ok = False

    def check(self, lookup: LookupDef) -> bool:
        self._taken(lookup.field)
        for key, _ in lookup.where:
            self._where_field(key)
        if lookup.latest_by is not None:
            self._latest_by(lookup.latest_by)
        scope = {*self.entity.fields, *SYSTEM_FIELDS, *SCOPE_NAMES}
        scope |= self.problems.failed_fields.get(self.entity.qualified_name, set())
        if self.parent is not None:
            scope.add(LOOKUP_PARENT)
        for path, source in _expressions(lookup):
            if expression_syntax_error(source) is None:  # reported with the field
                self._names(path, source, scope)
        return self.ok

    def _target_field(self, name: str, path: tuple[PathItem, ...], *, key: bool) -> FieldDef | None:
        found = self.target.fields.get(name)
        if found is None and name != "id":
            hint = did_you_mean(name, self.target.fields)
            self.problem(
                path, f"'{name}' is not a field of {self.target.qualified_name}{hint}", key=key
            )
        return found

    def _taken(self, name: str) -> None:
        source = self._target_field(name, ("field",), key=False)
        if name == "id" and self.field.to != self.target.qualified_name:
            self.problem(
                ("field",),
                f"the id of a {self.target.qualified_name} record fits only a reference to "
                f"{self.target.qualified_name}",
            )
        if source is None:
            return
        if source.type in _NOT_LOOKED_UP or self.field.type in _NOT_LOOKED_UP:
            self.problem(("field",), f"a lookup cannot take a {source.type} field's value")
        elif not _fits(self.field, source):
            self.problem(
                ("field",),
                f"field '{name}' of {self.target.qualified_name} is {_kind(source)}: it does "
                f"not fit {self.entity.qualified_name}.{self.field.name}, {_kind(self.field)}",
            )

    def _where_field(self, name: str) -> None:
        if name == LINE_PARENT_KEY:
            if self.target.parent is None:
                self.problem(
                    ("where", name),
                    f"'{LINE_PARENT_KEY}' selects the lines of a record: "
                    f"{self.target.qualified_name} is not a line item entity",
                    key=True,
                )
            return
        found = self._target_field(name, ("where", name), key=True)
        if found is not None and found.type in _NOT_LOOKED_UP:
            self.problem(
                ("where", name), f"a lookup cannot select by a {found.type} field", key=True
            )

    def _latest_by(self, name: str) -> None:
        found = self._target_field(name, ("latest", "by"), key=False)
        if found is not None and found.type not in _DATES:
            self.problem(
                ("latest", "by"),
                f"'{name}' is {_kind(found)} field of {self.target.qualified_name}; 'latest' "
                "needs a date or datetime field",
            )

    def _names(self, path: tuple[PathItem, ...], source: str, scope: set[str]) -> None:
        for unknown in sorted(expression_names(source) - scope):
            hint = did_you_mean(unknown, scope)
            if unknown == LOOKUP_PARENT:
                hint = "; 'parent' is in scope only in the lookups of a line item entity"
            self.problem(path, f"unknown name '{unknown}' in expression{hint}")
        if self.parent is None or LOOKUP_PARENT not in expression_names(source):
            return
        parent_scope = {*self.parent.fields, *SYSTEM_FIELDS}
        for name in sorted(parent_fields(source) - parent_scope):
            hint = did_you_mean(name, parent_scope)
            self.problem(
                path, f"'{name}' is not a field of {self.parent.qualified_name} (parent){hint}"
            )


def _kind(field_def: FieldDef) -> str:
    """``a decimal``, ``an integer``, ``a reference to crm.account``."""
    article = "an" if field_def.type.value[0] in "aeiou" else "a"
    to = f" to {field_def.to}" if field_def.to else ""
    return f"{article} {field_def.type.value}{to}"


def _fits(field_def: FieldDef, source: FieldDef) -> bool:
    """Whether a value of ``source`` can be stored in ``field_def``."""
    if field_def.type is FieldType.REFERENCE:
        return source.type is FieldType.REFERENCE and source.to == field_def.to
    if field_def.type is FieldType.DECIMAL:
        return source.type in _NUMBERS
    if field_def.type in TEXTUAL_TYPES:
        return source.type in TEXTUAL_TYPES
    return field_def.type is source.type


def parent_fields(source: str) -> set[str]:
    """The fields of the parent an expression reads (``account`` in
    ``parent.account.price_list``)."""
    tree = ImmutableSandboxedEnvironment().parse("{{ (" + source + ") }}")
    return {
        node.attr
        for node in tree.find_all(nodes.Getattr)
        if isinstance(node.node, nodes.Name) and node.node.name == LOOKUP_PARENT
    }
