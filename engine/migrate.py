"""Bring a database to the definitions, in one transaction.

System tables (sequences, the migration log, the registry) follow Alembic revisions under
``migrations/``. Entity tables follow the definitions: ``engine.schema_diff`` compares them
with the live database and turns the difference into steps; this module decides whether the
plan may run, runs it, checks it, and records it.

Everything happens on one connection inside one transaction, so a failing step leaves the
schema as it was (PostgreSQL and SQLite both have transactional DDL). A dry run is the same
rehearsal, rolled back at the end: it shows the exact SQL and proves the plan would succeed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, delete, event, func, insert, inspect, select, update
from sqlalchemy.engine import make_url

from engine import schema_diff
from engine.database import connect_sqlite
from engine.schema_diff import Step
from engine.tables import migration_log_table, module_registry_table, table_registry_table
from metadata.semver import Version

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Connection, Engine

    from engine.tables import EntityTables

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

__all__ = [
    "MigrationFailed",
    "MigrationRefused",
    "Plan",
    "Step",
    "apply_migration",
    "installed_modules",
    "migration_engine",
    "plan_migration",
    "record_migration",
    "run_migration",
    "sync_engine",
    "upgrade_system_tables",
]


class MigrationRefused(Exception):
    """The plan would lose data without permission, or cannot work on the rows present."""


class MigrationFailed(Exception):
    """The database rejected a step; the transaction is to be rolled back."""


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    allow_data_loss: bool = False

    @property
    def refused(self) -> list[Step]:
        """Steps that stop the plan: impossible ones, and destructive ones not allowed."""
        return [s for s in self.steps if s.refused or (s.data_loss and not self.allow_data_loss)]

    def reasons(self, permission: str = "--allow-data-loss") -> list[str]:
        """Why the plan was refused; ``permission`` names how the caller allows data loss."""
        reasons = []
        for step in self.refused:
            if step.refused:
                reasons.append(step.refused)
            else:
                reasons.append(f"{step.data_loss}: refused without {permission}")
        return reasons

    @property
    def sql(self) -> list[str]:
        return [statement for step in self.steps for statement in step.sql]


def sync_engine(url: str) -> Engine:
    """A synchronous SQLAlchemy engine for tooling that reads or writes rows."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed.set(drivername="postgresql+psycopg"))
    database = parsed.database or ":memory:"
    return create_engine("sqlite://", creator=lambda: connect_sqlite(database))


def migration_engine(url: str) -> Engine:
    """An engine whose transactions cover DDL on both databases.

    On SQLite the driver runs in autocommit mode, so the transaction is begun explicitly,
    and foreign-key enforcement is off: copying a table to change it (batch mode) drops the
    old table, which must not cascade to the rows that point at it. The keys are checked
    once, before commit (``apply_migration``).
    """
    engine = sync_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _no_fk_enforcement(dbapi_connection: Any, record: Any) -> None:
            dbapi_connection.execute("PRAGMA foreign_keys = OFF")

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


SYSTEM_VERSION_TABLE = "tessera_alembic_version"
"""Where Alembic records the revision of the system tables (``migrations/env.py``)."""


def system_tables_behind(url: str) -> str | None:
    """Why the database's system tables are not the ones this version of Tessera works
    with (never migrated, or migrated by an older version), or None when they are."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = sync_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": SYSTEM_VERSION_TABLE}
            )
            current = context.get_current_revision()
    finally:
        engine.dispose()
    if current == head:
        return None
    if current is None:
        return "the database has not been migrated yet: run `tessera migrate` first"
    return (
        f"the database's system tables are at revision {current}, and this version of "
        f"Tessera needs {head}: run `tessera migrate` to upgrade them"
    )


def upgrade_system_tables(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def managed_tables(connection: Connection, tables: EntityTables) -> set[str]:
    """Tables Tessera owns: those of the current definitions and those it created before."""
    names = set(tables.metadata.tables)
    if inspect(connection).has_table(table_registry_table.name):
        names.update(connection.execute(select(table_registry_table.c.name)).scalars())
    return names


def plan_migration(
    connection: Connection, tables: EntityTables, *, allow_data_loss: bool = False
) -> Plan:
    """The steps from the database to ``tables``; run inside the migration's transaction.

    Columns renamed with ``renamed_from`` are renamed first, on the connection, so that the
    comparison sees them under their new names (and their other changes as changes, not as
    a drop and an add); the rename is the plan's first step and is undone by a rollback.
    """
    renames = schema_diff.rename_steps(schema_diff.pending_renames(connection, tables.metadata))
    _run(connection, renames)
    steps = schema_diff.compare(connection, tables.metadata, managed_tables(connection, tables))
    return Plan(steps=[*renames, *steps], allow_data_loss=allow_data_loss)


def apply_migration(connection: Connection, tables: EntityTables, plan: Plan) -> None:
    """Run the plan's remaining steps; raise ``MigrationRefused`` or ``MigrationFailed``."""
    if plan.refused:
        raise MigrationRefused("\n".join(plan.reasons()))
    _run(connection, [s for s in plan.steps if not s.applied])
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            table_name, _rowid, target, _fk = broken[0]
            raise MigrationFailed(
                f"{len(broken)} rows would point at missing records "
                f"(first: {table_name} -> {target}); nothing was changed"
            )
    _register_tables(connection, tables)


