"""An entity's columns as the store reads them (decoders from the driver's values) and as
lists and aggregates query them (``QueryColumns``), built once per entity."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from engine.fieldtypes import id_text, kind_of
from engine.fieldtypes.temporal import sqlite_datetime_text
from engine.query import QueryColumn, QueryColumns
from metadata import FieldType
from metadata._fieldkeys import TYPE_TRAITS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from sqlalchemy import Table

    from metadata import EntityDef, FieldDef

SYSTEM_TAIL = ("created_at", "updated_at", "created_by", "updated_by", "version")


def build_decoders(
    stored_fields: Iterable[FieldDef], dialect_name: str
) -> dict[str, Callable[[Any], Any] | None]:
    """Each column's conversion from the driver's value (None: taken as it comes)."""
    decoders: dict[str, Callable[[Any], Any] | None] = {"id": id_text}
    for field in stored_fields:
        decoders[field.name] = kind_of(field).from_db(field, dialect_name)
    timestamp = dt.datetime.fromisoformat if dialect_name == "sqlite" else None
    decoders.update(
        created_at=timestamp,
        updated_at=timestamp,
        created_by=None,
        updated_by=None,
        version=None,
    )
    return decoders


def query_columns(
    entity: EntityDef,
    table: Table,
    stored_fields: Iterable[FieldDef],
    to_db: Mapping[str, Callable[[Any], Any] | None],
    all_fields: tuple[str, ...],
    dialect_name: str,
) -> QueryColumns:
    """What filters, sorts, search (``q``) and aggregates may use of an entity's table."""
    stored_fields = tuple(stored_fields)
    columns: dict[str, QueryColumn] = {"id": QueryColumn("id", None, False, None)}
    for field in stored_fields:
        if field.type in (FieldType.JSON, FieldType.FILE):  # documents, not compared
            continue
        columns[field.name] = QueryColumn(
            field.name,
            field.type,
            nullable=not field.required or field.type is FieldType.AUTONUMBER,
            to_db=to_db[field.name],
            target=field.to,
        )
    timestamp_to_db = sqlite_datetime_text if dialect_name == "sqlite" else None
    for name in ("created_at", "updated_at"):
        columns[name] = QueryColumn(name, FieldType.DATETIME, False, timestamp_to_db)
    for name in ("created_by", "updated_by"):
        columns[name] = QueryColumn(name, FieldType.STRING, True, None)
    columns["version"] = QueryColumn("version", FieldType.INTEGER, False, None)
    title = entity.title
    search = tuple(f.name for f in stored_fields if f.name == title or TYPE_TRAITS[f.type].searched)
    return QueryColumns(
        entity=entity.qualified_name,
        table=table,
        columns=columns,
        search=search,
        expandable=tuple(f.name for f in stored_fields if f.type is FieldType.REFERENCE),
        all_fields=all_fields,
        uncompared=tuple(
            (f.name, f.type)
            for f in entity.fields.values()
            if f.type in (FieldType.JSON, FieldType.FILE, FieldType.CHILDREN)
        ),
    )
