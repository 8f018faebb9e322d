"""The fixed SQL of one entity's table, compiled once per statement on first use."""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)

from engine.audit import AuditAction
from engine.sql import CompiledSql, compile_sql, id_list_condition
from engine.tables import PARENT_COLUMN, POSITION_COLUMN, audit_table, sequence_table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Table
    from sqlalchemy.engine import Dialect

    from metadata import EntityDef


class _NewId:
    """Stands, in a record's values, for the id that another record of the same statement
    is assigned (``combined_insert``): its audit changes show it as ``NEW_ID_JSON``, which
    the statement replaces with the id. The text is random per process, so that no value a
    user writes can be taken for it."""

    __slots__ = ()
    text = f"tessera-new-id-{secrets.token_hex(16)}"

    def __str__(self) -> str:
        return self.text


NEW_ID = _NewId()
NEW_ID_JSON = f'"{_NewId.text}"'
"""How ``NEW_ID`` reads in a JSON text of audit changes."""


class StoreSql:
    """The fixed SQL of one entity. Each statement is compiled once, on first use, so that an
    instance with hundreds of entities starts fast and pays only for what it serves."""

    def __init__(
        self,
        entity: EntityDef,
        table: Table,
        columns: tuple[str, ...],
        *,
        dialect: Dialect,
        dialect_name: str,
    ) -> None:
        self.entity = entity
        self.table = table
        self.columns = columns
        self.dialect = dialect
        self.dialect_name = dialect_name
        self._by_field: dict[str, CompiledSql] = {}
        self._by_field_locked: dict[str, CompiledSql] = {}
        self._by_fields: dict[tuple[tuple[str, bool], ...], CompiledSql] = {}
        self._unless_taken: dict[tuple[str, bool], CompiledSql] = {}
        self._updates: dict[tuple[tuple[str, ...], bool], CompiledSql] = {}
        self._audited_updates: dict[tuple[tuple[str, ...], bool, str], CompiledSql] = {}
        self._combined: dict[Any, CombinedInsert] = {}
        self._with_lines: CompiledSql | None = None

    @functools.cached_property
    def _columns(self) -> list[Any]:
        return [self.table.c[name] for name in self.columns]

    @functools.cached_property
    def get(self) -> CompiledSql:
        statement = select(*self._columns).where(self.table.c.id == bindparam("id"))
        return compile_sql(statement, self.dialect)

    def get_with_lines(self, children: Sequence[StoreSql]) -> CompiledSql:
        """One record and its lines in one statement (PostgreSQL: one round trip instead of
        one per table): a ``UNION ALL`` of the record's row and its lines' rows, each row
        ``(block, position, <the record's columns>, <each child's columns>)`` with NULL in
        the blocks of the other tables, the record's row first, then each child's lines in
        their order. ``children`` in the order of ``RecordStore.children``; compiled once."""
        if self._with_lines is None:
            blocks = [self, *children]
            parts = []
            for index, block in enumerate(blocks):
                columns: list[Any] = []
                for other_index, other in enumerate(blocks):
                    for j, column in enumerate(other._columns):
                        value = column if other_index == index else cast(null(), column.type)
                        columns.append(value.label(f"b{other_index}_{j}"))
                if index == 0:
                    where = block.table.c.id == bindparam("id")
                    position: Any = literal(0, Integer())
                else:
                    where = block.table.c[PARENT_COLUMN] == bindparam("id")
                    position = block.table.c[POSITION_COLUMN]
                head = [literal(index, Integer()).label("block"), position.label("position")]
                parts.append(select(*head, *columns).where(where))
            statement = union_all(*parts).order_by(literal_column("block"), "position")
            self._with_lines = compile_sql(statement, self.dialect)
        return self._with_lines

    @functools.cached_property
    def get_many(self) -> CompiledSql:
        condition = id_list_condition(self.table.c.id, self.dialect_name, "ids")
        return compile_sql(select(*self._columns).where(condition), self.dialect)

    @functools.cached_property
    def version(self) -> CompiledSql:
        statement = select(self.table.c.version).where(self.table.c.id == bindparam("id"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def insert(self) -> CompiledSql:
        return self._insert_plain(None)

    @functools.cached_property
    def insert_audited(self) -> CompiledSql:
        return self._insert_audited(None)

    def insert_unless_taken(self, key: str | None, *, audited: bool) -> CompiledSql:
        """The INSERT of a create (``audited``: with its audit row, on PostgreSQL); with
        ``key``, one that inserts nothing, and returns no row, when a record already holds
        the value of that unique field (``ON CONFLICT (key) DO NOTHING``)."""
        if key is None:
            return self.insert_audited if audited else self.insert
        sql = self._unless_taken.get((key, audited))
        if sql is None:
            sql = self._insert_audited(key) if audited else self._insert_plain(key)
            self._unless_taken[key, audited] = sql
        return sql

    def _insert_into(self, key: str | None) -> Any:
        if key is None:
            return insert(self.table)
        statement = self._dialect_insert(self.table)
        return statement.on_conflict_do_nothing(index_elements=[self.table.c[key]])

    def _insert_plain(self, key: str | None) -> CompiledSql:
        names = [n for n in self.columns if n != "id"]
        if self.entity.is_child:
            names += [PARENT_COLUMN, POSITION_COLUMN]
        statement = self._insert_into(key).returning(*self._columns)
        return compile_sql(statement, self.dialect, names)

    def _insert_audited(self, key: str | None) -> CompiledSql:
        """PostgreSQL: the INSERT and its audit row as one statement (a data-modifying
        CTE), so a create stays a single round trip and needs no transaction. An INSERT
        that gives way to an existing ``key`` returns no row, and so writes no audit row."""
        written, audited = self.audited_ctes(key)
        statement = select(*(written.c[n] for n in self.columns)).add_cte(audited)
        return compile_sql(statement, self.dialect)

    def audited_ctes(
        self,
        key: str | None,
        *,
        prefix: str = "",
        with_id: bool = False,
        new_id: Any = None,
        bound: tuple[str, ...] = (),
    ) -> tuple[Any, Any]:
        """The INSERT of a record and of its audit row, as two CTEs whose parameters are
        the column names (``id`` too when ``with_id``) and ``audit_at``, ``audit_user`` and
        ``audit_changes``, each after ``prefix``. The columns ``bound`` take ``new_id`` (the
        id another CTE of the statement assigns) instead of a parameter, and the audit row
        shows that id where the changes hold ``NEW_ID``."""
        table = self.table
        names = [n for n in self.columns if with_id or n != "id"]
        values = {
            n: new_id if n in bound else bindparam(prefix + n, type_=table.c[n].type) for n in names
        }
        changes: Any = bindparam(f"{prefix}audit_changes", type_=Text())
        if bound:
            changes = func.replace(changes, literal(NEW_ID_JSON), cast(new_id, String()))
        written = (
            self._insert_into(key).values(values).returning(*self._columns).cte(f"{prefix}written")
        )
        audit_columns = ["at", "user_id", "entity", "record_id", "action", "changes"]
        audited = (
            insert(audit_table)
            .from_select(
                audit_columns,
                select(
                    bindparam(f"{prefix}audit_at", type_=Float()),
                    bindparam(f"{prefix}audit_user", type_=String()),
                    literal(self.entity.qualified_name, type_=String()),
                    cast(written.c.id, String()),
                    literal(AuditAction.CREATE.value, type_=String()),
                    changes,
                ).select_from(written),
            )
            .cte(f"{prefix}audited")
        )
        return written, audited

    def combined(
        self, parts: Sequence[StoreSql], bound: tuple[tuple[str, ...], ...], *, with_id: bool
    ) -> CombinedInsert:
        """``combined_insert`` (this table's first), compiled once per shape."""
        shape = (tuple(part.entity.qualified_name for part in parts), bound, with_id)
        sql = self._combined.get(shape)
        if sql is None:
            sql = combined_insert(parts, bound, with_id=with_id)
            self._combined[shape] = sql
        return sql

    @functools.cached_property
    def next_id(self) -> CompiledSql:
        """The next value of the id sequence (PostgreSQL), for a record whose id a create
        needs before its INSERT (``combined_insert``)."""
        sequence = func.pg_get_serial_sequence(literal(self.table.name), literal("id"))
        return compile_sql(select(func.nextval(sequence)), self.dialect)

    @functools.cached_property
    def delete(self) -> CompiledSql:
        statement = delete(self.table).where(self.table.c.id == bindparam("id"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def delete_versioned(self) -> CompiledSql:
        table = self.table
        condition = and_(
            table.c.id == bindparam("id"), table.c.version == bindparam("expected_version")
        )
        return compile_sql(delete(table).where(condition), self.dialect)

    @functools.cached_property
    def next_number(self) -> CompiledSql:
        return compile_sql(self._sequence_upsert(sequence_table), self.dialect)

    @functools.cached_property
    def children_of(self) -> CompiledSql:
        parent = self.table.c[PARENT_COLUMN]
        statement = (
            select(parent, *self._columns)
            .where(id_list_condition(parent, self.dialect_name, "ids"))
            .order_by(parent, self.table.c[POSITION_COLUMN])
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def ids_after(self) -> CompiledSql:
        """A page of ids in order, for walking every record (scheduled rules)."""
        table = self.table
        statement = (
            select(table.c.id)
            .where(table.c.id > bindparam("after"))
            .order_by(table.c.id)
            .limit(bindparam("limit"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def lines_of(self) -> CompiledSql:
        """The stored lines of one parent."""
        parent = self.table.c[PARENT_COLUMN]
        statement = select(*self._columns).where(parent == bindparam("parent"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def parent_of(self) -> CompiledSql:
        """The parent id of one line."""
        statement = select(self.table.c[PARENT_COLUMN]).where(self.table.c.id == bindparam("id"))
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def line_ids(self) -> CompiledSql:
        statement = select(self.table.c.id).where(
            self.table.c[PARENT_COLUMN] == bindparam("parent")
        )
        return compile_sql(statement, self.dialect)

    def _dialect_insert(self, table: Table) -> Any:
        """An INSERT that can take ``ON CONFLICT`` (PostgreSQL's and SQLite's own)."""
        from sqlalchemy.dialects.postgresql import insert as postgres_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        if self.dialect_name == "postgresql":
            return postgres_insert(table)
        return sqlite_insert(table)

    def _sequence_upsert(self, sequence: Table) -> Any:
        one: Any = literal_column("1")
        statement = self._dialect_insert(sequence).values(series=bindparam("series"), value=one)
        return statement.on_conflict_do_update(
            index_elements=[sequence.c.series], set_={"value": sequence.c.value + one}
        ).returning(sequence.c.value)

    def id_by_field(self, field_name: str, *, lock: bool = False) -> CompiledSql:
        """The id of the record whose ``field_name`` is a value; ``lock``: locking it until
        the transaction ends (``FOR UPDATE``; SQLite has none, and needs none: its write
        transactions run one at a time)."""
        cache = self._by_field_locked if lock else self._by_field
        sql = cache.get(field_name)
        if sql is None:
            table = self.table
            statement = select(table.c.id).where(table.c[field_name] == bindparam("value"))
            if lock:
                statement = statement.with_for_update()
            sql = compile_sql(statement, self.dialect)
            cache[field_name] = sql
        return sql

    def ids_by_fields(self, shape: tuple[tuple[str, bool], ...]) -> CompiledSql:
        """The ids, in order, of the records whose fields equal values (parameters named
        after the fields); ``shape``: each field with whether its value is empty (``IS
        NULL``). Compiled once per shape."""
        sql = self._by_fields.get(shape)
        if sql is None:
            columns = self.table.c
            conditions = [
                columns[name].is_(None) if empty else columns[name] == bindparam(name)
                for name, empty in shape
            ]
            statement = select(columns.id).where(*conditions).order_by(columns.id)
            sql = compile_sql(statement, self.dialect)
            self._by_fields[shape] = sql
        return sql

    def update(self, names: tuple[str, ...], versioned: bool) -> CompiledSql:
        """The UPDATE of the columns ``names`` (``versioned``: only at the expected
        version), compiled once per set of names."""
        key = (names, versioned)
        sql = self._updates.get(key)
        if sql is None:
            sql = self._update(names, versioned)
            self._updates[key] = sql
        return sql

    def update_audited(
        self, names: tuple[str, ...], versioned: bool, action: AuditAction
    ) -> CompiledSql:
        """PostgreSQL: ``update`` and the write's audit row as one statement (a
        data-modifying CTE; parameters named after the columns, ``record_id``,
        ``expected_version``, ``audit_at``, ``audit_user`` and ``audit_changes``). An UPDATE
        that matches no row (gone, or at another version) writes no audit row either."""
        key = (names, versioned, action.value)
        sql = self._audited_updates.get(key)
        if sql is None:
            table = self.table
            condition = table.c.id == bindparam("record_id")
            if versioned:
                condition = and_(condition, table.c.version == bindparam("expected_version"))
            values: dict[str, Any] = {
                n: bindparam(n, type_=table.c[n].type) for n in (*names, "updated_at", "updated_by")
            }
            values["version"] = table.c.version + literal_column("1")
            written = (update(table).where(condition).values(values).returning(*self._columns)).cte(
                "written"
            )
            audited = (
                insert(audit_table)
                .from_select(
                    ["at", "user_id", "entity", "record_id", "action", "changes"],
                    select(
                        bindparam("audit_at", type_=Float()),
                        bindparam("audit_user", type_=String()),
                        literal(self.entity.qualified_name, type_=String()),
                        cast(written.c.id, String()),
                        literal(action.value, type_=String()),
                        bindparam("audit_changes", type_=Text()),
                    ).select_from(written),
                )
                .cte("audited")
            )
            statement = select(*(written.c[n] for n in self.columns)).add_cte(audited)
            sql = self._audited_updates[key] = compile_sql(statement, self.dialect)
        return sql

    def _update(self, names: tuple[str, ...], versioned: bool) -> CompiledSql:
        table = self.table
        condition = table.c.id == bindparam("record_id")
        if versioned:
            condition = and_(condition, table.c.version == bindparam("expected_version"))
        columns = [table.c[name] for name in self.columns]
        statement = (
            update(table).where(condition).values(version=table.c.version + literal_column("1"))
        )
        return compile_sql(
            statement.returning(*columns), self.dialect, [*names, "updated_at", "updated_by"]
        )


@dataclass(frozen=True, slots=True)
class CombinedInsert:
    """The statement of ``combined_insert``, with where each of its parameters comes from:
    ``(position of the record, column or audit parameter)``, or None for a constant."""

    sql: CompiledSql
    slots: tuple[tuple[int, str] | None, ...]

    def args(self, params: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The statement's arguments from each record's own parameters (by position)."""
        constants = self.sql.constants
        return [
            constants.get(name) if slot is None else params[slot[0]].get(slot[1])
            for name, slot in zip(self.sql.names, self.slots, strict=True)
        ]


_SLOT = re.compile(r"p(\d+)_(.+)")


def combined_insert(
    parts: Sequence[StoreSql], bound: tuple[tuple[str, ...], ...], *, with_id: bool
) -> CombinedInsert:
    """PostgreSQL: the INSERTs of several records (one per part, each with its audit row) as
    one statement, atomic without a transaction; the first record's row is returned. The
    first record's id is a parameter (``p0_id``, drawn before) when ``with_id``, else the
    table's own; the columns ``bound[position]`` of a later record take the first record's
    id (a reference to it), so that nothing needs to be known before the one round trip.
    Parameters are a part's own (``StoreSql.audited_ctes``) after ``p<position>_``."""
    ctes: list[Any] = list(parts[0].audited_ctes(None, prefix="p0_", with_id=with_id))
    new_id = select(ctes[0].c.id).scalar_subquery()
    for position, part in enumerate(parts[1:], 1):
        prefix = f"p{position}_"
        ctes += part.audited_ctes(None, prefix=prefix, new_id=new_id, bound=bound[position])
    first = ctes[0]
    statement = select(*(first.c[n] for n in parts[0].columns)).add_cte(*ctes[1:])
    sql = compile_sql(statement, parts[0].dialect)
    slots = []
    for name in sql.names:
        match = None if name in sql.constants else _SLOT.fullmatch(name)
        slots.append((int(match[1]), match[2]) if match else None)
    return CombinedInsert(sql, tuple(slots))
