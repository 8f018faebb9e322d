"""The difference between the definitions' tables and a live database, as reviewable steps.

Alembic's autogenerate comparison finds the differences and its operation objects carry
them out, at runtime, on the open connection: nothing here writes ALTER strings by hand.
This module adds what autogenerate leaves to a human reviewing a revision file: which steps
would lose data (refused unless allowed), which cannot succeed on the rows present (refused
with the reason), which type changes need a cast, and how to run each step on SQLite (batch
mode, i.e. copy-and-swap, where SQLite cannot alter in place).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.operations import ops as alembic_ops
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    Numeric,
    String,
    Text,
    column,
    func,
    inspect,
    select,
    table,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import NullType

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection
    from sqlalchemy.sql.elements import ColumnClause
    from sqlalchemy.types import TypeEngine


@dataclass
class Step:
    """One change, described for a person, with the operations that carry it out."""

    description: str
    table: str
    operations: list[alembic_ops.MigrateOperation]
    refused: str | None = None
    """Why the step cannot run on the data present, whatever the flags."""
    data_loss: str | None = None
    """What the step would destroy; it runs only with ``--allow-data-loss``."""
    recreate: bool = False
    """On SQLite, whether the table must be copied to a new one (batch mode)."""
    sql: list[str] = field(default_factory=list)
    applied: bool = False
    then: list[str] = field(default_factory=list)
    """SQL run after the operations (and after the table copy they share on SQLite)."""


@dataclass(frozen=True, slots=True)
class RenamedColumn:
    table: str
    old: str
    new: str


def managed_name_filter(managed: set[str]) -> Any:
    """Autogenerate looks only at Tessera's entity tables, never at system tables or at tables
    that other applications keep in the same database."""

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return type_ != "table" or name in managed

    return include_name


def pending_renames(connection: Connection, metadata: MetaData) -> list[RenamedColumn]:
    """Fields declared with ``renamed_from`` whose old column still holds the data."""
    inspector = inspect(connection)
    existing_tables = set(inspector.get_table_names())
    renames = []
    for entity_table in metadata.sorted_tables:
        if entity_table.name not in existing_tables:
            continue
        wanted = [c for c in entity_table.columns if c.info.get("renamed_from")]
        if not wanted:
            continue
        present = {c["name"] for c in inspector.get_columns(entity_table.name)}
        for new_column in wanted:
            old = new_column.info["renamed_from"]
            if old in present and new_column.name not in present:
                renames.append(RenamedColumn(entity_table.name, old, new_column.name))
    return renames


def rename_steps(renames: Iterable[RenamedColumn]) -> list[Step]:
    return [
        Step(
            f"rename column {r.table}.{r.old} to {r.new} (keeps its data)",
            r.table,
            [alembic_ops.AlterColumnOp(r.table, r.old, modify_name=r.new)],
        )
        for r in renames
    ]


def compare(connection: Connection, metadata: MetaData, managed: set[str]) -> list[Step]:
    """Every difference between ``metadata`` and the database, classified, in a safe order."""
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "include_name": managed_name_filter(managed),
            "target_metadata": metadata,
        },
    )
    script = produce_migrations(context, metadata)
    assert script.upgrade_ops is not None
    checker = _DataChecks(connection, metadata)
    steps: list[Step] = []
    for operation in script.upgrade_ops.ops:
        steps.extend(checker.steps_for(operation))
    if connection.dialect.name != "sqlite":  # SQLite writes them in CREATE TABLE
        for op in _deferred_foreign_keys(script.upgrade_ops.ops, metadata):
            local = ", ".join(op.local_cols)
            description = f"add foreign key {op.source_table} ({local}) to {op.referent_table}"
            steps.append(Step(description, op.source_table, [op]))
    return steps


def _deferred_foreign_keys(
    operations: Iterable[alembic_ops.MigrateOperation], metadata: MetaData
) -> Iterator[alembic_ops.CreateForeignKeyOp]:
    """The foreign keys of the tables created that close a cycle of references
    (``use_alter``): CREATE TABLE leaves them out, so they are added once every table
    exists."""
    for operation in operations:
        if isinstance(operation, alembic_ops.CreateTableOp):
            created = metadata.tables.get(operation.table_name)
            for constraint in created.foreign_key_constraints if created is not None else ():
                if constraint.use_alter:
                    yield alembic_ops.CreateForeignKeyOp.from_constraint(constraint)


class StepFailed(Exception):
    """The database rejected a step (or a table copy made of several steps)."""

    def __init__(self, steps: list[Step], reason: str) -> None:
        self.description = "; ".join(step.description for step in steps)
        self.reason = reason
        super().__init__(f"step '{self.description}' failed: {reason}")


def execute(connection: Connection, steps: list[Step]) -> None:
    """Run the steps on the connection, in its open transaction, recording their SQL."""
    operations = Operations(MigrationContext.configure(connection))
    sqlite = connection.dialect.name == "sqlite"
    for group in _table_copies(steps) if sqlite else ([step] for step in steps):
        head = group[0]
        try:
            with _recorded_sql(connection, head.sql):
                if sqlite and head.recreate:
                    with operations.batch_alter_table(head.table, recreate="always") as batch:
                        for operation in (op for step in group for op in step.operations):
                            batch.invoke(operation)
                else:
                    for operation in head.operations:
                        operations.invoke(operation)
                for statement in (sql for step in group for sql in step.then):
                    connection.exec_driver_sql(statement)
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StepFailed(group, reason) from exc
        for step in group:
            if step is not head:
                step.sql.append(f"-- done by the copy of {head.table} above")
            step.applied = True


def _table_copies(steps: list[Step]) -> Iterator[list[Step]]:
    """SQLite batch mode copies the whole table: consecutive steps that need a copy of the
    same table share one, so a table is copied once per plan rather than once per change."""
    group: list[Step] = []
    for step in steps:
        if group and step.recreate and group[0].recreate and group[0].table == step.table:
            group.append(step)
            continue
        if group:
            yield group
        group = [step]
    if group:
        yield group


class _recorded_sql:  # noqa: N801 - used as a context manager, reads as a phrase
    def __init__(self, connection: Connection, into: list[str]) -> None:
        self.connection = connection
        self.into = into

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip()[:6].upper()
        if head not in {"SELECT", "PRAGMA"}:
            self.into.append(" ".join(statement.split()))

    def __enter__(self) -> None:
        from sqlalchemy import event

        event.listen(self.connection, "before_cursor_execute", self._before)

    def __exit__(self, *exc: object) -> None:
        from sqlalchemy import event

        event.remove(self.connection, "before_cursor_execute", self._before)


class _DataChecks:
    """Looks at the rows a step would touch, so refusals say exactly what is at stake."""

    def __init__(self, connection: Connection, metadata: MetaData) -> None:
        self.connection = connection
        self.metadata = metadata
        self.sqlite = connection.dialect.name == "sqlite"
        self._row_counts: dict[str, int] = {}
        self.added: set[tuple[str, str]] = set()

    def rows(self, table_name: str) -> int:
        if table_name not in self._row_counts:
            query = select(func.count()).select_from(table(table_name))
            self._row_counts[table_name] = self.connection.execute(query).scalar_one()
        return self._row_counts[table_name]

    def _scalar(self, query: Any) -> Any:
        return self.connection.execute(query).scalar_one()

    def steps_for(self, operation: alembic_ops.MigrateOperation) -> Iterator[Step]:
        if isinstance(operation, alembic_ops.ModifyTableOps):
            for inner in operation.ops:
                yield from self.steps_for(inner)
            return
        handler = getattr(self, f"_{type(operation).__name__}", None)
        if handler is None:
            yield Step(_generic_description(operation), _table_of(operation), [operation])
            return
        yield from handler(operation)

    # -- tables ------------------------------------------------------------------------

    def _CreateTableOp(self, op: alembic_ops.CreateTableOp) -> Iterator[Step]:  # noqa: N802
        columns = sum(isinstance(item, Column) for item in op.columns)
        yield Step(f"create table {op.table_name} ({columns} columns)", op.table_name, [op])

    def _DropTableOp(self, op: alembic_ops.DropTableOp) -> Iterator[Step]:  # noqa: N802
        rows = self.rows(op.table_name)
        loss = f"drops table {op.table_name} and its {rows} rows"
        yield Step(f"drop table {op.table_name} ({rows} rows)", op.table_name, [op], data_loss=loss)

    def _CreateTableCommentOp(  # noqa: N802
        self, op: alembic_ops.CreateTableCommentOp
    ) -> Iterator[Step]:
        yield Step(f"set label of table {op.table_name} to '{op.comment}'", op.table_name, [op])

    # -- columns -----------------------------------------------------------------------

    def _AddColumnOp(self, op: alembic_ops.AddColumnOp) -> Iterator[Step]:  # noqa: N802
        declared = op.column
        words = [_type_words(declared.type)]
        if not declared.nullable:
            words.append("required")
        if declared.server_default is not None:
            words.append(f"default {_default_words(declared)}")
        description = f"add column {op.table_name}.{declared.name} ({', '.join(words)})"
        # Autogenerate also plans the column's index, unique constraint and foreign key as
        # steps of their own; the column is added bare so each is created once.
        op.column = Column(
            declared.name,
            declared.type,
            nullable=declared.nullable,
            server_default=getattr(declared.server_default, "arg", None),
            comment=declared.comment,
        )
        step = Step(description, op.table_name, [op])
        if not declared.nullable and declared.server_default is None:
            rows = self.rows(op.table_name)
            if rows:
                step.refused = (
                    f"required column {op.table_name}.{declared.name} has no default and the "
                    f"table has {rows} rows: give the field a default, or add it as optional, "
                    "fill it, then make it required"
                )
            step.recreate = True  # SQLite cannot add a NOT NULL column without a default
        self.added.add((op.table_name, declared.name))
        yield step

    def _DropColumnOp(self, op: alembic_ops.DropColumnOp) -> Iterator[Step]:  # noqa: N802
        target: ColumnClause[Any] = column(op.column_name)
        values = self._scalar(
            select(func.count()).select_from(table(op.table_name)).where(target.is_not(None))
        )
        loss = f"drops column {op.table_name}.{op.column_name}, which holds {values} values"
        yield Step(
            f"drop column {op.table_name}.{op.column_name} ({values} values)",
            op.table_name,
            [op],
            data_loss=loss,
            recreate=True,
        )

    def _AlterColumnOp(self, op: alembic_ops.AlterColumnOp) -> Iterator[Step]:  # noqa: N802
        where = f"{op.table_name}.{op.column_name}"
        changes: list[str] = []
        step = Step("", op.table_name, [op], recreate=True)
        if op.modify_type is not None:
            old: TypeEngine[Any] = op.existing_type or NullType()
            new: TypeEngine[Any] = op.modify_type
            changes.append(f"type {_type_words(old)} to {_type_words(new)}")
            verdict = self._type_change(op.table_name, op.column_name, old, new)
            if verdict:
                step.data_loss = (
                    f"changing {where} from {_type_words(old)} to {_type_words(new)} {verdict}"
                )
            if self.connection.dialect.name == "postgresql":
                cast_to = new.compile(dialect=self.connection.dialect)
                op.kw["postgresql_using"] = f'"{op.column_name}"::{cast_to}'
            else:
                self._rescale(step, op.table_name, op.column_name, old, new)
        if op.modify_nullable is False:
            changes.append("required")
            empty = self._scalar(
                select(func.count())
                .select_from(table(op.table_name))
                .where(column(op.column_name).is_(None))
            )
            metadata_column = self.metadata.tables[op.table_name].c[op.column_name]
            if empty and metadata_column.server_default is not None:
                changes.append(f"{empty} empty values set to the default")
                step.operations.insert(0, _fill_nulls(op.table_name, metadata_column))
            elif empty:
                step.refused = (
                    f"{where} cannot become required: {empty} rows have no value; give the "
                    "field a default or fill those rows first"
                )
        elif op.modify_nullable is True:
            changes.append("optional")
        if op.modify_server_default is not False:
            default = getattr(op.modify_server_default, "arg", op.modify_server_default)
            op.modify_server_default = default  # batch mode wants the text, not the clause
            changes.append(
                "no default" if default is None else f"default {getattr(default, 'arg', default)}"
            )
        if op.modify_comment is not False:
            changes.append(f"label '{op.modify_comment}'")
            if op.modify_type is None and op.modify_nullable is None:
                step.recreate = False
        if op.modify_name is not None:
            changes.append(f"renamed to {op.modify_name}")
        step.description = f"change column {where}: {'; '.join(changes)}"
        yield step

    def _rescale(self, step: Step, table_name: str, column_name: str, old: Any, new: Any) -> None:
        """On SQLite a decimal is a whole number of its smallest unit
        (``engine.fieldtypes.numeric.scaled_integer``): a change of scale, or between a
        decimal and a whole number, multiplies or divides the values (rounding half away
        from zero, exactly, in integers). A decimal cannot become text there: the text
        would be the scaled integer."""
        old_scale, new_scale = _sqlite_scale(old), _sqlite_scale(new)
        if old_scale is None or new_scale is None:
            if isinstance(old, Numeric) and not isinstance(old, Float) and self.rows(table_name):
                step.refused = (
                    f"{table_name}.{column_name}: SQLite keeps decimals as scaled integers, "
                    f"which cannot be converted to {_type_words(new)} in place; add a new "
                    "field, copy the values through the API, then drop the old one"
                )
            return
        shift = new_scale - old_scale
        if not shift:
            return
        name = _identifier(column_name)
        if shift > 0:
            value = f"{name} * {10**shift}"
        else:
            half, factor = 10**-shift // 2, 10**-shift
            value = f"({name} + CASE WHEN {name} < 0 THEN -{half} ELSE {half} END) / {factor}"
        step.then.append(
            f"UPDATE {_identifier(table_name)} SET {name} = {value} "  # noqa: S608 - quoted names
            f"WHERE {name} IS NOT NULL"
        )

    def _type_change(
        self, table_name: str, column_name: str, old: TypeEngine[Any], new: TypeEngine[Any]
    ) -> str | None:
        """None when every value fits the new type, else what could be lost."""
        if _widens(old, new):
            return None
        if isinstance(old, String) and isinstance(new, String) and new.length:
            longest = self._scalar(
                select(func.max(func.length(column(column_name)))).select_from(table(table_name))
            )
            if not longest or longest <= new.length:
                return None
            return f"would cut values of up to {longest} characters to {new.length}"
        if not self.rows(table_name):
            return None
        return "narrows or converts the type; values that do not convert are lost or fail"

    # -- indexes and constraints -------------------------------------------------------

    def _CreateIndexOp(self, op: alembic_ops.CreateIndexOp) -> Iterator[Step]:  # noqa: N802
        names = _column_names(op.columns)
        kind = "unique index" if op.unique else "index"
        step = Step(
            f"create {kind} {op.index_name} on {op.table_name} ({', '.join(names)})",
            op.table_name,
            [op],
        )
        if op.unique:
            step.refused = self._duplicates(op.table_name, names)
        yield step

    def _DropIndexOp(self, op: alembic_ops.DropIndexOp) -> Iterator[Step]:  # noqa: N802
        yield Step(f"drop index {op.index_name} on {op.table_name}", op.table_name or "", [op])

    def _CreateUniqueConstraintOp(  # noqa: N802
        self, op: alembic_ops.CreateUniqueConstraintOp
    ) -> Iterator[Step]:
        names = _column_names(op.columns)
        yield Step(
            f"add unique constraint {op.constraint_name} on {op.table_name} ({', '.join(names)})",
            op.table_name,
            [op],
            refused=self._duplicates(op.table_name, names),
            recreate=True,
        )

    def _CreateForeignKeyOp(  # noqa: N802
        self, op: alembic_ops.CreateForeignKeyOp
    ) -> Iterator[Step]:
        local = ", ".join(op.local_cols)
        step = Step(
            f"add foreign key {op.source_table} ({local}) to {op.referent_table}",
            op.source_table,
            [op],
            recreate=True,
        )
        new_column = (op.source_table, op.local_cols[0]) in self.added
        if len(op.local_cols) == 1 and not new_column:
            local_column: ColumnClause[Any] = column(op.local_cols[0])
            target = table(op.referent_table, column(op.remote_cols[0]))
            orphans = self._scalar(
                select(func.count())
                .select_from(table(op.source_table, local_column))
                .where(local_column.is_not(None))
                .where(~local_column.in_(select(target.c[op.remote_cols[0]])))
            )
            if orphans:
                step.refused = (
                    f"{orphans} rows of {op.source_table} point at {op.referent_table} records "
                    "that do not exist"
                )
        yield step

    def _DropConstraintOp(self, op: alembic_ops.DropConstraintOp) -> Iterator[Step]:  # noqa: N802
        kind = f"{op.constraint_type} constraint" if op.constraint_type else "constraint"
        yield Step(
            f"drop {kind} {op.constraint_name} on {op.table_name}",
            op.table_name,
            [op],
            recreate=True,
        )

    def _duplicates(self, table_name: str, names: list[str]) -> str | None:
        if any((table_name, name) in self.added for name in names):
            return None  # a new column holds only NULLs or its default; the database decides
        columns: list[ColumnClause[Any]] = [column(n) for n in names]
        groups = (
            select(*columns)
            .select_from(table(table_name, *columns))
            .where(*(c.is_not(None) for c in columns))
            .group_by(*columns)
            .having(func.count() > 1)
            .subquery()
        )
        repeated = self._scalar(select(func.count()).select_from(groups))
        if not repeated:
            return None
        return (
            f"{table_name} ({', '.join(names)}) cannot be made unique: {repeated} values occur "
            "more than once; fix those rows first"
        )


def _fill_nulls(table_name: str, metadata_column: Column[Any]) -> alembic_ops.MigrateOperation:
    target = table(table_name, column(metadata_column.name))
    default = metadata_column.server_default.arg  # type: ignore[union-attr]
    from sqlalchemy import literal_column, update

    value = default if not isinstance(default, str) else literal_column(_quoted(default))
    statement = (
        update(target)
        .where(target.c[metadata_column.name].is_(None))
        .values({metadata_column.name: value})
    )
    return alembic_ops.ExecuteSQLOp(statement)


def _sqlite_scale(type_: Any) -> int | None:
    """Decimal places of a column's values as SQLite holds them (0 for whole numbers and
    booleans), or None for a type that is not a number."""
    if isinstance(type_, Float):
        return None
    if isinstance(type_, Numeric):
        return type_.scale or 0
    if isinstance(type_, Integer | Boolean):
        return 0
    return None


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_WIDENINGS: tuple[tuple[type[Any], tuple[type[Any], ...]], ...] = (
    (Boolean, (Integer, BigInteger, Numeric, String, Text)),
    (Integer, (BigInteger, Numeric, String, Text)),
    (Date, (DateTime, String, Text)),
    (Numeric, (String, Text)),
    (DateTime, (String, Text)),
)


def _widens(old: TypeEngine[Any], new: TypeEngine[Any]) -> bool:
    """Whether every value of ``old`` is a value of ``new`` (the cast cannot lose anything)."""
    if isinstance(new, Text) or (isinstance(new, String) and new.length is None):
        return not isinstance(old, JSON)
    if isinstance(old, String) and isinstance(new, String) and not isinstance(old, Text):
        return old.length is not None and new.length is not None and new.length >= old.length
    if isinstance(old, Numeric) and isinstance(new, Numeric):
        old_int = (old.precision or 0) - (old.scale or 0)
        new_int = (new.precision or 0) - (new.scale or 0)
        return new_int >= old_int and (new.scale or 0) >= (old.scale or 0)
    if isinstance(old, Integer) and isinstance(new, Numeric):
        return (new.precision or 0) - (new.scale or 0) >= 19
    if isinstance(old, BigInteger):
        return isinstance(new, BigInteger)
    for source, targets in _WIDENINGS:
        if isinstance(old, source) and isinstance(new, targets) and not isinstance(new, String):
            return True
    return False


def _type_words(type_: Any) -> str:
    try:
        return str(type_).lower()
    except Exception:  # noqa: BLE001 - a reflected type without a generic rendering
        return type(type_).__name__.lower()


def _default_words(new_column: Column[Any]) -> str:
    default = new_column.server_default
    words = str(getattr(default, "arg", default))
    if isinstance(new_column.type, Boolean):  # stored as '1'/'0' to suit both databases
        return {"1": "true", "0": "false"}.get(words, words)
    return words


def _table_of(operation: alembic_ops.MigrateOperation) -> str:
    return str(getattr(operation, "table_name", "") or getattr(operation, "source_table", ""))


def _column_names(columns: Iterable[Any]) -> list[str]:
    """Index and constraint operations hold columns as objects or as names."""
    return [getattr(item, "name", None) or str(item) for item in columns]


def _generic_description(operation: alembic_ops.MigrateOperation) -> str:
    words = type(operation).__name__.removesuffix("Op")
    return f"{words} on {_table_of(operation)}".lower()
