"""``tessera files prune``: the file rows and bytes no record reaches any more.

Deletes through the API and the web UI remove a record's files with it. What the database
deletes by itself (the lines of a deleted parent, ``on_delete: cascade``), an entity no
longer enabled, or bytes whose deletion failed after a commit (a crash between the two)
leave rows and bytes behind. This finds them: a row whose record is gone, a field's row
that the field no longer holds, and (for a folder store) a stored file no row names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select

from engine.errors import RecordNotFound, UnknownEntity
from engine.files.catalog import FileCatalog, file_table
from engine.files.storage import FolderStorage
from engine.sql import compile_sql

if TYPE_CHECKING:
    from engine import Database, EngineModel
    from engine.database import Connection
    from engine.files.storage import FileStorage

PART_AGE_SECONDS = 3600.0
"""A temporary ``.part`` file older than this is an upload that died, not one in progress."""


@dataclass
class PruneReport:
    rows: list[int] = field(default_factory=list)
    """Ids of ``tessera_file`` rows no record reaches."""
    blobs: list[str] = field(default_factory=list)
    """Stored files (keys, or folder paths of dead uploads) no row names."""


async def prune(
    database: Database, model: EngineModel, storage: FileStorage, *, dry_run: bool
) -> PruneReport:
    """Find (and unless ``dry_run``, delete) what no record reaches."""
    report = PruneReport()
    catalog = FileCatalog(model.dialect)
    columns = file_table.c
    every = compile_sql(
        select(columns.id, columns.key, columns.entity, columns.record_id, columns.field),
        model.dialect,
    )
    keys: set[str] = set()
    dead: list[tuple[int, str]] = []
    async with database.connection() as conn:
        for row in await conn.fetch(every.sql, every.args({})):
            file_id, key, entity, record_id, name = int(row[0]), str(row[1]), row[2], row[3], row[4]
            keys.add(key)
            if not await _reached(conn, model, file_id, entity, record_id, name):
                dead.append((file_id, key))
    report.rows = [file_id for file_id, _ in dead]
    if isinstance(storage, FolderStorage):
        report.blobs = _unnamed(storage, keys)
    if dry_run:
        return report
    if dead:
        async with database.transaction() as conn:
            for file_id, _ in dead:
                await catalog.remove(conn, file_id)
        for _, key in dead:
            await storage.delete(key)
    if isinstance(storage, FolderStorage):
        for relative in report.blobs:
            (storage.root / relative).unlink(missing_ok=True)
    return report


async def _reached(
    conn: Connection,
    model: EngineModel,
    file_id: int,
    entity: str,
    record_id: str,
    name: str | None,
) -> bool:
    try:
        store = model.store_for(entity)
        record = await store.get(conn, int(record_id))
    except (UnknownEntity, RecordNotFound, KeyError, ValueError):
        return False
    if name is None:
        return True
    value = record.get(name)
    return isinstance(value, dict) and str(value.get("id")) == str(file_id)


def _unnamed(storage: FolderStorage, keys: set[str]) -> list[str]:
    """Files of the folder that no row names (``ab/ab12…``), and dead temporary files."""
    found: list[str] = []
    if not storage.root.is_dir():
        return found
    now = time.time()
    for path in sorted(storage.root.glob("*/*")):
        if not path.is_file():
            continue
        relative = f"{path.parent.name}/{path.name}"
        if path.name.endswith(".part"):
            if now - path.stat().st_mtime > PART_AGE_SECONDS:
                found.append(relative)
        elif relative not in keys:
            found.append(relative)
    return found
