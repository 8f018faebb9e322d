"""Bring a database to the definitions: system tables through Alembic revisions, entity
tables and columns planned from the definitions.

This first version creates what is missing (tables, columns, their indexes) and refuses
what it cannot do safely; it never drops or alters existing data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, func, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from engine.database import connect_sqlite
from engine.tables import migration_log_table

if TYPE_CHECKING:
    from sqlalchemy import Column, Table
    from sqlalchemy.engine import Connection, Engine

    from engine.tables import EntityTables

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class MigrationRefused(Exception):
    """A step would lose data or cannot be done safely on a table with rows."""


@dataclass(frozen=True, slots=True)
class Step:
    description: str
    sql: tuple[str, ...]
    refused: str | None = None


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    new_tables: list[Table] = field(default_factory=list)
    new_columns: list[tuple[Table, Column[object]]] = field(default_factory=list)

    @property
    def refused(self) -> list[Step]:
        return [s for s in self.steps if s.refused]


def sync_engine(url: str) -> Engine:
    """A synchronous SQLAlchemy engine for migrations and tooling."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed.set(drivername="postgresql+psycopg"))
    database = parsed.database or ":memory:"
    return create_engine("sqlite://", creator=lambda: connect_sqlite(database))


def upgrade_system_tables(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def plan_migration(connection: Connection, tables: EntityTables) -> Plan:
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    plan = Plan()
    dialect = connection.dialect
    for table in tables.metadata.sorted_tables:
        if table.name not in existing:
            sql = [str(CreateTable(table).compile(dialect=dialect)).strip()]
            sql += [str(CreateIndex(ix).compile(dialect=dialect)) for ix in table.indexes]
            plan.steps.append(
                Step(f"create table {table.name} ({len(table.columns)} columns)", tuple(sql))
            )
            plan.new_tables.append(table)
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        rows = None
        for column in table.columns:
            if column.name in present:
                continue
            refused = None
            if not column.nullable and column.server_default is None:
                rows = (
                    rows
                    if rows is not None
                    else connection.execute(select(func.count()).select_from(table)).scalar_one()
                )
                if rows:
                    refused = (
                        f"required column {table.name}.{column.name} cannot be added to a table "
                        f"with {rows} rows: add the field as optional, fill it, then make it "
                        "required"
                    )
            plan.steps.append(Step(f"add column {table.name}.{column.name}", (), refused))
            plan.new_columns.append((table, column))
    return plan


def record_migration(
    connection: Connection, plan: Plan, *, definitions_hash: str, applied_by: str
) -> None:
    """Log an applied plan in ``tessera_migration``, in the migration's transaction."""
    text = "\n".join(line for step in plan.steps for line in (step.description, *step.sql))
    connection.execute(
        insert(migration_log_table).values(
            applied_at=dt.datetime.now(dt.UTC),
            applied_by=applied_by[:200],
            definitions_hash=definitions_hash,
            plan=text,
        )
    )


def apply_migration(connection: Connection, tables: EntityTables, plan: Plan) -> None:
    if plan.refused:
        raise MigrationRefused("\n".join(s.refused or "" for s in plan.refused))
    tables.metadata.create_all(connection, tables=plan.new_tables, checkfirst=True)
    operations = Operations(MigrationContext.configure(connection))
    for table, column in plan.new_columns:
        new_column = column._copy()
        if connection.dialect.name == "sqlite":
            # SQLite cannot add a NOT NULL column without a default; validation enforces it.
            new_column.nullable = True
        operations.add_column(table.name, new_column)
        if column.index:
            operations.create_index(f"ix_{table.name}_{column.name}", table.name, [column.name])
