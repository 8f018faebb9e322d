"""The compiled engine for one project on one database dialect."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.engine import make_url

from engine.access import AccessPolicy
from engine.audit import AuditLog
from engine.dates import use_calendars
from engine.errors import UnknownEntity
from engine.expressions import use_instance_names
from engine.outbox import Outbox
from engine.reports import compile_reports
from engine.rollups import compile_rollups
from engine.tables import build_tables
from engine.writes.pipeline import EntityStore, StoreRegistry

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

    from metadata import ProjectDef


def dialect_for_url(url: str) -> tuple[str, Dialect]:
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return "sqlite", sqlite_dialect()
    if backend == "postgresql":
        return "postgresql", asyncpg_dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
    raise ValueError(f"unsupported database '{backend}': use sqlite or postgresql")


class EngineModel(StoreRegistry):
    """Every entity's store, compiled once; the only object requests need to reach data."""

    def __init__(self, project: ProjectDef, dialect_name: str, dialect: Dialect) -> None:
        self.project = project
        use_instance_names(project.instance_names)  # company_currency, … (tessera.yaml)
        use_calendars(project.calendars)  # add_business_hours(…, 'support')
        self.dialect_name = dialect_name
        self.entity_tables = build_tables(project)
        self.dialect = dialect
        self.outbox = Outbox(dialect)
        self.access = AccessPolicy(project)
        self.audit = AuditLog(dialect)
        self._stores: dict[str, EntityStore] = {}
        self._by_path: dict[tuple[str, str], EntityStore] = {}
        for entity in project.entities.values():
            if entity.is_child:
                continue
            children = {}
            for field in entity.fields.values():
                if field.entity is not None:
                    child = project.entity(field.entity)
                    children[field.name] = self._make_store(child.qualified_name, dialect, {})
            store = self._make_store(entity.qualified_name, dialect, children)
            self._by_path[(entity.pack, entity.name)] = store
        self.rollups, keepers = compile_rollups(
            project, self.store_for, dialect=dialect, dialect_name=dialect_name
        )
        """Every rollup's statements (``tessera recompute`` reads them); each store whose
        writes change one holds its ``Keeper``."""
        for name, keeper in keepers.items():
            self._stores[name].rollups = keeper
        self.reports = compile_reports(project)
        """Every pack's reports by qualified name, their expressions compiled."""

    def _make_store(
        self, qualified_name: str, dialect: Dialect, children: dict[str, EntityStore]
    ) -> EntityStore:
        store = EntityStore(
            self.project.entity(qualified_name),
            self.entity_tables.tables[qualified_name],
            self,
            dialect=dialect,
            dialect_name=self.dialect_name,
            children=children,
        )
        self._stores[qualified_name] = store
        return store

    @classmethod
    def for_url(cls, project: ProjectDef, url: str) -> EngineModel:
        name, dialect = dialect_for_url(url)
        return cls(project, name, dialect)

    def store_for(self, qualified_name: str) -> EntityStore:
        return self._stores[qualified_name]

    def store(self, pack: str, entity: str) -> EntityStore:
        """The store behind ``/api/v1/{pack}/{entity}``; child entities have none."""
        store = self._by_path.get((pack, entity))
        if store is None:
            raise UnknownEntity(f"no entity '{pack}.{entity}' is enabled")
        return store

    def public_stores(self) -> list[EntityStore]:
        return list(self._by_path.values())
