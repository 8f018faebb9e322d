"""Reports (``reports/<name>.yaml``): parameters read from a request, each section run as
one aggregate through the caller's guard, totals computed from the subtotals.

Everything a definition says is compiled once per model (``compile_reports``): parameter
defaults, filter values and totals are sandboxed expressions compiled when the model is
built. A section is an ``AggregateQuery`` over its entity; its SQL is compiled once per
shape and cached by the entity's aggregate builder, like any ``_aggregate``'s, with the
parameters bound. Running it through the ``GuardedStore`` applies the caller's row access
and hidden fields exactly as ``GET .../_aggregate`` does: a report shows no more than the
API would.

Sections are signed here (``sign: -1`` shows credit - debit of a debit - credit sum), in
exact decimals; a section whose groups are cut at ``limit`` takes its subtotal from a
second, ungrouped aggregate, so that totals never miss a record.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import SecurityError

from engine.access import Forbidden
from engine.dates import DateError, day_bound, instance_zone
from engine.errors import BadQuery, UnknownEntity
from engine.expressions import Scope, ValueTemplate, compile_expression
from engine.fieldtypes import InvalidValue, parse_id
from engine.fieldtypes.temporal import parse_date
from engine.query import check_parameters
from metadata import ADMIN_ROLE, FieldType, ParameterType
from metadata._errors import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from engine.database import Connection
    from engine.expressions import Actor, Expression
    from engine.guard import GuardedStore
    from metadata import (
        EntityDef,
        ProjectDef,
        ReportDef,
        ReportParameterDef,
        ReportSectionDef,
    )

    GuardOf = Callable[[str], GuardedStore]
    """The guarded store of an entity (qualified name) for the caller."""

__all__ = [
    "CompiledReport",
    "ReportLine",
    "ReportResult",
    "SectionResult",
    "TotalResult",
    "compile_reports",
]

_EVALUATION_ERRORS = (ArithmeticError, TypeError, ValueError, SecurityError, DateError)
"""What evaluating a definition's expression may raise on unexpected values."""
WHOLE_SCALE = 2
"""The decimals of a total computed from whole numbers only (counts): ``incomes / entries``
is a rate, ``0.67``."""
_WIDE = decimal.Context(prec=120, rounding=ROUND_HALF_UP)
"""Enough digits to round any figure (38 digits and its scale) without an overflow."""


@dataclasses.dataclass(frozen=True, slots=True)
class ReportLine:
    key: Any
    """The group's value (a reference's id, an enum's value, a date bucket)."""
    label: str
    values: dict[str, Any]
    """Figures by column, signed."""


@dataclasses.dataclass(frozen=True, slots=True)
class SectionResult:
    name: str
    label: str
    lines: list[ReportLine]
    total: dict[str, Any]
    truncated: bool = False
    """More groups than the section's ``limit``: not every line is shown (the total is
    still of every record)."""


@dataclasses.dataclass(frozen=True, slots=True)
class TotalResult:
    name: str
    label: str
    values: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class ReportResult:
    parameters: dict[str, Any]
    """The values used, defaults filled in."""
    sections: list[SectionResult]
    totals: list[TotalResult]


