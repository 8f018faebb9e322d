"""SQLAlchemy tables built from entity definitions: one table per entity, one typed column
per stored field, plus system columns. Built once at start-up; nothing here touches a
database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from engine.fieldtypes import kind_of
from metadata import FieldType, OnDelete

if TYPE_CHECKING:
    from metadata import EntityDef, FieldDef, ProjectDef

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}
PARENT_COLUMN = "_parent"
POSITION_COLUMN = "_position"
_ON_DELETE_SQL = {
    OnDelete.RESTRICT: "RESTRICT",
    OnDelete.CASCADE: "CASCADE",
    OnDelete.SET_NULL: "SET NULL",
}

_INDEXED_TYPES = frozenset({FieldType.REFERENCE, FieldType.USER})
"""Field types indexed whatever the field says: a list filters on them."""

#: Primary keys are BIGINT; on SQLite only INTEGER PRIMARY KEY aliases the rowid.
ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")

system_metadata = MetaData(naming_convention=NAMING_CONVENTION)
sequence_table = Table(
    "tessera_sequence",
    system_metadata,
    Column("series", String(200), primary_key=True),
    Column("value", BigInteger(), nullable=False),
)
migration_log_table = Table(
    "tessera_migration",
    system_metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    Column("applied_by", String(200), nullable=False),
    Column("definitions_hash", String(64), nullable=False),
    Column("plan", Text(), nullable=False),
)
module_registry_table = Table(
    "tessera_module",
    system_metadata,
    Column("name", String(100), primary_key=True),
    Column("version", String(50), nullable=False),
    Column("installed_at", DateTime(timezone=True), nullable=False),
    Column("upgraded_at", DateTime(timezone=True), nullable=False),
)
outbox_table = Table(
    "tessera_outbox",
    system_metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("event_key", String(64), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),
    Column("entity", String(200), nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", Float(53), nullable=False),
    Column("claimed_until", Float(53), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("created_at", Float(53), nullable=False),
    Column("delivered_at", Float(53), nullable=True),
    Index("ix_tessera_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)
schedule_run_table = Table(
    "tessera_schedule_run",
    system_metadata,
    Column("rule", String(400), primary_key=True),
    Column("slot", String(40), primary_key=True),
    Column("ran_at", Float(53), nullable=False),
)
user_table = Table(
    "tessera_user",
    system_metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("username", String(150), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=True),
    Column("roles", Text(), nullable=False),
    Column("active", Integer(), nullable=False),
    Column("created_at", Float(53), nullable=False),
    Column("locale", String(35), nullable=True),
    Column("timezone", String(64), nullable=True),
)
token_table = Table(
    "tessera_token",
    system_metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("user_id", ID_TYPE, ForeignKey("tessera_user.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float(53), nullable=False),
    Column("expires_at", Float(53), nullable=True),
    Column("revoked_at", Float(53), nullable=True),
    Index("ix_tessera_token_user_id", "user_id"),
)
audit_table = Table(
    "tessera_audit",
    system_metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("at", Float(53), nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("entity", String(200), nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("action", String(20), nullable=False),
    Column("changes", Text(), nullable=False),
    Index("ix_tessera_audit_entity_record_id", "entity", "record_id"),
)
posting_table = Table(
    "tessera_posting",
    system_metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("voucher_type", String(200), nullable=False),
    Column("voucher_id", BigInteger(), nullable=False),
    Column("seq", Integer(), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("target", String(200), nullable=False),
    Column("target_id", BigInteger(), nullable=False),
    Column("deltas", Text(), nullable=False),
    Column("at", String(400), nullable=False),
    Column("ledger_seq", Integer(), nullable=True),
    Column("after", Text(), nullable=True),
    Index("ix_tessera_posting_voucher_type_voucher_id", "voucher_type", "voucher_id"),
)
"""What each submit posted (ledger rows, balance and record increments), so that its cancel
reverses exactly that, whatever the definitions say by then (engine/postings)."""
table_registry_table = Table(
    "tessera_table",
    system_metadata,
    Column("name", String(200), primary_key=True),
    Column("entity", String(200), nullable=False),
)


class TableNameClash(ValueError):
    pass


def table_name(entity: EntityDef) -> str:
    return f"{entity.pack}_{entity.name}"


@dataclass(frozen=True, slots=True)
class EntityTables:
    metadata: MetaData
    tables: dict[str, Table]


def build_tables(project: ProjectDef) -> EntityTables:
    """Tables for every enabled entity, in an order where referenced tables come first."""
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    tables: dict[str, Table] = {}
    owners: dict[str, str] = {}
    for entity in project.entities.values():
        name = table_name(entity)
        if name in owners:
            raise TableNameClash(
                f"entities {owners[name]} and {entity.qualified_name} would share the table "
                f"'{name}'; rename one of them"
            )
        owners[name] = entity.qualified_name
    cyclic = _cyclic_references(project)
    for entity in project.entities.values():
        tables[entity.qualified_name] = _entity_table(metadata, project, entity, cyclic)
    return EntityTables(metadata, tables)


def _cyclic_references(project: ProjectDef) -> frozenset[tuple[str, str]]:
    """The references (entity, field) on a cycle of references between different entities
    (a lead's converted opportunity, an opportunity's lead): their foreign keys are added
    after both tables exist (``use_alter``), since neither table can be created first."""
    targets: dict[str, set[str]] = {}
    for entity in project.entities.values():
        targets[entity.qualified_name] = {
            f.to
            for f in entity.fields.values()
            if f.type is FieldType.REFERENCE and f.to and f.to != entity.qualified_name
        }

    def reaches(start: str, goal: str) -> bool:
        seen: set[str] = set()
        stack = [start]
        while stack:
            current = stack.pop()
            if current == goal:
                return True
            if current not in seen:
                seen.add(current)
                stack.extend(targets.get(current, ()))
        return False

    return frozenset(
        (entity.qualified_name, f.name)
        for entity in project.entities.values()
        for f in entity.fields.values()
        if f.type is FieldType.REFERENCE
        and f.to
        and f.to != entity.qualified_name
        and reaches(f.to, entity.qualified_name)
    )


def server_default(field: FieldDef) -> Any:
    """A constant field default is also the column's DEFAULT: adding such a column fills the
    rows already there (without rewriting the table on PostgreSQL 11+), and rows written by
    tools other than Tessera get it too."""
    if field.default_is_expression:
        return None  # evaluated per record by the engine, not a constant the column can hold
    value = field.default
    if value is None:
        return None
    return kind_of(field).server_default(field, value)


def _entity_table(
    metadata: MetaData,
    project: ProjectDef,
    entity: EntityDef,
    cyclic: frozenset[tuple[str, str]] = frozenset(),
) -> Table:
    name = table_name(entity)
    columns: list[Column[Any]] = [Column("id", ID_TYPE, primary_key=True, autoincrement=True)]
    if entity.parent is not None:
        parent_table = table_name(project.entity(entity.parent))
        columns.append(
            Column(
                PARENT_COLUMN,
                BigInteger(),
                ForeignKey(f"{parent_table}.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            )
        )
        columns.append(Column(POSITION_COLUMN, Integer(), nullable=False))
    for field in entity.fields.values():
        if not field.is_stored:
            continue
        column_args: list[Any] = []
        if field.type is FieldType.REFERENCE and field.to is not None:
            target = table_name(project.entity(field.to))
            column_args.append(
                ForeignKey(
                    f"{target}.id",
                    ondelete=_ON_DELETE_SQL[field.on_delete or OnDelete.RESTRICT],
                    use_alter=(entity.qualified_name, field.name) in cyclic,
                )
            )
        columns.append(
            Column(
                field.name,
                kind_of(field).column_type(field),
                *column_args,
                nullable=not field.required or field.type is FieldType.AUTONUMBER,
                unique=field.unique or field.type is FieldType.AUTONUMBER,
                index=(field.index or field.type in _INDEXED_TYPES) and not field.unique,
                server_default=server_default(field),
                comment=field.label,
                info={"renamed_from": getattr(field, "renamed_from", None)},
            )
        )
    columns += [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("created_by", String(64)),
        Column("updated_by", String(64)),
        Column("version", BigInteger(), nullable=False, server_default="1"),
    ]
    table = Table(name, metadata, *columns, comment=entity.label)
    for group in entity.unique:
        table.append_constraint(UniqueConstraint(*group))
    for group in entity.indexes:
        Index(None, *(table.c[c] for c in group))
    return table
