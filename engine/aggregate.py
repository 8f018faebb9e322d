"""Grouped counts, sums, averages, minimums and maximums (``GET .../_aggregate``, SPEC §4).

An aggregate covers the same records a list with the same filters and ``q`` would (and the
same record-level restriction: it reuses the list's conditions), grouped by up to
``MAX_GROUPS`` fields, a date or datetime optionally bucketed by year, month or day.

Sums are exact: PostgreSQL adds ``numeric`` values; SQLite keeps a decimal as a whole number
of its smallest unit (``engine.fieldtypes.numeric.scaled_integer``) and adds integers. Its integer
``sum`` fails once a total leaves 64 bits, so it adds each value's high and low 32 bits
separately and the exact total is put together here. Averages are computed from that exact
sum and the count of values. A sum beyond 64 bits is answered as a decimal (a JSON string):
JSON parsers lose such integers.
The SQL of an aggregate is compiled once per shape and cached, like a list's.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, case, func, literal_column, select

from engine.errors import BadQuery
from engine.fieldtypes.numeric import INT64_MAX, INT64_MIN
from engine.query import check_parameters, split_csv
from engine.sql import CompiledSql, compile_sql
from metadata import DATE_BUCKETS, MEASURE_FUNCTIONS, UNGROUPABLE, FieldType, measurable
from metadata._aggregates import DATES, SUMMED
from metadata._errors import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import ColumnElement
    from sqlalchemy.engine import Dialect

    from engine.query import ListQuery, ListSqlBuilder, QueryColumns, QueryParser

MAX_GROUPS = 3
MAX_MEASURES = 10
DEFAULT_GROUP_LIMIT = 1000

_OPTIONS = ("group_by", "measures", "sort")
_NOT_FOR_AGGREGATES = ("offset", "cursor", "fields", "expand", "count")

_LOW_BITS = 0xFFFFFFFF
_EXACT = Context(prec=100, traps=[InvalidOperation])
"""Sums and averages of up to 38-digit decimals over billions of rows, exactly."""

_SQLITE_PREFIX = {"year": 4, "month": 7, "day": 10}
_POSTGRES_FORMATS = {"year": "YYYY", "month": "YYYY-MM", "day": "YYYY-MM-DD"}
_EDGE_BUCKETS = {
    "year": ("0001", "9999"),
    "month": ("0001-01", "9999-12"),
    "day": ("0001-01-01", "9999-12-31"),
}


@dataclass(frozen=True, slots=True)
class Grouping:
    field: str
    bucket: str | None = None

    @property
    def key(self) -> str:
        return self.field if self.bucket is None else f"{self.field}__{self.bucket}"


@dataclass(frozen=True, slots=True)
class Measure:
    field: str
    function: str

    @property
    def key(self) -> str:
        return f"{self.field}__{self.function}"


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    scope: ListQuery
    """The records aggregated: filters, ``q``, the caller's restriction, and ``limit`` (of
    groups)."""
    groups: tuple[Grouping, ...] = ()
    measures: tuple[Measure, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()
    """(output key, descending); the group keys in order when not given."""

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field the aggregate reads (for access checks)."""
        return tuple(
            dict.fromkeys([g.field for g in self.groups] + [m.field for m in self.measures])
        )


@dataclass(frozen=True, slots=True)
class AggregateResult:
    rows: list[dict[str, Any]]
    truncated: bool
    """More groups exist than ``limit``."""