def _run(connection: Connection, steps: list[Step]) -> None:
    try:
        schema_diff.execute(connection, steps)
    except schema_diff.StepFailed as exc:
        raise MigrationFailed(f"{exc}; nothing was changed") from exc


def _register_tables(connection: Connection, tables: EntityTables) -> None:
    connection.execute(delete(table_registry_table))
    rows = [
        {"name": entity_table.name, "entity": qualified}
        for qualified, entity_table in tables.tables.items()
    ]
    if rows:
        connection.execute(insert(table_registry_table), rows)


def record_migration(
    connection: Connection, plan: Plan, *, definitions_hash: str, applied_by: str
) -> None:
    """Log an applied plan in ``tessera_migration``, in the migration's transaction; a
    change of definitions without a schema change is logged too, so that serving processes
    notice it."""
    lines = [line for step in plan.steps for line in (step.description, *step.sql)]
    lines = lines or ["definitions changed; the schema already matches"]
    connection.execute(
        insert(migration_log_table).values(
            applied_at=dt.datetime.now(dt.UTC),
            applied_by=applied_by[:200],
            definitions_hash=definitions_hash,
            plan="\n".join(lines),
        )
    )


def run_migration(
    database_url: str,
    tables: EntityTables,
    *,
    dry_run: bool = False,
    allow_data_loss: bool = False,
    applied_by: str,
    definitions_hash: str,
    module_versions: Mapping[str, str] | None = None,
) -> Plan:
    """Plan, then rehearse or apply and record: the one path used by ``tessera migrate``,
    ``tessera module`` and the meta API. A refused plan is returned unapplied; a failing step
    raises ``MigrationFailed``; in both cases nothing has changed."""
    engine = migration_engine(database_url)
    try:
        with engine.connect() as connection:
            transaction = connection.begin()
            try:
                upgrade_system_tables(connection)
                if module_versions:
                    refuse_downgrades(installed_modules(connection), module_versions)
                plan = plan_migration(connection, tables, allow_data_loss=allow_data_loss)
                if not plan.refused:
                    apply_migration(connection, tables, plan)
                    if module_versions:
                        register_modules(connection, module_versions)
                if plan.refused or dry_run:
                    transaction.rollback()
                    return plan
                if plan.steps or _last_hash(connection) != definitions_hash:
                    record_migration(
                        connection, plan, definitions_hash=definitions_hash, applied_by=applied_by
                    )
                transaction.commit()
                return plan
            except BaseException:
                if transaction.is_active:
                    transaction.rollback()
                raise
    finally:
        engine.dispose()


def installed_modules(connection: Connection) -> dict[str, str]:
    """Version of each pack as of the last migration, by name; empty before the first."""
    if not inspect(connection).has_table(module_registry_table.name):
        return {}
    rows = connection.execute(select(module_registry_table.c.name, module_registry_table.c.version))
    return {row.name: row.version for row in rows}


def refuse_downgrades(installed: Mapping[str, str], wanted: Mapping[str, str]) -> None:
    for name, version in wanted.items():
        before = installed.get(name)
        if before is not None and Version.parse(version) < Version.parse(before):
            raise MigrationRefused(
                f"pack '{name}' {version} is older than the installed {before}; "
                "downgrading a pack is not supported"
            )


def register_modules(connection: Connection, versions: Mapping[str, str]) -> None:
    now = dt.datetime.now(dt.UTC)
    installed = installed_modules(connection)
    table = module_registry_table
    for name, version in versions.items():
        if name not in installed:
            connection.execute(
                insert(table).values(name=name, version=version, installed_at=now, upgraded_at=now)
            )
        elif installed[name] != version:
            connection.execute(
                update(table).where(table.c.name == name).values(version=version, upgraded_at=now)
            )


def _last_hash(connection: Connection) -> str | None:
    query = (
        select(migration_log_table.c.definitions_hash)
        .order_by(migration_log_table.c.id.desc())
        .limit(1)
    )
    return connection.execute(query).scalar_one_or_none()


def latest_migration_id(connection: Connection) -> int:
    """Grows with every applied migration; serving processes poll it to reload definitions."""
    value = connection.execute(
        select(func.coalesce(func.max(migration_log_table.c.id), 0))
    ).scalar_one()
    return int(value)