class CompiledReport:
    """One report definition, its expressions compiled; ``run`` it for a caller."""

    def __init__(self, definition: ReportDef, project: ProjectDef) -> None:
        self.definition = definition
        self.project = project
        self._defaults = {
            p.name: ValueTemplate(p.default) for p in definition.parameters if p.default is not None
        }
        self._filters = {
            section.name: tuple((key, ValueTemplate(value)) for key, value in section.filter)
            for section in definition.sections
        }
        self._totals: tuple[tuple[Expression, tuple[str, ...]], ...] = tuple(
            (
                compile_expression(total.value),
                total.columns or tuple(c.name for c in definition.columns),
            )
            for total in definition.totals
        )
        self._checks = tuple(
            (compile_expression(check.condition), check.message) for check in definition.checks
        )

    # -- access -------------------------------------------------------------------------

    def may_run(self, roles: frozenset[str]) -> bool:
        """Whether a caller holding ``roles`` (inherited ones included) may run it."""
        held = self.project.role_closure(roles)
        return ADMIN_ROLE in held or any(role in held for role in self.definition.roles)

    def check_access(self, actor: Actor) -> None:
        if not self.may_run(actor.roles):
            raise Forbidden(f"your roles may not run the report '{self.definition.qualified_name}'")

    # -- parameters ---------------------------------------------------------------------

    def parameters(self, pairs: Sequence[tuple[str, str]], actor: Actor | None) -> dict[str, Any]:
        """The parameters of one run from query-string ``pairs``: each parsed as its type,
        a missing one given its default; then the report's checks. ``BadQuery`` (400) names
        the parameter at fault; an empty value is one (the web form leaves those out)."""
        check_parameters(pairs)
        declared = {p.name: p for p in self.definition.parameters}
        given: dict[str, str] = {}
        for key, value in pairs:
            if key not in declared:
                hint = did_you_mean(key, declared)
                names = ", ".join(declared) or "none"
                raise BadQuery(f"unknown parameter '{key}'{hint} (this report takes: {names})")
            if key in given:
                raise BadQuery(f"'{key}' is given more than once")
            given[key] = value
        values: dict[str, Any] = {}
        for parameter in self.definition.parameters:
            text = given.get(parameter.name)
            if text is not None and not text.strip():
                raise BadQuery(
                    f"'{parameter.name}' is empty: give a value, or leave it out for its default"
                )
            if text is not None:
                values[parameter.name] = _parsed(parameter, text)
            elif parameter.name in self._defaults:  # it may read the parameters before it
                values[parameter.name] = self._default(parameter, Scope(values, user=actor))
            elif parameter.required:
                raise BadQuery(f"'{parameter.name}' is required ({parameter.label})")
            else:
                values[parameter.name] = None
        self._check(values, actor)
        return values

    def _default(self, parameter: ReportParameterDef, scope: Scope) -> Any:
        try:
            value = self._defaults[parameter.name].resolve(scope)
        except _EVALUATION_ERRORS as exc:
            raise BadQuery(f"the default of '{parameter.name}' cannot be computed: {exc}") from None
        if value is None:
            return None
        if parameter.type is ParameterType.DATE and isinstance(value, dt.datetime):
            return value.date()
        return _parsed(parameter, str(value)) if isinstance(value, str) else value

    def _check(self, values: dict[str, Any], actor: Actor | None) -> None:
        scope = Scope(values, user=actor)
        for expression, message in self._checks:
            try:
                holds = expression(scope)
            except _EVALUATION_ERRORS:
                holds = False
            if not holds:
                raise BadQuery(message)

    async def reference_titles(
        self, conn: Connection, values: Mapping[str, Any], guard_of: GuardOf
    ) -> dict[str, str]:
        """The title of each reference parameter's record that the caller may read, by
        parameter name: what the report's form shows for the record chosen."""
        titles: dict[str, str] = {}
        for parameter in self.definition.parameters:
            value = values.get(parameter.name)
            if parameter.type is not ParameterType.REFERENCE or not parameter.to or not value:
                continue
            try:
                key = parse_id(str(value))
            except InvalidValue:
                continue
            found = await _titles(conn, guard_of, parameter.to, [key])
            if str(key) in found:
                titles[parameter.name] = found[str(key)]
        return titles

    # -- running ------------------------------------------------------------------------

    async def run(
        self,
        conn: Connection,
        *,
        parameters: dict[str, Any],
        guard_of: GuardOf,
        actor: Actor | None,
    ) -> ReportResult:
        """Every section for the caller (``Forbidden`` when an entity is not readable to
        them), then the totals."""
        scope = Scope(parameters, user=actor)
        sections = [
            await self._section(conn, section, scope, guard_of)
            for section in self.definition.sections
        ]
        return ReportResult(dict(parameters), sections, self._computed(sections, parameters))

    async def _section(
        self, conn: Connection, section: ReportSectionDef, scope: Scope, guard_of: GuardOf
    ) -> SectionResult:
        guard = guard_of(section.entity)
        pairs = self._filter_pairs(section, scope, guard.store.entity)
        measures = [m for _, m in section.measures if m != "count"]
        if measures:
            pairs.append(("measures", ",".join(dict.fromkeys(measures))))
        grouped = list(pairs)
        if section.group_by:
            grouped += [("group_by", section.group_by), ("limit", str(section.limit))]
        query = guard.store.aggregate_parser.parse(grouped)
        result = await guard.aggregate(conn, query)
        rows = result.rows
        totals_rows = rows
        if section.group_by and (result.truncated or not _additive(section)):
            # the lines miss groups, or their average, minimum or maximum does not add up
            # to that of every record: the subtotal is the ungrouped aggregate
            whole = guard.store.aggregate_parser.parse(pairs)
            totals_rows = (await guard.aggregate(conn, whole)).rows
        labels = await self._labels(conn, section, rows, guard, guard_of)
        lines = [
            ReportLine(
                key=row.get(section.group_by) if section.group_by else None,
                label=labels.get(_label_key(row.get(section.group_by or "")))
                or _shown(row.get(section.group_by or "")),
                values=self._figures(section, row),
            )
            for row in (rows if section.group_by else [])
        ]
        total = {column: _zero(guard, measure) for column, measure in section.measures}
        for row in totals_rows:
            for column, value in self._figures(section, row).items():
                total[column] = _add(total[column], value)
        return SectionResult(section.name, section.label, lines, total, truncated=result.truncated)

    def _filter_pairs(
        self, section: ReportSectionDef, scope: Scope, entity: EntityDef
    ) -> list[tuple[str, str]]:
        """The section's filters as query-string pairs, templates resolved with the
        parameters; a filter whose value is empty (an optional parameter left out) is
        dropped. A date bounding a datetime field is whole days of the instance's time
        zone (``at__lte: "{{ to }}"`` through the end of ``to``), as ``today()`` is."""
        pairs = []
        for key, template in self._filters[section.name]:
            try:
                value = template.resolve(scope)
            except _EVALUATION_ERRORS as exc:
                raise BadQuery(f"the filter '{key}' cannot be computed: {exc}") from None
            if value is None or value == "":
                continue
            name, _, op = key.partition("__")
            field = entity.fields.get(name)
            if (
                isinstance(value, dt.date)
                and not isinstance(value, dt.datetime)
                and field is not None
                and field.type is FieldType.DATETIME
                and op in ("gte", "gt", "lte", "lt")
            ):
                bound = day_bound(op, value, instance_zone())
                if bound is not None:
                    pairs.append((f"{name}__{bound[0]}", bound[1]))
            elif isinstance(value, bool):
                pairs.append((key, "true" if value else "false"))
            elif isinstance(value, dt.date):
                pairs.append((key, value.isoformat()))
            else:
                pairs.append((key, str(value)))
        return pairs

    @staticmethod
    def _figures(section: ReportSectionDef, row: Mapping[str, Any]) -> dict[str, Any]:
        figures = {}
        for column, measure in section.measures:
            value = row.get(measure)
            if value is not None and section.sign < 0:
                value = _unsigned_zero(-value)
            figures[column] = value
        return figures

    async def _labels(
        self,
        conn: Connection,
        section: ReportSectionDef,
        rows: list[dict[str, Any]],
        guard: GuardedStore,
        guard_of: GuardOf,
    ) -> dict[str, str]:
        """The lines' labels: a reference's record titles (those the caller may read), an
        enum's values as words; by the group's value as text."""
        if not section.group_by:
            return {}
        field = guard.store.entity.fields.get(section.group_by.partition("__")[0])
        if field is None or section.group_by != field.name:
            return {}
        if field.type is FieldType.ENUM:
            return {value: value.replace("_", " ").capitalize() for value in field.values}
        if field.type is not FieldType.REFERENCE or not field.to:
            return {}
        keys = [row[field.name] for row in rows if row.get(field.name) is not None]
        return await _titles(conn, guard_of, field.to, keys)

    def _computed(
        self, sections: list[SectionResult], parameters: dict[str, Any]
    ) -> list[TotalResult]:
        """Each total in its columns, over the sections' subtotals and the totals before
        it in that column; a value it cannot compute (a division by zero) is empty."""
        results: list[TotalResult] = []
        for total, (expression, columns) in zip(self.definition.totals, self._totals, strict=True):
            values: dict[str, Any] = {}
            for column in columns:
                figures = {s.name: s.total.get(column, Decimal(0)) for s in sections}
                figures.update({t.name: t.values.get(column) for t in results})
                try:
                    value = expression(Scope({**parameters, **figures}))
                except _EVALUATION_ERRORS:
                    value = None
                values[column] = _rounded(value, _scale(figures.values()))
            results.append(TotalResult(total.name, total.label, values))
        return results


