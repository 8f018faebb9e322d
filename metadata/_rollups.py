"""Rollups: a stored field of a referenced record kept by the records that point at it.

Declared on the *source* entity (the one whose records are counted), so that the entity
kept needs to know nothing of it — an account's ``lifetime_value`` is declared by the
finance pack's invoices, and contacts does not depend on finance::

    # finance/entities/sales_invoice.yaml
    rollups:
      - to: contacts.account.lifetime_value
        via: account                      # the invoice's reference to the account
        sum: grand_total                  # or count: true, min: <field>, max: <field>
        where: {docstatus: submitted, is_return: false}   # list filter syntax

The checks here run once every entity is built (``check_rollups``, called by the loader):
the target field exists, fits the aggregate and is made read-only (a sum or a count starts
at 0), ``via`` reaches the target, ``where`` reads the source's own columns with known
operators, a field is kept by one rollup only, rollups do not feed each other in a circle,
and a pack keeps fields only of the packs it depends on. The engine
(``engine/rollups``) keeps the values in each write's transaction. See docs/rollups.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from metadata._errors import did_you_mean
from metadata._fieldkeys import TYPE_TRAITS
from metadata._lookups import _with_indexes
from metadata._model import FieldType, frozen_mapping
from metadata._operators import FILTER_OPERATORS, Arity
from metadata._rollup_model import PARENT, RollupDef, RollupFunction

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef, FieldDef
    from metadata._yaml import SourceDocument

_FUNCTIONS = tuple(RollupFunction)
_NUMBERS = frozenset(t for t, traits in TYPE_TRAITS.items() if traits.measure == "number")
_DATES = frozenset(t for t, traits in TYPE_TRAITS.items() if traits.measure == "date")


def check_rollups(
    entities: Mapping[str, EntityDef],
    documents: Mapping[str, SourceDocument],
    closure: Mapping[str, set[str]],
    problems: ProblemCollector,
    overlays: Iterable[tuple[str, SourceDocument, str | None]] = (),
) -> dict[str, EntityDef]:
    """``entities`` with the rollups their files declare, the fields kept made read-only
    (starting at 0 for sums and counts); every problem reported at the rollup's key.
    ``overlays``: the overlays of entities that declare rollups too, each with the pack
    that ships it (whose dependencies the kept fields must belong to; None: the instance's
    customization, which may keep any pack's)."""
    checker = _Checker(entities, closure, problems)
    sources = [(q, d, q.split(".", 1)[0]) for q, d in documents.items()]
    for qualified, document, pack in [*sources, *overlays]:
        raw = document.data.get("rollups") if isinstance(document.data, dict) else None
        if qualified in entities and isinstance(raw, list):
            for index, item in enumerate(raw):
                if isinstance(item, dict):
                    checker.add(entities[qualified], document, index, item, pack)
    return checker.result()


class _Checker:
    def __init__(
        self,
        entities: Mapping[str, EntityDef],
        closure: Mapping[str, set[str]],
        problems: ProblemCollector,
    ) -> None:
        self.entities = entities
        self.closure = closure
        self.problems = problems
        self.found: list[tuple[RollupDef, SourceDocument, int]] = []
        self.kept: dict[str, RollupDef] = {}

    def add(
        self,
        source: EntityDef,
        document: SourceDocument,
        index: int,
        raw: Any,
        pack: str | None = None,
    ) -> None:
        """One rollup of ``source``, declared in ``document`` by ``pack`` (None: by the
        instance, which may keep any pack's fields)."""
        where: tuple[PathItem, ...] = ("rollups", index)
        before = len(self.problems.problems)

        def problem(key: str, message: str) -> None:
            self.problems.at(document, (*where, key), message)

        functions = [name for name in _FUNCTIONS if name in raw]
        if len(functions) != 1:
            problem(
                functions[1] if len(functions) > 1 else "to",
                "a rollup takes exactly one of sum, count, min, max "
                f"(this one has {', '.join(functions) or 'none'})",
            )
            return
        function = RollupFunction(functions[0])
        target = self._target(source, str(raw["to"]), problem, pack)
        if target is None:
            return
        target_entity, field_def = target
        via = str(raw["via"])
        self._via(source, target_entity, via, problem)
        of = None if function is RollupFunction.COUNT else str(raw[function.value])
        self._types(source, field_def, function, of, target_entity, problem)
        pairs = self._where(source, raw.get("where") or {}, problem)
        if len(self.problems.problems) != before:
            return
        rollup = RollupDef(
            source=source.qualified_name,
            target=target_entity.qualified_name,
            field=field_def.name,
            via=via,
            function=function,
            of=of,
            where=pairs,
            origin=document.display_name,
        )
        if rollup.kept in self.kept:
            other = self.kept[rollup.kept]
            problem(
                "to",
                f"{rollup.kept} is already kept by a rollup of {other.source} "
                f"({other.origin}): a field is kept by one rollup",
            )
            return
        self.kept[rollup.kept] = rollup
        self.found.append((rollup, document, index))

    def _target(
        self, source: EntityDef, text: str, problem: Any, pack: str | None
    ) -> tuple[EntityDef, FieldDef] | None:
        parts = text.split(".")
        if len(parts) == 2:
            parts = [source.pack, *parts]
        if len(parts) != 3 or not all(parts):
            problem("to", f"'{text}' is not pack.entity.field (or entity.field in this pack)")
            return None
        qualified = f"{parts[0]}.{parts[1]}"
        target = self.entities.get(qualified)
        if target is None:
            if not self.problems.has_failed(qualified):
                hint = did_you_mean(qualified, self.entities)
                problem("to", f"unknown entity '{qualified}'{hint}")
            return None
        if pack is not None and target.pack not in self.closure.get(pack, {pack}):
            problem(
                "to",
                f"entity '{qualified}' belongs to pack '{target.pack}', which pack "
                f"'{pack}' does not depend on: add '{target.pack}' to depends in "
                "module.yaml",
            )
            return None
        field_def = target.fields.get(parts[2])
        if field_def is None:
            if not self.problems.has_failed(qualified, parts[2]):
                hint = did_you_mean(parts[2], target.fields)
                problem("to", f"'{parts[2]}' is not a field of {qualified}{hint}")
            return None
        if field_def.computed or field_def.type not in _NUMBERS | _DATES:
            what = "computed" if field_def.computed else field_def.type.value
            problem(
                "to",
                f"field '{parts[2]}' of {qualified} is {what}: a rollup keeps a stored "
                "integer, decimal, date or datetime field",
            )
            return None
        return target, field_def

    def _via(self, source: EntityDef, target: EntityDef, via: str, problem: Any) -> None:
        if via == PARENT:
            if source.parent != target.qualified_name:
                what = f"the line items of {source.parent}" if source.parent else "not a line"
                problem(
                    "via",
                    f"via: {PARENT} reaches a line's parent, and {source.qualified_name} is "
                    f"{what}, not of {target.qualified_name}",
                )
            return
        field_def = source.fields.get(via)
        references = [
            f.name
            for f in source.fields.values()
            if f.type is FieldType.REFERENCE and f.to == target.qualified_name
        ]
        if source.parent == target.qualified_name:
            references.append(PARENT)
        if field_def is None or field_def.type is not FieldType.REFERENCE:
            what = "not a field" if field_def is None else "not a reference"
            problem(
                "via",
                f"'{via}' is {what} of {source.qualified_name}{did_you_mean(via, references)} "
                f"(its references to {target.qualified_name}: {', '.join(references) or 'none'})",
            )
        elif field_def.to != target.qualified_name:
            problem(
                "via",
                f"'{via}' refers to {field_def.to}, not to {target.qualified_name} "
                f"(its references to it: {', '.join(references) or 'none'})",
            )

    def _types(
        self,
        source: EntityDef,
        kept: FieldDef,
        function: RollupFunction,
        of: str | None,
        target: EntityDef,
        problem: Any,
    ) -> None:
        name = f"{target.qualified_name}.{kept.name}"
        key = function.value
        if function is RollupFunction.COUNT:
            if kept.type not in _NUMBERS:
                problem("to", f"a count is a number: {name} is {kept.type.value}")
            self._starts_at_zero(kept, name, problem)
            return
        assert of is not None
        field_def = source.fields.get(of)
        if field_def is None or not field_def.is_stored:
            if field_def is None and self.problems.has_failed(source.qualified_name, of):
                return
            hint = did_you_mean(of, source.fields)
            problem(key, f"'{of}' is not a stored field of {source.qualified_name}{hint}")
            return
        allowed = _NUMBERS if function is RollupFunction.SUM else _NUMBERS | _DATES
        if field_def.type not in allowed:
            what = "numbers" if function is RollupFunction.SUM else "numbers and dates"
            problem(key, f"{key} takes {what}; '{of}' is {field_def.type.value}")
            return
        fits = field_def.type == kept.type or (
            field_def.type is FieldType.INTEGER and kept.type is FieldType.DECIMAL
        )
        if not fits:
            problem(
                "to",
                f"the {key} of '{of}' ({field_def.type.value}) cannot be kept in {name} "
                f"({kept.type.value})",
            )
        if function is RollupFunction.SUM:
            self._starts_at_zero(kept, name, problem)
        elif kept.required or kept.default is not None:
            problem(
                "to",
                f"{name} is empty while no record counts (the {key} of nothing): "
                "drop its required and default",
            )

    @staticmethod
    def _starts_at_zero(kept: FieldDef, name: str, problem: Any) -> None:
        if kept.default is not None and str(kept.default) not in {"0", "0.0", "0.00"}:
            problem(
                "to",
                f"{name} starts at 0 (the sum or count of no record): drop its default "
                f"({kept.default})",
            )

    def _where(
        self, source: EntityDef, raw: Mapping[str, Any], problem: Any
    ) -> tuple[tuple[str, str], ...]:
        parent = self.entities.get(source.parent) if source.parent else None
        pairs = []
        for key, value in raw.items():
            message = self._where_problem(source, parent, str(key))
            values = value if isinstance(value, list) else [value]
            text = ",".join(_text(v) for v in values)
            if message is None:
                message = _value_problem(source, parent, str(key), text)
            if message is not None:
                problem("where", message)
                continue
            pairs.append((str(key), text))
        return tuple(pairs)

    def _where_problem(self, source: EntityDef, parent: EntityDef | None, key: str) -> str | None:
        parts = key.split("__")
        entity = source
        if parts[0] == PARENT:
            if parent is None:
                return f"'{key}': {source.qualified_name} is not a line item (it has no parent)"
            entity, parts = parent, parts[1:]
        if not parts or len(parts) > 2 or not all(parts):
            return f"'{key}' is not a filter: field or field__operator"
        field_def = entity.fields.get(parts[0])
        if field_def is None:
            if self.problems.has_failed(entity.qualified_name, parts[0]):
                return None
            hint = did_you_mean(parts[0], entity.fields)
            return f"'{parts[0]}' is not a field of {entity.qualified_name}{hint}"
        if not field_def.is_stored or not TYPE_TRAITS[field_def.type].scalar:
            return f"'{parts[0]}' ({field_def.type.value}) cannot be filtered on"
        op = parts[1] if len(parts) == 2 else "eq"
        spec = FILTER_OPERATORS.get(op)
        if spec is None:
            if field_def.type is FieldType.REFERENCE:
                return (
                    f"'{key}': a rollup's where reads the record's own fields, not those of "
                    f"the records it refers to (they change without it)"
                )
            return f"unknown filter operator '{op}' in '{key}'{did_you_mean(op, FILTER_OPERATORS)}"
        if not spec.applies_to(field_def.type):
            return f"'{op}' applies to {spec.fields_text()} fields; '{parts[0]}' is not one"
        return None

    def result(self) -> dict[str, EntityDef]:
        entities = dict(self.entities)
        self._cycles()
        by_source: dict[str, list[RollupDef]] = {}
        for rollup, _, _ in self.found:
            by_source.setdefault(rollup.source, []).append(rollup)
            target = entities[rollup.target]
            kept = target.fields[rollup.field]
            starts = 0 if rollup.function in {RollupFunction.SUM, RollupFunction.COUNT} else None
            made = replace(kept, read_only=True, default=kept.default or starts)
            fields = {**target.fields, rollup.field: made}
            entities[rollup.target] = replace(target, fields=frozen_mapping(fields))
        for source, rollups in by_source.items():
            entities[source] = _with_indexes(
                replace(entities[source], rollups=tuple(rollups)),
                [
                    (r.via, r.of)
                    for r in rollups
                    if r.of is not None
                    and r.via != PARENT
                    and r.function in {RollupFunction.MIN, RollupFunction.MAX}
                ],
            )
        return entities

    def _cycles(self) -> None:
        """A rollup whose value feeds, through other rollups, back into what it reads."""
        feeds: dict[str, set[str]] = {}
        for rollup, _, _ in self.found:
            for name in rollup.reads:
                feeds.setdefault(f"{rollup.source}.{name}", set()).add(rollup.kept)
        for rollup, document, index in self.found:
            path = _path_back(feeds, rollup.kept, {f"{rollup.source}.{n}" for n in rollup.reads})
            if path is not None:
                self.problems.at(
                    document,
                    ("rollups", index, "to"),
                    f"rollups feed each other in a circle: {' -> '.join(path)}",
                )
                self.found.remove((rollup, document, index))
                return


def _path_back(feeds: Mapping[str, set[str]], start: str, goal: Iterable[str]) -> list[str] | None:
    """A chain of kept fields from ``start`` to one of ``goal``, or None."""
    goals = set(goal)
    stack = [[start]]
    seen: set[str] = set()
    while stack:
        path = stack.pop()
        if path[-1] in goals:
            return path
        for following in sorted(feeds.get(path[-1], ())):
            if following not in seen:
                seen.add(following)
                stack.append([*path, following])
    return None


_COMPARED = frozenset({"eq", "ne", "in", "nin", "gt", "gte", "lt", "lte"})


def _value_problem(source: EntityDef, parent: EntityDef | None, key: str, text: str) -> str | None:
    """What is wrong with a ``where`` value for its field (``key`` is a known field and
    operator), so that a value the database could never compare is a load error here
    rather than a failure when the server starts."""
    parts = key.split("__")
    entity = source
    if parts[0] == PARENT and parent is not None:
        entity, parts = parent, parts[1:]
    field_def = entity.fields.get(parts[0])
    op = parts[1] if len(parts) > 1 else "eq"
    spec = FILTER_OPERATORS.get(op)
    if field_def is None or spec is None:
        return None
    if spec.arity is Arity.FLAG:
        return None if text in {"true", "false"} else f"'{key}' takes true or false, not '{text}'"
    items = text.split(",") if spec.arity is Arity.MANY else [text]
    for item in items:
        if "\x00" in item or any(0xD800 <= ord(c) <= 0xDFFF for c in item):
            return f"'{key}': a value may not hold a NUL character or a lone surrogate"
        if op in _COMPARED:
            problem = _typed_problem(field_def, item)
            if problem is not None:
                return f"'{key}': '{item[:40]}' {problem}"
    return None


def _typed_problem(field_def: FieldDef, item: str) -> str | None:
    kind = field_def.type
    if kind is FieldType.ENUM and item not in field_def.values:
        return f"is not one of {', '.join(field_def.values)}"
    if kind is FieldType.BOOLEAN and item not in {"true", "false"}:
        return "is not true or false"
    try:
        if kind in {FieldType.INTEGER, FieldType.REFERENCE}:
            if not -(2**63) <= int(item) < 2**63:
                return "is out of the 64-bit range"
        elif kind is FieldType.DECIMAL:
            number = Decimal(item)
            digits = len(number.as_tuple().digits) if number.is_finite() else 0
            if not number.is_finite() or digits > 38 or not -38 <= number.adjusted() <= 38:
                return "is not a decimal of at most 38 digits"
        elif kind is FieldType.DATE:
            dt.date.fromisoformat(item)
        elif kind is FieldType.DATETIME:
            dt.datetime.fromisoformat(item)
    except (ValueError, ArithmeticError):
        return f"is not a valid {kind.value}"
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
