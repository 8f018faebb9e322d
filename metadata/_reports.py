"""Reports (``reports/<name>.yaml`` in a pack): parameters, sections and totals checked
against the entities, the roles and each other when the project loads, so that a report
never fails on a name when it is run; every problem at its ``file:line:col``."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import TYPE_CHECKING, Any

from metadata._dashboards import DashboardChecker
from metadata._documents import load_folder_documents
from metadata._errors import did_you_mean
from metadata._expressions import (
    DATE_FUNCTIONS,
    INSTANCE_NAMES,
    expression_problems,
    is_template,
    template_problem,
)
from metadata._model import ADMIN_ROLE, FieldType
from metadata._names import default_label
from metadata._operators import FILTER_OPERATORS, Arity
from metadata._report_model import (
    ParameterType,
    ReportCheckDef,
    ReportColumnDef,
    ReportDef,
    ReportParameterDef,
    ReportSectionDef,
    ReportTotalDef,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef, FieldDef, ProjectDef, RoleDef
    from metadata._yaml import SourceDocument

REPORT_NAMES: frozenset[str] = frozenset({"today", "now", "user"}) | INSTANCE_NAMES | DATE_FUNCTIONS
"""Names every expression of a report sees besides its parameters (and, in totals, the
sections and totals)."""
DEFAULT_COLUMN = ReportColumnDef("amount", "Amount")
UNREADABLE_NAMES: frozenset[str] = frozenset(
    {"none", "true", "false", "and", "or", "not", "in", "is", "if", "else"}
)
"""Names an expression reads as a constant or an operator, never as a parameter: a
parameter ``none`` would make ``{{ none }}`` empty, dropping the filters that read it."""
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_BOOLEANS = frozenset({"true", "false"})


def load_report_documents(pack_path: Path, problems: ProblemCollector) -> dict[str, SourceDocument]:
    return load_folder_documents(pack_path, "reports", "report", problems)


def load_reports(
    packs: Iterable[tuple[str, Path]], project: ProjectDef, problems: ProblemCollector
) -> dict[str, ReportDef]:
    """Every pack's reports by qualified name, checked against the built ``project`` (its
    entities and roles); a report with a problem is reported and left out."""
    reports = {}
    for pack, path in packs:
        checker = ReportChecker(pack, project.entities, project.roles, problems)
        for name, document in load_report_documents(path, problems).items():
            report = checker.build(name, document)
            if report is not None:
                reports[report.qualified_name] = report
    return reports


class ReportChecker:
    """Checks a report's sections with the dashboards' rules for measures, groups and
    filters (the same aggregates run them), and its own parameters, totals and checks."""

    def __init__(
        self,
        pack: str,
        entities: Mapping[str, EntityDef],
        roles: Mapping[str, RoleDef],
        problems: ProblemCollector,
    ) -> None:
        self.pack = pack
        self.entities = entities
        self.problems = problems
        self.roles = roles
        self.aggregates = DashboardChecker(pack, entities, problems)
        self._errors: list[tuple[tuple[PathItem, ...], str]] = []

    def _error(self, where: tuple[PathItem, ...], message: str) -> None:
        self._errors.append((where, message))

    def build(self, name: str, document: SourceDocument) -> ReportDef | None:
        data: dict[str, Any] = document.data
        self._errors = []
        self._check_roles(data["roles"])
        parameters = self._parameters(data.get("parameters") or {})
        columns = tuple(
            ReportColumnDef(c["name"], c.get("label") or default_label(c["name"]))
            for c in data.get("columns") or ()
        ) or (DEFAULT_COLUMN,)
        column_names = [c.name for c in columns]
        if len(set(column_names)) != len(column_names):
            self._error(("columns",), "two columns have the same name")
        scope = {p.name for p in parameters} | REPORT_NAMES
        sections = []
        for index, raw in enumerate(data["sections"]):
            section = self._section(document, ("sections", index), raw, column_names, scope)
            if section is not None:
                sections.append(section)
        names = self._unique_names(data, {p.name for p in parameters})
        totals = self._totals(data.get("totals") or [], column_names, names, scope)
        checks = []
        for index, raw in enumerate(data.get("checks") or []):
            for problem in expression_problems(raw["condition"], set(scope)):
                self._error(("checks", index, "condition"), problem)
            checks.append(ReportCheckDef(raw["condition"], raw["message"]))
        for where, message in self._errors:
            self.problems.at(document, where, message)
        if self._errors or len(sections) != len(data["sections"]):
            return None
        return ReportDef(
            pack=self.pack,
            name=name,
            label=data.get("label") or default_label(name),
            description=data.get("description"),
            roles=tuple(data["roles"]),
            columns=columns,
            sections=tuple(sections),
            parameters=parameters,
            totals=totals,
            checks=tuple(checks),
        )

    def _check_roles(self, roles: list[str]) -> None:
        for index, role in enumerate(roles):
            if role not in self.roles and role != ADMIN_ROLE:
                hint = did_you_mean(role, [*self.roles, ADMIN_ROLE])
                self._error(("roles", index), f"no role '{role}' is declared{hint}")

    def _parameters(self, raw: dict[Any, Any]) -> tuple[ReportParameterDef, ...]:
        parameters: list[ReportParameterDef] = []
        for name, spec in raw.items():
            where: tuple[PathItem, ...] = ("parameters", name)
            kind = ParameterType(spec["type"])
            said = str(name).lower() if isinstance(name, bool) else str(name)  # YAML's true:
            if said in UNREADABLE_NAMES:
                self._error(
                    where,
                    f"a parameter cannot be named '{said}': expressions read it as "
                    f"{'a constant' if said in {'none', 'true', 'false'} else 'an operator'}, "
                    "never as the parameter",
                )
            to = None
            if kind is ParameterType.CHOICE and not spec.get("values"):
                self._error((*where, "type"), "a choice parameter needs values")
            if kind is not ParameterType.CHOICE and "values" in spec:
                self._error((*where, "values"), f"only a choice has values, not a {kind.value}")
            if kind is ParameterType.REFERENCE:
                to = self._reference_target(where, spec.get("to"))
            elif "to" in spec:
                self._error((*where, "to"), f"only a reference has 'to', not a {kind.value}")
            default = spec.get("default")
            if default is not None:
                earlier = {p.name for p in parameters}  # a default may read the ones before
                problem = self._default_problem(kind, default, spec.get("values") or (), earlier)
                if problem:
                    self._error((*where, "default"), problem)
            parameters.append(
                ReportParameterDef(
                    name=str(name),
                    type=kind,
                    label=spec.get("label") or default_label(str(name)),
                    default=default,
                    required=spec.get("required", True),
                    values=tuple(spec.get("values") or ()),
                    to=to,
                )
            )
        return tuple(parameters)

    def _reference_target(self, where: tuple[PathItem, ...], to: str | None) -> str | None:
        if not to:
            self._error((*where, "type"), "a reference parameter needs 'to' (the entity)")
            return None
        target = to if "." in to else f"{self.pack}.{to}"
        entity = self.entities.get(target)
        if entity is None or entity.is_child:
            hint = did_you_mean(target, [n for n, e in self.entities.items() if not e.is_child])
            self._error((*where, "to"), f"no entity '{target}' is enabled{hint}")
        return target

    @staticmethod
    def _default_problem(
        kind: ParameterType, default: Any, values: Sequence[str], earlier: set[str]
    ) -> str | None:
        if is_template(default):
            return template_problem(str(default), set(REPORT_NAMES) | earlier)
        if kind is ParameterType.DATE and not isinstance(default, dt.date):
            try:
                dt.date.fromisoformat(str(default))
            except ValueError:
                return f"'{default}' is not a date (YYYY-MM-DD) nor a {{{{ expression }}}}"
        if kind is ParameterType.REFERENCE and (
            isinstance(default, bool) or not isinstance(default, int)
        ):
            return f"'{default}' is not a record id nor a {{{{ expression }}}}"
        if kind is ParameterType.CHOICE and str(default) not in values:
            return f"'{default}' is not one of the values{did_you_mean(str(default), values)}"
        return None

    def _section(
        self,
        document: SourceDocument,
        where: tuple[PathItem, ...],
        raw: dict[str, Any],
        columns: list[str],
        scope: frozenset[str] | set[str],
    ) -> ReportSectionDef | None:
        # Reported at once, not collected: a section that is left out leaves the report out.
        entity = self.aggregates.aggregated_entity(document, (*where, "entity"), raw["entity"])
        if entity is None:
            return None
        target = entity.qualified_name
        measures = self._measures(where, entity, raw["measure"], columns)
        group_by = raw.get("group_by")
        if group_by is not None:
            for problem in self.aggregates._group_problems(entity, group_by):
                self._error((*where, "group_by"), problem)
        pairs = self._filter(where, entity, raw.get("filter") or {}, scope)
        return ReportSectionDef(
            name=raw["name"],
            label=raw.get("label") or default_label(raw["name"]),
            entity=target,
            measures=tuple(measures),
            filter=tuple(pairs),
            group_by=group_by,
            sign=int(raw.get("sign", 1)),
            limit=int(raw.get("limit", 1000)),
        )

    def _measures(
        self,
        where: tuple[PathItem, ...],
        entity: EntityDef,
        measure: str | dict[str, str],
        columns: list[str],
    ) -> list[tuple[str, str]]:
        """(column, measure) pairs: one measure for a one-column report, else one per
        column named."""
        if isinstance(measure, str):
            if len(columns) > 1:
                self._error(
                    (*where, "measure"),
                    f"the report has {len(columns)} columns: give a measure per column "
                    f"({{{columns[0]}: FIELD__sum, ...}})",
                )
            measures = [(columns[0], measure)]
        else:
            measures = [(str(k), str(v)) for k, v in measure.items()]
        for column, text in measures:
            at = (*where, "measure") if isinstance(measure, str) else (*where, "measure", column)
            if column not in columns:
                self._error(at, f"no column '{column}'{did_you_mean(column, columns)}")
            if text == "count":
                continue  # counts are whole numbers: valid for any entity
            for problem in self.aggregates._measure_problems(entity, text):
                self._error(at, problem)
        return measures

    def _filter(
        self,
        where: tuple[PathItem, ...],
        entity: EntityDef,
        raw: dict[str, Any],
        scope: frozenset[str] | set[str],
    ) -> list[tuple[str, Any]]:
        pairs = []
        for key, value in raw.items():
            problem = self.aggregates._filter_problem(entity, str(key))
            if problem is None and is_template(value):
                problem = template_problem(str(value), set(scope))
            elif problem is None:
                problem = _literal_problem(entity, str(key), value)
            if problem:
                self._error((*where, "filter", key), problem)
            pairs.append((str(key), value))
        return pairs

    def _unique_names(self, data: dict[str, Any], parameters: set[str]) -> list[str]:
        """The names of the sections, then the totals, each used once and none a
        parameter's: they are the names of the totals' expressions."""
        seen: set[str] = set()
        names = []
        for kind in ("sections", "totals"):
            for index, raw in enumerate(data.get(kind) or []):
                name = raw["name"]
                if name in seen or name in parameters or name in REPORT_NAMES:
                    self._error((kind, index, "name"), f"the name '{name}' is used already")
                seen.add(name)
                names.append(name)
        return names

    def _totals(
        self,
        raw: list[dict[str, Any]],
        columns: list[str],
        names: list[str],
        scope: frozenset[str] | set[str],
    ) -> tuple[ReportTotalDef, ...]:
        totals = []
        sections = len(names) - len(raw)
        for index, total in enumerate(raw):
            where: tuple[PathItem, ...] = ("totals", index)
            known = set(scope) | set(names[: sections + index])
            for problem in expression_problems(total["value"], known):
                self._error((*where, "value"), problem)
            for position, column in enumerate(total.get("columns") or ()):
                if column not in columns:
                    hint = did_you_mean(column, columns)
                    self._error((*where, "columns", position), f"no column '{column}'{hint}")
            totals.append(
                ReportTotalDef(
                    name=total["name"],
                    label=total.get("label") or default_label(total["name"]),
                    value=total["value"],
                    columns=tuple(total.get("columns") or ()),
                )
            )
        return tuple(totals)


def _literal_problem(entity: EntityDef, key: str, value: Any) -> str | None:
    """Why the literal ``value`` of the filter ``key`` can match no record of ``entity``
    (an enum value not among the field's, a date that is none), or None; a filter on a
    reference's field or a system field is left to the query, which judges it when run."""
    name, _, op = key.partition("__")
    field = entity.fields.get(name)
    spec = FILTER_OPERATORS.get(op or "eq")
    if field is None or spec is None or spec.value_type is str:
        return None
    if spec.arity is Arity.FLAG:
        if isinstance(value, bool) or str(value) in _BOOLEANS:
            return None
        return f"'{key}' takes true or false, not '{_quoted(value)}'"
    items = [value]
    if spec.arity is Arity.MANY and isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    for item in items:
        problem = _value_problem(field, item)
        if problem:
            return f"'{key}': '{_quoted(item)}' {problem}"
    return None


def _value_problem(field: FieldDef, value: Any) -> str | None:
    """What ``value`` is not, as a value of ``field`` (``is not a date``), or None."""
    kind = field.type
    text = str(value)
    if kind is FieldType.ENUM and text not in field.values:
        hint = did_you_mean(text, field.values)
        return f"is not one of {field.name}'s values ({', '.join(field.values)}){hint}"
    if kind is FieldType.DATE and not _is_date(value):
        return "is not a date (YYYY-MM-DD)"
    if kind is FieldType.DATETIME and not _is_datetime(value):
        return "is not a datetime with an offset (2026-01-31T09:30:00+01:00)"
    if kind in (FieldType.INTEGER, FieldType.REFERENCE, FieldType.USER) and not _is_integer(value):
        return "is not a whole number" if kind is FieldType.INTEGER else "is not a record id"
    if kind is FieldType.DECIMAL and not _is_number(value):
        return "is not a number"
    if kind is FieldType.BOOLEAN and not (isinstance(value, bool) or text in _BOOLEANS):
        return "is not true or false"
    return None


def _is_date(value: Any) -> bool:
    if isinstance(value, dt.date):
        return not isinstance(value, dt.datetime)
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return value.tzinfo is not None
    if isinstance(value, dt.date):
        return True  # whole days of the instance's time zone, as a date parameter is
    if not isinstance(value, str) or _DATE_TEXT.fullmatch(value):
        return False  # quoted, a date is text, which the query reads as no datetime
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return False
    return parsed.tzinfo is not None


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (
        isinstance(value, str) and value.isascii() and value.isdigit()
    )


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return decimal.Decimal(str(value)).is_finite()
    except decimal.InvalidOperation:
        return False


def _quoted(value: Any) -> str:
    """A value in a message: short, unprintable characters escaped."""
    text = str(value)
    text = text[:40] + ("…" if len(text) > 40 else "")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