def _parsed(parameter: ReportParameterDef, text: str) -> Any:
    try:
        if parameter.type is ParameterType.DATE:
            return parse_date(text)
        if parameter.type is ParameterType.REFERENCE:
            return parse_id(text)
    except InvalidValue as exc:
        raise BadQuery(f"'{parameter.name}' {exc.message}, not '{_clipped(text)}'") from None
    if text not in parameter.values:
        hint = did_you_mean(text, parameter.values)
        raise BadQuery(
            f"'{parameter.name}' must be one of {', '.join(parameter.values)}, "
            f"not '{_clipped(text)}'{hint}"
        )
    return text


def _clipped(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def _additive(section: ReportSectionDef) -> bool:
    """Whether the section's subtotal is the sum of its lines: sums and counts are."""
    return all(m == "count" or m.endswith("__sum") for _, m in section.measures)


def _zero(guard: GuardedStore, measure: str) -> Any:
    """Nothing of ``measure``: a sum to its field's decimal places (``0.00``), a count 0;
    an average, minimum or maximum of no record is none (empty)."""
    name, _, function = measure.rpartition("__")
    if measure == "count":
        return 0
    if function != "sum":
        return None
    field = guard.store.entity.fields.get(name)
    if field is None or field.type is not FieldType.DECIMAL:
        return 0
    return Decimal(0).scaleb(-(field.scale if field.scale is not None else 2))


def _scale(figures: Iterable[Any]) -> int:
    """The decimals of the figures a total is computed from: the most any has (``2`` for
    amounts, ``3`` for a scale-3 quantity); :data:`WHOLE_SCALE` when all are whole
    numbers (counts)."""
    scales = [
        -exponent
        for figure in figures
        if isinstance(figure, Decimal)
        and isinstance(exponent := figure.as_tuple().exponent, int)
        and exponent < 0
    ]
    return max(scales, default=WHOLE_SCALE)


def _rounded(value: Any, scale: int) -> Any:
    """A total's value to ``scale`` decimals, half up (``950 / 1700`` is ``0.56``, not 28
    digits), never a negative zero; a whole number of whole numbers (``entries + 1``) stays
    one, and what is no number (a date) is left as it is."""
    if not isinstance(value, (Decimal, float)):  # an int of ints (counts) stays whole
        return value
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            return None
        with decimal.localcontext(_WIDE):
            return _unsigned_zero(number.quantize(Decimal(1).scaleb(-scale)))
    except (InvalidOperation, ValueError):
        return None


def _unsigned_zero(value: Any) -> Any:
    """``-0.00`` (``x * -1``, ``sign: -1`` of nothing) as ``0.00``."""
    if isinstance(value, Decimal) and value.is_zero():
        return value.copy_abs()
    return value


def _add(total: Any, value: Any) -> Any:
    if value is None:
        return total
    if total is None:
        return value
    try:
        return total + value
    except (TypeError, InvalidOperation):
        return total


def _label_key(value: Any) -> str:
    return "" if value is None else str(value)


def _shown(value: Any) -> str:
    if value is None:
        return "(empty)"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


async def _titles(
    conn: Connection, guard_of: GuardOf, target: str, keys: list[Any]
) -> dict[str, str]:
    """The titles of the records ``keys`` of ``target`` that the caller may read."""
    if not keys:
        return {}
    try:
        guard = guard_of(target)
    except UnknownEntity:
        return {}
    title = guard.store.entity.title
    if not title or title in guard.access.hidden:
        return {}
    pairs = [
        ("id__in", ",".join(str(key) for key in keys)),
        ("fields", f"id,{title}"),
        ("limit", str(len(keys))),
    ]
    try:
        found = await guard.list_page(conn, guard.store.parser.parse(pairs))
    except (Forbidden, BadQuery):
        return {}
    return {
        str(record["id"]): str(record[title])
        for record in found.records
        if record.get(title) is not None
    }


def compile_reports(project: ProjectDef) -> dict[str, CompiledReport]:
    """Every report of ``project`` compiled, by qualified name."""
    return {name: CompiledReport(report, project) for name, report in project.reports.items()}
