"""The records of one entity's table: compiled once at start-up (its SQL texts, its row
decoder, its list and aggregate builders), then used by requests to read rows and to write
them, with nothing of rules, rights or the write pipeline (``engine.writes``)."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update

from engine.aggregate import AggregateParser, AggregateSqlBuilder
from engine.errors import FieldError, RecordNotFound, StaleVersion, ValidationFailed
from engine.fieldtypes import InvalidValue, id_text, kind_of
from engine.fieldtypes.temporal import sqlite_datetime_text
from engine.query import ListSqlBuilder, QueryParser, encode_cursor
from engine.sql import CompiledSql, compile_sql, id_list_condition, id_list_param
from engine.store.columns import SYSTEM_TAIL, build_decoders, query_columns
from engine.store.integrity import integrity_error, unique_conflict
from engine.store.numbering import NumberFormat, next_number
from engine.store.sql import StoreSql
from engine.tables import PARENT_COLUMN
from metadata import FieldType, NumberAssign

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from sqlalchemy import ColumnElement, Table
    from sqlalchemy.engine import Dialect

    from engine.aggregate import AggregateQuery, AggregateResult
    from engine.audit import AuditLog
    from engine.database import Connection, IntegrityViolation
    from engine.errors import Conflict
    from engine.query import ListQuery, QueryColumns
    from metadata import EntityDef, FieldDef


class KeyTaken(Exception):
    """A create that gives way to an existing key (``create_unless_taken``) inserted nothing."""


class RecordRegistry(Protocol):
    """How a record store finds the audit log and the record stores of other entities."""

    @property
    def audit(self) -> AuditLog: ...

    def records_for(self, qualified_name: str) -> RecordStore: ...


@dataclass(frozen=True, slots=True)
class ListResult:
    records: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool
    count: int | None


class RecordStore:
    def __init__(
        self,
        entity: EntityDef,
        table: Table,
        registry: RecordRegistry,
        *,
        dialect: Dialect,
        dialect_name: str,
        children: Mapping[str, RecordStore] | None = None,
    ) -> None:
        self.entity = entity
        self.table = table
        self.registry = registry
        self.dialect = dialect
        self.dialect_name = dialect_name
        self.children: dict[str, RecordStore] = dict(children or {})
        self.stored_fields: tuple[FieldDef, ...] = tuple(
            f for f in entity.fields.values() if f.is_stored
        )
        self.columns = ("id", *(f.name for f in self.stored_fields), *SYSTEM_TAIL)
        numbers = tuple(
            NumberFormat.of(f)
            for f in self.stored_fields
            if f.type is FieldType.AUTONUMBER and f.format
        )
        self.autonumbers = tuple(n for n in numbers if n.assign is NumberAssign.INSERT)
        """The autonumbers drawn as a record is inserted."""
        self.submit_numbers = tuple(n for n in numbers if n.assign is NumberAssign.SUBMIT)
        """The autonumbers drawn as a document is submitted (``assign: submit``)."""
        self.to_db = {f.name: kind_of(f).to_db(f, dialect_name) for f in self.stored_fields}
        self.timestamp: Callable[[dt.datetime], Any] = (
            sqlite_datetime_text if dialect_name == "sqlite" else (lambda v: v)
        )
        self._decoders = build_decoders(self.stored_fields, dialect_name)
        self._decimals = frozenset(
            f.name for f in self.stored_fields if f.type is FieldType.DECIMAL
        )
        """A cursor carries a decimal as its text, not as the column holds it (on SQLite, a
        scaled integer), since the cursor is parsed back like a filter value."""
        self._active_decoders = tuple(
            (name, decoder) for name, decoder in self._decoders.items() if decoder is not None
        )
        self.query_columns = query_columns(
            entity,
            table,
            self.stored_fields,
            self.to_db,
            (*self.columns, *self.children),
            dialect_name,
        )
        self.parser = QueryParser(self.query_columns, self._lookup_columns)
        self.lists = ListSqlBuilder(
            self.query_columns,
            self._lookup_columns,
            dialect=dialect,
            dialect_name=dialect_name,
            select_columns=self._select_columns,
        )
        self.aggregate_parser = AggregateParser(self.parser)
        self.aggregates = AggregateSqlBuilder(
            self.lists,
            dialect=dialect,
            dialect_name=dialect_name,
            scales={
                f.name: f.scale if f.scale is not None else 2
                for f in self.stored_fields
                if f.type is FieldType.DECIMAL
            },
            decoders=self._decoders,
        )
        self.blank_record: dict[str, Any] = {
            **dict.fromkeys(("id", *(f.name for f in self.stored_fields), *SYSTEM_TAIL)),
            **{name: [] for name in self.children},
        }
        """Every field of a record, empty: what a new record's expressions see unset."""
        self.sql = StoreSql(entity, table, self.columns, dialect=dialect, dialect_name=dialect_name)

    # -- compilation helpers ---------------------------------------------------------------

    def _lookup_columns(self, qualified_name: str) -> QueryColumns:
        return self.registry.records_for(qualified_name).query_columns

    def _select_columns(self, fields: tuple[str, ...] | None) -> list[ColumnElement[Any]]:
        names = self.columns if fields is None else self._sparse_columns(fields)
        return [self.table.c[name] for name in names]

    def _sparse_columns(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        wanted = set(fields) | {"id"}
        return tuple(name for name in self.columns if name in wanted)

    # -- decoding --------------------------------------------------------------------------

    def decode(self, row: Sequence[Any], names: Sequence[str] | None = None) -> dict[str, Any]:
        """A driver row as a record dict; only the columns that need converting are touched."""
        # sqlite3 rows are tuples; asyncpg records map their column names themselves.
        record = (
            dict(zip(names or self.columns, row, strict=True))
            if isinstance(row, tuple)
            else dict(row)
        )
        for name, decoder in self._active_decoders:
            value = record.get(name)
            if value is not None:
                record[name] = decoder(value)
        return record

    def encode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        encoded = {}
        for name, value in values.items():
            converter = self.to_db.get(name)
            try:
                encoded[name] = (
                    converter(value) if converter is not None and value is not None else (value)
                )
            except InvalidValue as exc:  # the database cannot hold it (a decimal on SQLite)
                raise ValidationFailed([FieldError(name, exc.code, exc.message)]) from None
        return encoded

    def ordered(
        self, record: dict[str, Any], fields: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """Children belong between the declared fields and the system fields."""
        if not self.children or (fields is not None and not set(fields) & set(self.children)):
            return record
        ordered = {}
        for name in ("id", *self.entity.fields):
            if name in record:
                ordered[name] = record[name]
        for name in SYSTEM_TAIL:
            if name in record:
                ordered[name] = record[name]
        return ordered

    # -- reads -----------------------------------------------------------------------------

    async def get(self, conn: Connection, record_id: int) -> dict[str, Any]:
        if self.children and self.dialect_name == "postgresql":
            return await self._get_with_lines(conn, record_id)
        row = await conn.fetchrow(self.sql.get.sql, (record_id,))
        if row is None:
            raise RecordNotFound(f"no {self.entity.qualified_name} record with id {record_id}")
        record = self.decode(row)
        if self.children:
            await self.attach_children(conn, [record])
            record = self.ordered(record)
        return record

    async def _get_with_lines(self, conn: Connection, record_id: int) -> dict[str, Any]:
        """``get`` of a record with lines in one statement (``StoreSql.get_with_lines``)."""
        children = list(self.children.items())
        sql = self.sql.get_with_lines([child.sql for _, child in children])
        rows = await conn.fetch(sql.sql, sql.args({"id": record_id}))
        if not rows or rows[0][0] != 0:
            raise RecordNotFound(f"no {self.entity.qualified_name} record with id {record_id}")
        bounds = self._line_blocks
        start, end = bounds[0]
        record = self.decode(tuple(rows[0])[start:end])
        for name, _ in children:
            record[name] = []
        for row in rows[1:]:
            block = row[0]
            start, end = bounds[block]
            name, child = children[block - 1]
            record[name].append(child.decode(tuple(row)[start:end]))
        return self.ordered(record)

    @functools.cached_property
    def _line_blocks(self) -> list[tuple[int, int]]:
        """Where the record's columns and each child's are in a row of ``get_with_lines``
        (after its block and position)."""
        bounds = []
        start = 2
        for store in (self, *self.children.values()):
            bounds.append((start, start + len(store.columns)))
            start += len(store.columns)
        return bounds

    async def get_many(self, conn: Connection, ids: Sequence[int]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        rows = await conn.fetch(self.sql.get_many.sql, (id_list_param(ids, self.dialect_name),))
        records = [self.decode(row) for row in rows]
        if self.children:
            await self.attach_children(conn, records)
            records = [self.ordered(r) for r in records]
        return {r["id"]: r for r in records}

    async def list_page(self, conn: Connection, query: ListQuery) -> ListResult:
        list_sql, count_sql, args = self.lists.statements(query)
        rows = await conn.fetch(list_sql.sql, args)
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        names = self.columns if query.fields is None else self._sparse_columns(query.fields)
        records = [self.decode(row, names) for row in rows]
        next_cursor = None
        if has_more and records:
            last = rows[-1]
            position = {name: i for i, name in enumerate(names)}
            try:
                values = [
                    records[-1][name] if name in self._decimals else last[position[name]]
                    for name, _ in query.sort
                ] + [last[position["id"]]]
            except KeyError:
                values = None
            if values is not None:
                next_cursor = encode_cursor(query, [_cursor_value(v) for v in values])
        count = None
        if count_sql is not None:
            count_row = await conn.fetchrow(count_sql.sql, self.lists.count_args(count_sql, query))
            count = int(count_row[0]) if count_row else 0
        if self.children and (query.fields is None or set(query.fields) & set(self.children)):
            await self.attach_children(conn, records, query.fields)
            records = [self.ordered(r, query.fields) for r in records]
        for name in query.expand:
            await self._expand(conn, records, name)
        return ListResult(records, next_cursor, has_more, count)

    async def aggregate(self, conn: Connection, query: AggregateQuery) -> AggregateResult:
        compiled, args = self.aggregates.statement(query)
        rows = await conn.fetch(compiled.sql, args)
        return self.aggregates.decode(query, rows)

    async def _expand(self, conn: Connection, records: list[dict[str, Any]], name: str) -> None:
        target = self.registry.records_for(self.entity.fields[name].to or "")
        ids = {int(r[name]) for r in records if r.get(name) is not None}
        found = await target.get_many(conn, sorted(ids))
        for record in records:
            if record.get(name) is not None:
                record[name] = found.get(record[name], record[name])

    async def expand_one(
        self, conn: Connection, record: dict[str, Any], names: Sequence[str]
    ) -> None:
        for name in names:
            await self._expand(conn, [record], name)

    async def attach_children(
        self, conn: Connection, records: list[dict[str, Any]], fields: tuple[str, ...] | None = None
    ) -> None:
        ids = [int(r["id"]) for r in records]
        by_id = {r["id"]: r for r in records}
        for name, child in self.children.items():
            if fields is not None and name not in fields:
                continue
            for record in records:
                record[name] = []
            rows = await conn.fetch(
                child.sql.children_of.sql, (id_list_param(ids, self.dialect_name),)
            )
            for row in rows:
                line = child.decode(tuple(row)[1:])
                by_id[id_text(row[0])][name].append(line)

    async def id_by_unique(
        self, conn: Connection, field_name: str, value: Any, *, lock: bool = False
    ) -> int | None:
        """The id of the record whose unique ``field_name`` is ``value``; ``lock``: locked
        until the transaction ends (PostgreSQL's ``FOR UPDATE``)."""
        field = self.entity.fields.get(field_name)
        if field is None or field_name not in self.entity.unique_fields():
            unique = ", ".join(self.entity.unique_fields()) or "none"
            raise InvalidValue(
                "reference",
                f"'{field_name}' is not a unique field of {self.entity.qualified_name} "
                f"(unique fields: {unique})",
            )
        coerced = kind_of(field).coercer(field)(value)
        converter = self.to_db[field_name]
        sql = self.sql.id_by_field(field_name, lock=lock)
        row = await conn.fetchrow(sql.sql, (converter(coerced) if converter else coerced,))
        return int(row[0]) if row else None

    async def parent_id(self, conn: Connection, line_id: int) -> int | None:
        """The id of the record a line belongs to (a line item entity's); None when there
        is no such line. Who may see the line is its parent's business (read it next)."""
        if not self.entity.is_child:
            raise TypeError(f"{self.entity.qualified_name} is not a line item entity")
        row = await conn.fetchrow(self.sql.parent_of.sql, self.sql.parent_of.args({"id": line_id}))
        return int(row[0]) if row and row[0] is not None else None

    async def touch_documents(self, conn: Connection, line_ids: Sequence[int]) -> None:
        """Before lines are written on their own (a rule's action, a posting's adjust, a
        rollup kept on a line), lock their parents' rows, in id order, and move their
        version on: a line is part of its document. The parent is locked before its lines,
        as a write of the parent itself locks them, so the two cannot deadlock; and a write
        of the parent that read its lines before this one committed fails its version check
        (a document's submit or edit answers 412) or, unversioned, recomputes the rollups
        it would otherwise have moved by the lines' stale values."""
        if not line_ids:
            return
        sql = self._touch_parents
        await conn.execute(sql.sql, sql.args({"ids": id_list_param(line_ids, self.dialect_name)}))

    @functools.cached_property
    def _touch_parents(self) -> CompiledSql:
        if not self.entity.is_child or not self.entity.parent:
            raise TypeError(f"{self.entity.qualified_name} is not a line item entity")
        parent = self.registry.records_for(self.entity.parent).table
        lines = self.table
        parents_of_lines = select(lines.c[PARENT_COLUMN]).where(
            id_list_condition(lines.c.id, self.dialect_name, "ids")
        )
        if self.dialect_name == "postgresql":
            locked = (
                select(parent.c.id)
                .where(parent.c.id.in_(parents_of_lines.scalar_subquery()))
                .order_by(parent.c.id)
                .with_for_update(key_share=True)
                .cte("touched")
            )
            statement = (
                update(parent)
                .where(parent.c.id == locked.c.id)
                .values(version=parent.c.version + 1)
            )
        else:  # one writer at a time: nothing to lock
            statement = (
                update(parent)
                .where(parent.c.id.in_(parents_of_lines.scalar_subquery()))
                .values(version=parent.c.version + 1)
            )
        return compile_sql(statement, self.dialect)

    async def ids_where(self, conn: Connection, values: Mapping[str, Any]) -> list[int]:
        """The ids, in order, of the records whose fields equal ``values`` (each coerced
        like an input of its field; None matches an empty field). ``id`` is the record's
        id, and a line entity's ``_parent`` its parent's."""
        params: dict[str, Any] = {}
        shape = []
        for name, value in values.items():
            shape.append((name, value is None))
            if value is not None and (
                name == "id" or (name == PARENT_COLUMN and self.entity.is_child)
            ):
                params[name] = _id_of(value)
            elif value is not None:
                coerced = kind_of(self.entity.fields[name]).coercer(self.entity.fields[name])(value)
                converter = self.to_db.get(name)
                params[name] = converter(coerced) if converter is not None else coerced
        sql = self.sql.ids_by_fields(tuple(shape))
        return [int(row[0]) for row in await conn.fetch(sql.sql, sql.args(params))]

    # -- writes ----------------------------------------------------------------------------

    async def number(self, conn: Connection, values: dict[str, Any]) -> None:
        """Draw the next number of each autonumber numbered at insert into ``values``."""
        for number in self.autonumbers:
            values[number.field] = await next_number(conn, self.sql, number, values)

    async def number_at_submit(self, conn: Connection, record: Mapping[str, Any]) -> dict[str, str]:
        """The numbers of the autonumbers ``assign: submit`` that ``record`` (a draft being
        submitted) has none of yet, drawn in the submit's transaction (or, ``gapless:
        false``, committed at once: engine/store/numbering.py)."""
        return {
            number.field: await next_number(conn, self.sql, number, record)
            for number in self.submit_numbers
            if record.get(number.field) is None
        }

    async def raise_missing_or_stale(
        self, conn: Connection, record_id: int, expected_version: int | None
    ) -> None:
        row = await conn.fetchrow(self.sql.version.sql, (record_id,))
        if row is None:
            raise RecordNotFound(f"no {self.entity.qualified_name} record with id {record_id}")
        raise StaleVersion(
            f"the record is at version {row[0]}, not {expected_version}; "
            "read it again and reapply your change"
        )

    def unique_conflict(self, fields: Sequence[str]) -> Conflict:
        return unique_conflict(self.entity, fields)

    async def integrity_error(
        self, conn: Connection, exc: IntegrityViolation, values: Mapping[str, Any]
    ) -> Exception:
        """What a write of ``values`` that the database refused answers."""

        async def missing() -> list[str]:
            """The reference fields of ``values`` whose record does not exist."""
            found = []
            for field in self.stored_fields:
                value = values.get(field.name)
                if field.type is FieldType.REFERENCE and isinstance(value, int):
                    target = self.registry.records_for(field.to or "")
                    if not await target.get_many(conn, [value]):
                        found.append(field.name)
            return found

        return await integrity_error(self.entity, exc, missing)


def _id_of(value: Any) -> int:
    """An id given to select records by (an id, or a reference that is one)."""
    value = getattr(value, "id", value)
    text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
    if not text.isdigit() or len(text) > 18:
        raise InvalidValue("reference", f"{value!r} is not an id")
    return int(text)


def _cursor_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