class AggregateParser:
    """Query-string pairs to an ``AggregateQuery``: filters, ``q`` and ``limit`` as a list
    takes them, plus ``group_by``, ``measures`` and ``sort`` over the output keys."""

    def __init__(self, parser: QueryParser) -> None:
        self.parser = parser
        self.columns: QueryColumns = parser.columns

    def parse(self, params: Sequence[tuple[str, str]]) -> AggregateQuery:
        check_parameters(params)
        options: dict[str, str] = {}
        rest: list[tuple[str, str]] = []
        for key, value in params:
            if key in _NOT_FOR_AGGREGATES:
                raise BadQuery(f"'{key}' does not apply to _aggregate")
            if key in _OPTIONS:
                if key in options:
                    raise BadQuery(f"'{key}' is given more than once")
                options[key] = value
            else:
                rest.append((key, value))
        if not any(key == "limit" for key, _ in rest):
            rest.append(("limit", str(DEFAULT_GROUP_LIMIT)))
        scope = self.parser.parse(rest)
        groups = self._groups(options.get("group_by"))
        measures = self._measures(options.get("measures"))
        keys = [g.key for g in groups] + ["count"] + [m.key for m in measures]
        return AggregateQuery(scope, groups, measures, self._sort(options.get("sort"), keys))

    def _column_type(self, name: str, purpose: str) -> FieldType | None:
        column = self.columns.columns.get(name)
        if column is None:
            refused = self.columns.refusal(name, purpose)
            if refused is not None:
                raise refused
            hint = did_you_mean(name, self.columns.columns)
            raise BadQuery(
                f"cannot {purpose} '{name}': {self.columns.entity} has no such field{hint}"
            )
        return column.type

    def _groups(self, text: str | None) -> tuple[Grouping, ...]:
        if not text:
            return ()
        groups = []
        for item in split_csv(text, "group_by"):
            name, _, bucket = item.partition("__")
            kind = self._column_type(name, "group by")
            if kind in UNGROUPABLE:
                raise BadQuery(f"cannot group by '{name}': a {kind.value} field has no groups")
            if bucket:
                if bucket not in DATE_BUCKETS:
                    hint = did_you_mean(bucket, DATE_BUCKETS)
                    raise BadQuery(
                        f"unknown bucket '{bucket}' in group_by{hint}; "
                        f"use one of {', '.join(DATE_BUCKETS)}"
                    )
                if kind not in DATES:
                    raise BadQuery(
                        f"'{name}__{bucket}': only date and datetime fields have buckets"
                    )
            groups.append(Grouping(name, bucket or None))
        if len({g.key for g in groups}) != len(groups):
            raise BadQuery("'group_by' names a group twice")
        if len(groups) > MAX_GROUPS:
            raise BadQuery(f"'group_by' takes at most {MAX_GROUPS} fields")
        return tuple(groups)

    def _measures(self, text: str | None) -> tuple[Measure, ...]:
        if not text:
            return ()
        measures = []
        for item in split_csv(text, "measures"):
            if item == "count":
                continue
            name, _, function = item.rpartition("__")
            if function not in MEASURE_FUNCTIONS or not name:
                raise BadQuery(
                    f"'{item}' is not a measure: write count or FIELD__FUNCTION with FUNCTION "
                    f"one of {', '.join(MEASURE_FUNCTIONS)} (amount__sum)"
                )
            kind = self._column_type(name, f"take {function} of")
            if kind not in measurable(function):
                raise BadQuery(
                    f"cannot take {function} of '{name}': it applies to "
                    + (
                        "integer and decimal fields"
                        if function in SUMMED
                        else "numbers, dates and datetimes"
                    )
                )
            measures.append(Measure(name, function))
        if len({m.key for m in measures}) != len(measures):
            raise BadQuery("'measures' names a measure twice")
        if len(measures) > MAX_MEASURES:
            raise BadQuery(f"'measures' takes at most {MAX_MEASURES} measures")
        return tuple(measures)

    @staticmethod
    def _sort(text: str | None, keys: list[str]) -> tuple[tuple[str, bool], ...]:
        if not text:
            return ()
        order = []
        for item in split_csv(text, "sort"):
            key = item.removeprefix("-")
            if key not in keys:
                raise BadQuery(
                    f"cannot sort by '{key}': sort by a group or a measure ({', '.join(keys)})"
                )
            order.append((key, item.startswith("-")))
        if len({key for key, _ in order}) != len(order):
            raise BadQuery("'sort' names a key twice")
        return tuple(order)


