"""``tessera_file``: one row per stored file, saying what it is and whose it is.

A row names the record the file belongs to (entity and id) and the ``file`` field holding
it, or no field for an attachment; the bytes are in the instance's ``FileStorage`` under
``key``. Rows are written in the transaction of the write that makes them the record's, so
a failed write leaves no row; the bytes of a row removed are deleted after its transaction
commits (``engine.files.service``). The table is created by ``tessera migrate``
(migrations/versions/0010_files.py).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    String,
    Table,
    and_,
    bindparam,
    delete,
    insert,
    select,
)

from engine.sql import CompiledSql, compile_sql
from engine.tables import ID_TYPE, system_metadata

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Dialect

    from engine.database import Connection

file_table = Table(
    "tessera_file",
    system_metadata,
    Column("id", ID_TYPE, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(200), nullable=False),
    Column("size", BigInteger(), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("entity", String(200), nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("field", String(100), nullable=True),
    Column("created_by", String(64), nullable=True),
    Column("created_at", Float(53), nullable=False),
    Index("ix_tessera_file_entity_record_id", "entity", "record_id"),
)


@dataclass(frozen=True, slots=True)
class FileRow:
    """One ``tessera_file`` row."""

    id: int
    key: str
    filename: str
    content_type: str
    size: int
    sha256: str
    entity: str
    record_id: str
    field: str | None
    created_by: str | None
    created_at: float


_COLUMNS = tuple(file_table.c)
_INSERTED = ("key", "filename", "content_type", "size", "sha256", "entity", "record_id")


def _row(values: Sequence[Any]) -> FileRow:
    (id_, key, filename, ctype, size, sha, entity, record_id, field, by, at) = values
    return FileRow(
        int(id_), key, filename, ctype, int(size), sha, entity, record_id, field, by, float(at)
    )


class FileCatalog:
    """The SQL of ``tessera_file`` for one dialect, compiled once."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    @functools.cached_property
    def _insert(self) -> CompiledSql:
        statement = insert(file_table).returning(file_table.c.id)
        return compile_sql(
            statement, self.dialect, [*_INSERTED, "field", "created_by", "created_at"]
        )

    @functools.cached_property
    def _by_id(self) -> CompiledSql:
        c = file_table.c
        statement = select(*_COLUMNS).where(
            and_(
                c.id == bindparam("id"),
                c.entity == bindparam("entity"),
                c.record_id == bindparam("record_id"),
            )
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _attachments(self) -> CompiledSql:
        c = file_table.c
        statement = (
            select(*_COLUMNS)
            .where(
                and_(
                    c.entity == bindparam("entity"),
                    c.record_id == bindparam("record_id"),
                    c.field.is_(None),
                )
            )
            .order_by(c.id)
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _of_record(self) -> CompiledSql:
        c = file_table.c
        statement = select(c.key).where(
            and_(c.entity == bindparam("entity"), c.record_id == bindparam("record_id"))
        )
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _delete_one(self) -> CompiledSql:
        c = file_table.c
        statement = delete(file_table).where(c.id == bindparam("id")).returning(c.key)
        return compile_sql(statement, self.dialect)

    @functools.cached_property
    def _delete_record(self) -> CompiledSql:
        c = file_table.c
        statement = delete(file_table).where(
            and_(c.entity == bindparam("entity"), c.record_id == bindparam("record_id"))
        )
        return compile_sql(statement, self.dialect)

    async def add(
        self,
        conn: Connection,
        *,
        key: str,
        filename: str,
        content_type: str,
        size: int,
        sha256: str,
        entity: str,
        record_id: int,
        field: str | None,
        created_by: str | None,
    ) -> FileRow:
        params = {
            "key": key,
            "filename": filename,
            "content_type": content_type,
            "size": size,
            "sha256": sha256,
            "entity": entity,
            "record_id": str(record_id),
            "field": field,
            "created_by": created_by,
            "created_at": time.time(),
        }
        row = await conn.fetchrow(self._insert.sql, self._insert.args(params))
        assert row is not None
        return FileRow(int(row[0]), **params)  # type: ignore[arg-type]

    async def get(
        self, conn: Connection, file_id: int, *, entity: str, record_id: int
    ) -> FileRow | None:
        """The file ``file_id`` if it belongs to that record; None otherwise."""
        params = {"id": file_id, "entity": entity, "record_id": str(record_id)}
        row = await conn.fetchrow(self._by_id.sql, self._by_id.args(params))
        return None if row is None else _row(row)

    async def attachments(self, conn: Connection, *, entity: str, record_id: int) -> list[FileRow]:
        params = {"entity": entity, "record_id": str(record_id)}
        rows = await conn.fetch(self._attachments.sql, self._attachments.args(params))
        return [_row(r) for r in rows]

    async def remove(self, conn: Connection, file_id: int) -> str | None:
        """Remove the row; answer its storage key (None: no such row)."""
        row = await conn.fetchrow(self._delete_one.sql, self._delete_one.args({"id": file_id}))
        return None if row is None else str(row[0])

    async def remove_record(self, conn: Connection, *, entity: str, record_id: int) -> list[str]:
        """Remove every file row of the record (its file fields' and its attachments');
        answer their storage keys, to delete once the transaction has committed."""
        params = {"entity": entity, "record_id": str(record_id)}
        keys = [
            str(r[0]) for r in await conn.fetch(self._of_record.sql, self._of_record.args(params))
        ]
        if keys:
            await conn.execute(self._delete_record.sql, self._delete_record.args(params))
        return keys
