"""A fresh database migrated to definitions seen before in this test process is restored,
not migrated again.

Most tests start from an empty database migrated to one pack (``kitchen``, a module
pack, a pack of their own); that migration (Alembic's system tables, reflection, the plan,
the DDL) took about a third of a typical test's time. The first migration of an empty
database to a given set of definitions runs for real, and the database it leaves is saved;
a later migration of an empty database to the same definitions restores that: on SQLite a
copy of the database file, on PostgreSQL the ``public`` schema replayed from ``pg_dump``'s
SQL (which recreates it exactly: tables, constraints, indexes, sequences and their values,
the rows of the system tables). The key holds all a migrated database depends on: the
dialect, the hash of the definitions' files, the packs' versions and the DDL of the tables
built from them. A database that already holds anything is always migrated for real, and
without ``pg_dump`` PostgreSQL is too.
"""

from __future__ import annotations

import atexit
import copy
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from engine.migrate import sync_engine
from engine.tables import build_tables
from metadata.fingerprint import definitions_hash

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from engine.migrate import Plan
    from engine.tables import EntityTables
    from metadata import ProjectDef
    from runtime.settings import Settings

T = TypeVar("T")
_SAVED: dict[str, tuple[object, Path] | None] = {}
"""Per key: what the real run returned (a migration's plan) and where its database was saved
(None: it could not be saved; such a key is always run)."""
_FOLDER: list[Path] = []
_PG_EMPTY = """SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = 'public')
                   + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                      WHERE n.nspname = 'public')
                   + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = 'public')"""


def migrate_or_restore(
    url: str,
    tables: EntityTables,
    *,
    definitions_hash: str,
    module_versions: Mapping[str, str],
    allow_data_loss: bool,
    migrate: Callable[[], Plan],
) -> Plan:
    """``migrate()``'s plan; on an empty database whose key was migrated before in this
    process, the saved database instead (and a copy of the plan it was migrated with)."""
    return restore_or_run(
        url,
        lambda: _key(url, tables, definitions_hash, module_versions, allow_data_loss),
        migrate,
        keep=lambda plan: not plan.refused,
    )


def restore_or_run(
    url: str,
    key: Callable[[], str],
    run: Callable[[], T],
    *,
    keep: Callable[[T], bool] = lambda _: True,
) -> T:
    """``run()`` on an empty database, whose result (when ``keep``) and the database it
    leaves are saved under ``key()``; the next empty database with that key gets a copy of
    both instead. A database that is not empty just gets ``run()``."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = Path(parsed.database or "")
        if not database.is_absolute() or _sqlite_used(database):
            return run()
    elif backend != "postgresql" or not _pg_empty(url):
        return run()
    known = key()
    if known in _SAVED:
        saved = _SAVED[known]
        if saved is None:
            return run()
        result, where = saved
        if backend == "sqlite":
            database.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(where, database)
        else:
            _pg_restore(url, Path(where).read_text(encoding="utf-8"))
        return cast("T", copy.deepcopy(result))
    result = run()
    if keep(result):
        _SAVED[known] = _save(url, known, result, database if backend == "sqlite" else None)
    return result


def definitions_key(url: str, project: ProjectDef, settings: Settings) -> str:
    """What a migrated database of ``project`` depends on, as ``Instance.migrate`` keys it."""
    return _key(
        url,
        build_tables(project),
        definitions_hash(project, settings.customizations),
        {m.name: m.version for m in project.modules.values()},
        allow_data_loss=False,
    )


def _sqlite_used(database: Path) -> bool:
    """Whether the SQLite file holds anything (or is being written: a WAL beside it)."""
    wal = database.with_name(database.name + "-wal")
    return (database.exists() and database.stat().st_size > 0) or wal.exists()


def _pg_empty(url: str) -> bool:
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        row = conn.execute(_PG_EMPTY).fetchone()
    return row is not None and row[0] == 0


def _key(
    url: str,
    tables: EntityTables,
    digest_of_definitions: str,
    module_versions: Mapping[str, str],
    allow_data_loss: bool,
) -> str:
    engine = sync_engine(url)
    dialect = engine.dialect
    engine.dispose()
    digest = hashlib.sha256()
    digest.update(f"{dialect.name}\0{digest_of_definitions}\0{allow_data_loss}\0".encode())
    digest.update(repr(sorted(module_versions.items())).encode())
    for table in tables.metadata.sorted_tables:
        digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
    return digest.hexdigest()


def _folder() -> Path:
    if not _FOLDER:
        folder = Path(tempfile.mkdtemp(prefix="tessera-migrated-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _FOLDER.append(folder)
    return _FOLDER[0]


def _save(url: str, key: str, result: object, database: Path | None) -> tuple[object, Path] | None:
    if database is not None:
        if database.with_name(database.name + "-wal").exists():
            return None  # still open somewhere: a copy of the file alone could miss pages
        where = _folder() / f"{key}.db"
        shutil.copyfile(database, where)
        return copy.deepcopy(result), where
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return None
    dumped = subprocess.run(
        [pg_dump, "--schema=public", "--no-owner", "--no-privileges", "--inserts", _plain(url)],
        capture_output=True,
        text=True,
        check=False,
    )
    if dumped.returncode != 0:  # e.g. a pg_dump older than the server
        return None
    # psql's meta-commands (\restrict, \unrestrict) are no SQL
    sql = "\n".join(line for line in dumped.stdout.splitlines() if not line.startswith("\\"))
    where = _folder() / f"{key}.sql"
    where.write_text(sql, encoding="utf-8")
    return copy.deepcopy(result), where


def _pg_restore(url: str, sql: str) -> None:
    """The dump recreates the schema ``public`` itself (it was empty)."""
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute(sql.encode("utf-8"))


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)