class AggregateSqlBuilder:
    """Builds and caches the SQL of one entity's aggregates; decodes their rows."""

    def __init__(
        self,
        lists: ListSqlBuilder,
        *,
        dialect: Dialect,
        dialect_name: str,
        scales: dict[str, int],
        decoders: dict[str, Callable[[Any], Any] | None],
        cache_size: int = 256,
    ) -> None:
        self.lists = lists
        self.dialect = dialect
        self.dialect_name = dialect_name
        self.scales = scales
        """Decimal places of each decimal field (sums are exact to this unit)."""
        self.decoders = decoders
        self._cache: OrderedDict[tuple[Any, ...], CompiledSql] = OrderedDict()
        self._cache_size = cache_size

    def statement(self, query: AggregateQuery) -> tuple[CompiledSql, list[Any]]:
        key = (self.lists.shape(query.scope), query.groups, query.measures, query.sort)
        compiled = self._cache.get(key)
        if compiled is None:
            compiled = self._compile(query)
            self._cache[key] = compiled
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        params = self.lists.parameters(query.scope)
        params["limit"] = query.scope.limit + 1
        return compiled, compiled.args(params)

    def _compile(self, query: AggregateQuery) -> CompiledSql:
        table = self.lists.columns.table
        outputs: dict[str, ColumnElement[Any]] = {}
        for group in query.groups:
            outputs[group.key] = self._group_expression(group)
        outputs["count"] = func.count()
        for measure in query.measures:
            column = table.c[measure.field]
            if measure.function in SUMMED:
                summable = self._summable(measure.field)
                if self.dialect_name == "sqlite":
                    outputs[f"{measure.field}__sum"] = func.sum(summable.op("&")(_LOW_BITS))
                    outputs[f"{measure.field}__hi"] = func.sum(summable.op(">>")(32))
                else:
                    outputs[f"{measure.field}__sum"] = func.sum(summable)
                outputs[f"{measure.field}__n"] = func.count(column)
            else:
                outputs[measure.key] = getattr(func, measure.function)(column)
        statement = select(*(expr.label(f"k{i}") for i, expr in enumerate(outputs.values())))
        statement = statement.select_from(table)
        conditions = self.lists.conditions(query.scope)
        if conditions:
            statement = statement.where(and_(*conditions))
        group_exprs = [outputs[g.key] for g in query.groups]
        if group_exprs:
            statement = statement.group_by(*group_exprs)
        statement = statement.order_by(*self._order_by(query, outputs))
        statement = statement.limit(bindparam("limit"))
        return compile_sql(statement, self.dialect)

    def _group_expression(self, group: Grouping) -> ColumnElement[Any]:
        column = self.lists.columns.table.c[group.field]
        if group.bucket is None:
            return column
        if self.dialect_name == "sqlite":
            # Dates and datetimes are stored as fixed-width UTC ISO text: a bucket is its
            # prefix (strftime rounds 9999-12-31T23:59:59.9999995 into the year 10000).
            return func.substr(column, 1, _SQLITE_PREFIX[group.bucket])
        bucketed: ColumnElement[Any] = column
        if self.lists.columns.columns[group.field].type is FieldType.DATETIME:
            # Buckets of UTC days, as on SQLite, whatever the server's TimeZone setting.
            bucketed = func.timezone("UTC", column)
        # asyncpg stores Python's first and last day (instant) as -infinity and infinity,
        # which to_char turns into NULL: they are the year 1 and the year 9999.
        first, last = _EDGE_BUCKETS[group.bucket]
        return case(
            (column == literal_column("'-infinity'"), literal_column(f"'{first}'")),
            (column == literal_column("'infinity'"), literal_column(f"'{last}'")),
            else_=func.to_char(bucketed, _POSTGRES_FORMATS[group.bucket]),
        )

    def _summable(self, name: str) -> ColumnElement[Any]:
        return self.lists.columns.table.c[name]  # on SQLite a decimal is a scaled integer

    def _order_by(self, query: AggregateQuery, outputs: dict[str, ColumnElement[Any]]) -> list[Any]:
        order = []
        sort = query.sort or tuple((g.key, False) for g in query.groups)
        for key, descending in sort:
            name = key.removesuffix("__avg").removesuffix("__sum")
            total: ColumnElement[Any] | None
            if self.dialect_name == "sqlite" and f"{name}__hi" in outputs:
                total = outputs[f"{name}__hi"] * float(2**32) + outputs[f"{name}__sum"]
            else:
                total = outputs.get(f"{name}__sum")
            if key.endswith("__sum") and total is not None:
                expression = total
            elif key in outputs:
                expression = outputs[key]
            else:  # an average: order by the exact sum over the count
                assert total is not None
                expression = (total * 1.0) / func.nullif(outputs[f"{name}__n"], 0)
            ordered = expression.desc() if descending else expression.asc()
            order.append(ordered.nulls_last())
        return order

    def decode(self, query: AggregateQuery, rows: Sequence[Sequence[Any]]) -> AggregateResult:
        truncated = len(rows) > query.scope.limit
        keys = _selected_keys(query, sqlite=self.dialect_name == "sqlite")
        result = []
        for row in rows[: query.scope.limit]:
            raw = dict(zip(keys, row, strict=True))
            out: dict[str, Any] = {}
            for group in query.groups:
                value = raw[group.key]
                out[group.key] = value if group.bucket else self._decoded(group.field, value)
            out["count"] = int(raw["count"])
            for measure in query.measures:
                out[measure.key] = self._measure(measure, raw)
            result.append(out)
        return AggregateResult(result, truncated)

    def _decoded(self, name: str, value: Any) -> Any:
        decoder = self.decoders.get(name)
        if value is None or decoder is None:
            return value
        return decoder(value)

    def _measure(self, measure: Measure, raw: dict[str, Any]) -> Any:
        if measure.function in {"min", "max"}:
            return self._decoded(measure.field, raw[measure.key])
        total, count = raw[f"{measure.field}__sum"], int(raw[f"{measure.field}__n"] or 0)
        if total is not None and f"{measure.field}__hi" in raw:
            total = int(raw[f"{measure.field}__hi"]) * 2**32 + int(total)
        scale = self.scales.get(measure.field)
        exact = self._exact_sum(total, scale) if count else None
        if measure.function == "sum":
            if exact is None:
                return Decimal(0).scaleb(-scale) if scale else 0
            if isinstance(exact, int) and not INT64_MIN <= exact <= INT64_MAX:
                return Decimal(exact)
            return exact
        if exact is None:
            return None
        places = Decimal(1).scaleb(-(scale if scale is not None else 2))
        return _EXACT.divide(Decimal(exact), count).quantize(places, context=_EXACT)

    def _exact_sum(self, total: Any, scale: int | None) -> Any:
        if total is None:
            return None
        if scale is None:
            return int(total)
        quantum = Decimal(1).scaleb(-scale)
        if self.dialect_name == "sqlite":
            return (
                Decimal(int(total)).scaleb(-scale, context=_EXACT).quantize(quantum, context=_EXACT)
            )
        return Decimal(total).quantize(quantum, context=_EXACT)


def _selected_keys(query: AggregateQuery, *, sqlite: bool) -> list[str]:
    """The columns the SQL selects, in order: group keys, the count, then each measure's
    (a sum and an average of one field share the exact sum and the count of values; on
    SQLite the sum of the low 32 bits, then of the high bits)."""
    keys = [g.key for g in query.groups] + ["count"]
    for measure in query.measures:
        if measure.function in SUMMED:
            keys.append(f"{measure.field}__sum")
            if sqlite:
                keys.append(f"{measure.field}__hi")
            keys.append(f"{measure.field}__n")
        else:
            keys.append(measure.key)
    return list(dict.fromkeys(keys))
