"""List queries (SPEC §4): parse the request's parameters, then build and cache SQL.

Parsing accepts only declared fields and known operators and binds every value as a
parameter. The SQL of a list is compiled once per *shape* (which filters, operators,
sort keys, sparse fields...) and cached; requests of the same shape only bind values.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import BigInteger, String, and_, bindparam, false, func, or_, select

from engine.access import filter_clause
from engine.errors import BadQuery
from engine.fieldtypes import InvalidValue, kind_of_type, parse_id
from engine.fieldtypes._base import unstorable
from engine.fieldtypes.choice import parse_boolean
from engine.fieldtypes.numeric import fit_decimal, parse_integer
from engine.fieldtypes.people import UserByName
from engine.operators import operator, split_csv
from engine.operators.text import like_escape
from engine.sql import CompiledSql, compile_sql
from engine.tables import user_table
from metadata import FILTER_OPERATORS, RESERVED_PARAMETERS, FieldType
from metadata._errors import did_you_mean
from metadata._fieldkeys import TEXTUAL_TYPES
from metadata._operators import Arity

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy import ColumnElement, Select, Table
    from sqlalchemy.engine import Dialect

    from metadata import RecordFilter

__all__ = ["split_csv"]
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_SORT_KEYS = 5
MAX_Q_LENGTH = 200

OPERATORS = FILTER_OPERATORS


@dataclass(frozen=True, slots=True)
class QueryColumn:
    """What the query layer needs to know about one filterable, sortable column."""

    name: str
    type: FieldType | None
    nullable: bool
    to_db: Callable[[Any], Any] | None
    target: str | None = None
    """Qualified entity name a reference column points at."""

    def parse(self, text: str, decimal: tuple[int, int] | None = None) -> Any:
        """The bound value of ``text`` for this column; ``decimal`` is the column's
        (precision, scale), which a decimal value must fit (PostgreSQL would otherwise
        round it to the column's type, or fail)."""
        parser = kind_of_type(self.type).filter_parser() if self.type else parse_id
        if parser is None:
            problem = unstorable(text)
            if problem is not None:
                raise InvalidValue("format", problem)
            value: Any = text
        else:
            value = parser(text)
        if decimal is not None:
            value = fit_decimal(value, *decimal)
        return self.to_db(value) if self.to_db else value

    @property
    def textual(self) -> bool:
        return self.type in TEXTUAL_TYPES


@dataclass(frozen=True, slots=True)
class QueryColumns:
    """The queryable columns of one entity, plus how to reach referenced entities."""

    entity: str
    table: Table
    columns: dict[str, QueryColumn]
    search: tuple[str, ...]
    expandable: tuple[str, ...]
    all_fields: tuple[str, ...]
    """Names a client may ask for with ``fields=`` (columns, children, system fields)."""
    uncompared: tuple[tuple[str, FieldType], ...] = ()
    """The fields that are no column here: ``file`` and ``json`` fields (documents) and
    line items. None is sorted or grouped on; only a file field filters, on whether it
    holds a file (``receipt__isnull=false``)."""

    def refusal(self, name: str, purpose: str) -> BadQuery | None:
        """Why ``name`` cannot be used to ``purpose`` (``sort on``, ``group by``); None when
        it is no field here at all."""
        kind = dict(self.uncompared).get(name)
        if kind is None:
            return None
        if kind is FieldType.FILE:
            return BadQuery(
                f"cannot {purpose} '{name}': it is a file field, which lists filter only by "
                f"whether it holds a file ({name}__isnull=false: it does; true: it does not)"
            )
        what = "line items" if kind is FieldType.CHILDREN else f"a {kind.value} field"
        return BadQuery(
            f"cannot {purpose} '{name}': it is {what}, which lists do not filter, sort or group on"
        )

    def parse(self, column: QueryColumn, text: str) -> Any:
        """``column.parse`` with the column's decimal precision and scale, if it has them."""
        decimal = None
        if column.type is FieldType.DECIMAL:
            kind = self.table.c[column.name].type
            decimal = (getattr(kind, "precision", None) or 18, getattr(kind, "scale", None) or 0)
        return column.parse(text, decimal)


@dataclass(frozen=True, slots=True)
class Filter:
    column: str
    subfield: str | None
    op: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class ListRestriction:
    """What a caller's roles add to a list query: the records their grant covers, the
    records covered in each entity a ``ref__field`` filter reaches into (by column), and
    the fields ``q`` must not search because the caller may not see them."""

    records: RecordFilter | None = None
    targets: tuple[tuple[str, RecordFilter], ...] = ()
    unsearchable: frozenset[str] = frozenset()
    user: tuple[tuple[str, Any], ...] = ()
    """Values of the user parameters (``u_id``...), not part of the query's shape."""

    def shape(self) -> tuple[Any, ...]:
        return (self.records, self.targets, self.unsearchable)


@dataclass(frozen=True, slots=True)
class ListQuery:
    filters: tuple[Filter, ...] = ()
    sort: tuple[tuple[str, bool], ...] = ()
    """(column, descending) pairs, without the id tie-breaker."""
    id_descending: bool = False
    """The direction of the id tie-breaker (``sort=-id``, or ``sort=…,-id``)."""
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    cursor: tuple[Any, ...] | None = None
    fields: tuple[str, ...] | None = None
    expand: tuple[str, ...] = ()
    count: bool = False
    q: str | None = None
    restriction: ListRestriction | None = None

    def sort_text(self) -> str:
        keys = [("-" if desc else "") + name for name, desc in self.sort]
        if self.id_descending:
            keys.append("-id")
        return ",".join(keys)


def check_parameters(params: Sequence[tuple[str, str]]) -> None:
    """400 naming the parameter whose name or value holds a NUL character or an unpaired
    surrogate: neither can be compared with what a database stores (PostgreSQL refuses
    U+0000 outright), so no parameter may carry one."""
    for key, value in params:
        problem = unstorable(key) or unstorable(value)
        if problem is not None:
            shown = key.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\u0000")
            raise BadQuery(f"'{shown}' {problem}")


def _int_parameter(text: str, parameter: str, low: int, high: int) -> int:
    try:
        value = parse_integer(text)
    except InvalidValue:
        raise BadQuery(f"'{parameter}' must be a whole number, not '{text}'") from None
    if not low <= value <= high:
        raise BadQuery(f"'{parameter}' must be between {low} and {high}")
    return value


class QueryParser:
    """Turns query-string pairs into a ``ListQuery`` for one entity."""

    def __init__(self, columns: QueryColumns, lookup: Callable[[str], QueryColumns]) -> None:
        self.columns = columns
        self.lookup = lookup

    def parse(self, params: Sequence[tuple[str, str]]) -> ListQuery:
        check_parameters(params)
        options: dict[str, str] = {}
        filters: list[Filter] = []
        for key, value in params:
            if key in RESERVED_PARAMETERS:
                if key in options:
                    raise BadQuery(f"'{key}' is given more than once")
                options[key] = value
            else:
                filters.append(self._filter(key, value))
        sort, id_descending = self._sort(options.get("sort"))
        cursor = (
            self._cursor(options["cursor"], sort, id_descending) if "cursor" in options else None
        )
        if cursor is not None and "offset" in options:
            raise BadQuery("use either 'offset' or 'cursor', not both")
        q = options.get("q")
        if q is not None and len(q) > MAX_Q_LENGTH:
            raise BadQuery(f"'q' is longer than {MAX_Q_LENGTH} characters")
        return ListQuery(
            filters=tuple(filters),
            sort=sort,
            id_descending=id_descending,
            limit=_int_parameter(options.get("limit", str(DEFAULT_LIMIT)), "limit", 1, MAX_LIMIT),
            offset=_int_parameter(options.get("offset", "0"), "offset", 0, 10**9),
            cursor=cursor,
            fields=self._fields(options.get("fields")),
            expand=self._expand(options.get("expand")),
            count=self._boolean(options.get("count", "false"), "count"),
            q=q or None,
        )

    def after(self, query: ListQuery, next_cursor: str) -> ListQuery:
        """The page after the one that answered ``next_cursor``."""
        cursor = self._cursor(next_cursor, query.sort, query.id_descending)
        return dataclasses.replace(query, cursor=cursor, offset=0)

    def _column(self, columns: QueryColumns, name: str, purpose: str) -> QueryColumn:
        column = columns.columns.get(name)
        if column is None:
            refused = columns.refusal(name, f"{purpose} on")
            if refused is not None:
                raise refused
            hint = did_you_mean(name, columns.columns)
            raise BadQuery(
                f"cannot {purpose} on '{name}': {columns.entity} has no such field{hint}"
            )
        return column

    def _filter(self, key: str, text: str) -> Filter:
        parts = key.split("__")
        if len(parts) > 3 or not all(parts):
            raise BadQuery(f"'{key}' is not a valid filter")
        if parts[1:] == ["isnull"] and (parts[0], FieldType.FILE) in self.columns.uncompared:
            return Filter(parts[0], None, "isnull", operator("isnull").values(text, str, key))
        column = self._column(self.columns, parts[0], "filter")
        rest = parts[1:]
        subfield: str | None = None
        target, owner = column, self.columns
        if rest and rest[0] not in OPERATORS:
            if column.target is None:
                hint = did_you_mean(rest[0], OPERATORS)
                raise BadQuery(f"unknown filter operator '{rest[0]}'{hint}")
            subfield = rest.pop(0)
            owner = self.lookup(column.target)
            target = self._column(owner, subfield, "filter")
        if len(rest) > 1:
            raise BadQuery(f"'{key}' is not a valid filter")
        op = rest[0] if rest else "eq"
        if op not in OPERATORS:
            raise BadQuery(f"unknown filter operator '{op}'{did_you_mean(op, OPERATORS)}")
        values = self._filter_values(owner, target, op, text, key)
        return Filter(column.name, subfield, op, values)

    def _filter_values(
        self, owner: QueryColumns, column: QueryColumn, op: str, text: str, key: str
    ) -> tuple[Any, ...]:
        found = operator(op)
        if not found.spec.applies_to(column.type):
            raise BadQuery(
                f"'{op}' applies to {found.spec.fields_text()} fields; '{column.name}' is not one"
            )
        try:
            return found.values(text, lambda item: owner.parse(column, item), key)
        except InvalidValue as exc:
            raise BadQuery(f"'{key}': {exc.message}") from None

    @staticmethod
    def _boolean(text: str, parameter: str) -> bool:
        try:
            return parse_boolean(text)
        except InvalidValue:
            raise BadQuery(f"'{parameter}' must be true or false") from None

    def _sort(self, text: str | None) -> tuple[tuple[tuple[str, bool], ...], bool]:
        """The sort keys, and the direction of the id that ends them: a last key ``id``
        (or ``-id``) is the tie-breaker every list ends with, in the direction asked."""
        if not text:
            return (), False
        keys = []
        for item in split_csv(text, "sort"):
            name = item.removeprefix("-")
            self._column(self.columns, name, "sort")
            keys.append((name, item.startswith("-")))
        names = [name for name, _ in keys]
        if len(set(names)) != len(names):
            raise BadQuery("'sort' names a field twice")
        if len(keys) > MAX_SORT_KEYS:
            raise BadQuery(f"'sort' takes at most {MAX_SORT_KEYS} fields")
        id_descending = False
        if names[-1:] == ["id"]:
            id_descending = keys.pop()[1]
        return tuple(keys), id_descending

    def _fields(self, text: str | None) -> tuple[str, ...] | None:
        if text is None:
            return None
        names = split_csv(text, "fields")
        for name in names:
            if name not in self.columns.all_fields:
                hint = did_you_mean(name, self.columns.all_fields)
                raise BadQuery(f"'fields': {self.columns.entity} has no field '{name}'{hint}")
        return tuple(dict.fromkeys(names))

    def _expand(self, text: str | None) -> tuple[str, ...]:
        if text is None:
            return ()
        names = split_csv(text, "expand")
        for name in names:
            if name not in self.columns.expandable:
                hint = did_you_mean(name, self.columns.expandable)
                raise BadQuery(f"'expand': '{name}' is not a reference field{hint}")
        return tuple(dict.fromkeys(names))

    def _cursor(
        self, text: str, sort: tuple[tuple[str, bool], ...], id_descending: bool
    ) -> tuple[Any, ...]:
        try:
            payload = orjson.loads(
                base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
            )
            sort_text, values = payload["s"], payload["v"]
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise BadQuery("'cursor' is not a cursor this API returned") from None
        expected = ListQuery(sort=sort, id_descending=id_descending).sort_text()
        if sort_text != expected or not isinstance(values, list) or len(values) != len(sort) + 1:
            raise BadQuery("'cursor' belongs to a different sort order; start again without it")
        try:
            parsed = [
                None if value is None else self._cursor_value(self.columns.columns[name], value)
                for (name, _), value in zip(sort, values, strict=False)
            ]
            parsed.append(parse_id(values[-1]))
        except (InvalidValue, TypeError):
            raise BadQuery("'cursor' is damaged") from None
        return tuple(parsed)

    def _cursor_value(self, column: QueryColumn, value: Any) -> Any:
        text = str(value)
        if column.type is FieldType.DATETIME and _NAIVE_DATETIME.fullmatch(text):
            # asyncpg reads Python's first and last instants (stored as -infinity and
            # infinity) without their UTC offset; a cursor may carry one as it was read.
            text += "+00:00"
        return self.columns.parse(column, text)


_NAIVE_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?")


def encode_cursor(query: ListQuery, values: Sequence[Any]) -> str:
    payload = orjson.dumps({"s": query.sort_text(), "v": list(values)}, default=str)
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


class ListSqlBuilder:
    """Builds list and count SQL for one entity; compiled SQL is cached per query shape."""

    def __init__(
        self,
        columns: QueryColumns,
        lookup: Callable[[str], QueryColumns],
        *,
        dialect: Dialect,
        dialect_name: str,
        select_columns: Callable[[tuple[str, ...] | None], list[ColumnElement[Any]]],
        cache_size: int = 512,
    ) -> None:
        self.columns = columns
        self.lookup = lookup
        self.dialect = dialect
        self.dialect_name = dialect_name
        self.select_columns = select_columns
        self._cache: OrderedDict[tuple[Any, ...], tuple[CompiledSql, CompiledSql | None]] = (
            OrderedDict()
        )
        self._cache_size = cache_size

    def statements(self, query: ListQuery) -> tuple[CompiledSql, CompiledSql | None, list[Any]]:
        """(list SQL, count SQL or None, positional args of the list SQL)."""
        key = self.shape(query)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._compile(query)
            self._cache[key] = cached
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        params = self.parameters(query)
        return cached[0], cached[1], cached[0].args(params)

    def count_args(self, compiled: CompiledSql, query: ListQuery) -> list[Any]:
        return compiled.args(self.parameters(query))

    @staticmethod
    def shape(query: ListQuery) -> tuple[Any, ...]:
        """What decides the SQL text of a query (not its values): the cache key."""
        filters = tuple(
            (f.column, f.subfield, f.op, operator(f.op).shape(f.values)) for f in query.filters
        )
        cursor = None if query.cursor is None else tuple(v is None for v in query.cursor)
        restriction = query.restriction.shape() if query.restriction is not None else None
        return (
            filters,
            query.sort,
            query.id_descending,
            query.fields,
            query.q is not None,
            cursor,
            query.count,
            restriction,
        )

    def parameters(self, query: ListQuery) -> dict[str, Any]:
        """Values of every parameter the query's SQL may name (by name)."""
        params: dict[str, Any] = {"limit": query.limit + 1, "offset": query.offset}
        for i, flt in enumerate(query.filters):
            found = operator(flt.op)
            if found.spec.arity is Arity.FLAG:
                continue
            users = self._is_user_column(flt)
            for j, value in enumerate(flt.values):
                if users:  # a user's name, or its id (``_operator``)
                    named = isinstance(value, UserByName)
                    params[f"f{i}_{j}"] = value.username if named else None
                    params[f"f{i}_{j}_id"] = None if named else value
                else:
                    params[f"f{i}_{j}"] = found.operand(value)
        if query.q is not None:
            params["q"] = f"%{like_escape(query.q)}%"
        if query.cursor is not None:
            for k, value in enumerate(query.cursor):
                params[f"c{k}"] = value
        if query.restriction is not None:
            params.update(query.restriction.user)
        return params

    def conditions(self, query: ListQuery) -> list[ColumnElement[bool]]:
        """The WHERE conditions of the query's filters, ``q`` and restriction (no cursor):
        which records the query covers, for lists, counts and aggregates alike."""
        restriction = query.restriction
        targets = dict(restriction.targets) if restriction is not None else {}
        conditions = [
            self._condition(i, f, targets.get(f.column)) for i, f in enumerate(query.filters)
        ]
        if restriction is not None and restriction.records is not None:
            conditions.append(
                filter_clause(
                    restriction.records, self.columns.table, dialect_name=self.dialect_name
                )
            )
        if query.q is not None:
            hidden = restriction.unsearchable if restriction is not None else frozenset()
            conditions.append(self._search_condition(hidden))
        return conditions

    def _compile(self, query: ListQuery) -> tuple[CompiledSql, CompiledSql | None]:
        table = self.columns.table
        conditions = self.conditions(query)
        statement: Select[Any] = select(*self.select_columns(query.fields)).select_from(table)
        count_statement = None
        if query.count:
            count_statement = select(func.count()).select_from(table)
            if conditions:
                count_statement = count_statement.where(and_(*conditions))
        if query.cursor is not None:
            conditions.append(self._keyset_condition(query))
        if conditions:
            statement = statement.where(and_(*conditions))
        statement = statement.order_by(*self._order_by(query))
        statement = statement.limit(bindparam("limit")).offset(bindparam("offset"))
        count_sql = (
            compile_sql(count_statement, self.dialect) if count_statement is not None else None
        )
        return compile_sql(statement, self.dialect), count_sql

    def _condition(
        self, index: int, flt: Filter, target_filter: RecordFilter | None = None
    ) -> ColumnElement[bool]:
        table = self.columns.table
        column = table.c[flt.column]
        if flt.subfield is None:
            return self._operator(column, flt, index)
        target_info = self.columns.columns[flt.column]
        assert target_info.target is not None
        target = self.lookup(target_info.target).table
        inner = select(target.c.id).where(self._operator(target.c[flt.subfield], flt, index))
        if target_filter is not None:
            inner = inner.where(
                filter_clause(target_filter, target, f"t{index}_", self.dialect_name)
            )
        return column.in_(inner.scalar_subquery())

    def _operator(self, column: Any, flt: Filter, index: int) -> ColumnElement[bool]:
        found = operator(flt.op)
        if found.spec.arity is Arity.FLAG:
            return found.sql(column, (), flt.values)
        params: list[Any] = [bindparam(f"f{index}_{j}") for j in range(len(flt.values))]
        if self._is_user_column(flt):
            params = [_user_operand(f"f{index}_{j}") for j in range(len(flt.values))]
        return found.sql(column, params, flt.values)

    def _is_user_column(self, flt: Filter) -> bool:
        if flt.subfield is not None:
            return False
        found = self.columns.columns.get(flt.column)
        return found is not None and found.type is FieldType.USER

    def _search_condition(self, hidden: frozenset[str]) -> ColumnElement[bool]:
        table = self.columns.table
        searched = [name for name in self.columns.search if name not in hidden]
        if not searched:
            return false()
        pattern: Any = bindparam("q")
        return or_(
            *(func.lower(table.c[name]).like(func.lower(pattern), escape="!") for name in searched)
        )

    def _order_by(self, query: ListQuery) -> list[Any]:
        table = self.columns.table
        order = []
        for name, descending in query.sort:
            column = table.c[name]
            expression = column.desc() if descending else column.asc()
            if self.columns.columns[name].nullable:
                expression = expression.nulls_last()
            order.append(expression)
        order.append(table.c.id.desc() if query.id_descending else table.c.id.asc())
        return order

    def _keyset_condition(self, query: ListQuery) -> ColumnElement[bool]:
        """Rows strictly after the cursor in (sort keys..., id) order, NULLs sorting last."""
        assert query.cursor is not None
        table = self.columns.table
        keys = [(name, desc, self.columns.columns[name].nullable) for name, desc in query.sort]
        keys.append(("id", query.id_descending, False))
        alternatives = []
        equal_so_far: list[ColumnElement[bool]] = []
        for k, (name, descending, nullable) in enumerate(keys):
            column = table.c[name]
            value = query.cursor[k]
            if value is None:
                after: ColumnElement[bool] = false()
                equal: ColumnElement[bool] = column.is_(None)
            else:
                param: Any = bindparam(f"c{k}")
                after = column < param if descending else column > param
                if nullable:
                    after = or_(after, column.is_(None))
                equal = column == param
            alternatives.append(and_(*equal_so_far, after))
            equal_so_far.append(equal)
        return or_(*alternatives)


def _user_operand(name: str) -> Any:
    """A user field's filter value: the id of the user named ``:<name>`` (none when no user
    has that name), or the id ``:<name>_id`` given as such."""
    u = user_table.c
    by_name = select(u.id).where(u.username == bindparam(name, type_=String())).scalar_subquery()
    return func.coalesce(by_name, bindparam(f"{name}_id", type_=BigInteger()))
