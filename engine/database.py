"""Async access to the database, one small adapter per driver.

The engine compiles its SQL with SQLAlchemy once per statement shape and executes the
resulting strings through the fastest driver available: asyncpg on PostgreSQL (prepared
statements cached per connection), the standard ``sqlite3`` module on SQLite. Driver
integrity errors are translated into ``IntegrityViolation`` so that nothing above this
module knows which driver runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
import orjson
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect
from sqlalchemy.engine import make_url

from engine.errors import SchemaChanged

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Sequence

    from sqlalchemy.engine import Dialect


@dataclass(frozen=True, slots=True)
class IntegrityViolation(Exception):
    """A constraint refused a write. ``kind`` is unique, foreign_key or not_null."""

    kind: str
    constraint: str | None
    columns: tuple[str, ...]
    detail: str
    on_delete: bool = False


class Connection(Protocol):
    async def fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]: ...

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None: ...

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        """Run a statement; return the number of rows it changed."""

    def savepoint(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def fetchrow_committed(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        """Run one statement in a transaction of its own, committed before this returns,
        whatever becomes of this connection's transaction: its locks are held for that one
        statement only (a series' next number that no write waits on). On PostgreSQL it
        runs on a connection of a small pool kept for it. On SQLite, whose writes run one
        at a time (a second connection would wait for the write lock this one holds), it
        runs in this connection's transaction and is run again once a rollback of that
        transaction, or of a savepoint around it, has undone it: its effect stays as if
        committed at once, so it must be a statement that does the same again (a counter
        raised by one)."""

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (an explicit one, or a savepoint's)."""


class Database(Protocol):
    dialect_name: str
    sa_dialect: Dialect

    def connection(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A connection for reads outside a transaction."""

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Connection]:
        """A connection inside a transaction, committed when the block ends normally."""

    async def forget_statements(self) -> None:
        """Drop prepared statements after the schema changed."""

    async def close(self) -> None: ...


async def open_database(url: str, *, pool_size: int = 10) -> Database:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return SqliteDatabase(parsed.database or ":memory:")
    if parsed.get_backend_name() == "postgresql":
        return await PostgresDatabase.open(url, pool_size=pool_size)
    raise ValueError(
        f"unsupported database '{parsed.get_backend_name()}': use sqlite or postgresql"
    )


# -- PostgreSQL ---------------------------------------------------------------------------


def asyncpg_dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _translate_asyncpg(exc: Exception) -> IntegrityViolation | None:
    if isinstance(exc, asyncpg.UniqueViolationError):
        return IntegrityViolation("unique", exc.constraint_name, (), str(exc.detail or exc))
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        on_delete = "update or delete on table" in str(exc) and "is still referenced" in str(
            exc.detail or ""
        )
        return IntegrityViolation(
            "foreign_key", exc.constraint_name, (), str(exc.detail or exc), on_delete=on_delete
        )
    if isinstance(exc, asyncpg.NotNullViolationError):
        return IntegrityViolation("not_null", None, (exc.column_name,), str(exc))
    return None


# A statement that names a column or table the database no longer has (or prepared against
# a table that has since changed) means definitions and schema are out of step: a migration
# ran in another process and this one has not reloaded yet.
_ASYNCPG_SCHEMA_ERRORS = (
    asyncpg.InvalidCachedStatementError,
    asyncpg.UndefinedColumnError,
    asyncpg.UndefinedTableError,
)
_SQLITE_SCHEMA_MESSAGES = ("no such column", "no such table", "has no column named")


def _schema_changed() -> SchemaChanged:
    return SchemaChanged(
        "the database schema does not match the definitions this server has loaded "
        "(a migration just ran); retry in a moment"
    )


class _PostgresConnection:
    __slots__ = ("_apart", "_conn")

    def __init__(self, conn: Any, apart: Any) -> None:
        self._conn = conn
        self._apart = apart
        """The pool of ``fetchrow_committed``: its own, so that a statement drawn there
        never waits for a connection that a transaction waiting on it holds."""

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        try:
            rows: list[Sequence[Any]] = await self._conn.fetch(sql, *args)
        except _ASYNCPG_SCHEMA_ERRORS:
            raise _schema_changed() from None
        except asyncpg.PostgresError as exc:
            raise _translate_asyncpg(exc) or exc from None
        return rows

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        try:
            row: Sequence[Any] | None = await self._conn.fetchrow(sql, *args)
        except _ASYNCPG_SCHEMA_ERRORS:
            raise _schema_changed() from None
        except asyncpg.PostgresError as exc:
            raise _translate_asyncpg(exc) or exc from None
        return row

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        try:
            status: str = await self._conn.execute(sql, *args)
        except _ASYNCPG_SCHEMA_ERRORS:
            raise _schema_changed() from None
        except asyncpg.PostgresError as exc:
            raise _translate_asyncpg(exc) or exc from None
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        async with self._conn.transaction():
            yield

    async def fetchrow_committed(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        async with self._apart.acquire() as conn:  # no transaction block: autocommit
            return await _PostgresConnection(conn, self._apart).fetchrow(sql, args)

    @property
    def in_transaction(self) -> bool:
        return bool(self._conn.is_in_transaction())


async def _init_postgres_connection(conn: Any) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda v: orjson.dumps(v, default=str).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: Any) -> None:
    """Skip asyncpg's reset round trip on every release: Tessera never leaves session state
    behind (no SET, LISTEN, advisory locks or cursors outside a transaction block), and an
    interrupted transaction is rolled back by its own context manager."""


_APART_POOL_SIZE = 4
"""The most connections ``fetchrow_committed`` opens: each runs one short statement."""


class PostgresDatabase:
    dialect_name = "postgresql"

    def __init__(self, pool: Any, apart: Any) -> None:
        self._pool = pool
        self._apart = apart
        self.sa_dialect: Dialect = asyncpg_dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]

    @classmethod
    async def open(cls, url: str, *, pool_size: int) -> PostgresDatabase:
        pool = await asyncpg.create_pool(
            asyncpg_dsn(url),
            min_size=1,
            max_size=pool_size,
            init=_init_postgres_connection,
            reset=_keep_session,
        )
        # statements committed apart from the transaction at hand (fetchrow_committed):
        # one at a time each, opened when first needed
        apart = await asyncpg.create_pool(
            asyncpg_dsn(url),
            min_size=0,
            max_size=min(pool_size, _APART_POOL_SIZE),
            init=_init_postgres_connection,
            reset=_keep_session,
        )
        return cls(pool, apart)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire() as conn:
                yield _PostgresConnection(conn, self._apart)
        except SchemaChanged:
            await self.forget_statements()
            raise

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield _PostgresConnection(conn, self._apart)
        except SchemaChanged:
            await self.forget_statements()
            raise

    async def forget_statements(self) -> None:
        """Prepared statements may describe tables as they were before a migration: each
        pooled connection is replaced (with an empty statement cache) when next released."""
        await self._pool.expire_connections()
        await self._apart.expire_connections()

    async def close(self) -> None:
        await self._pool.close()
        await self._apart.close()


# -- SQLite -------------------------------------------------------------------------------


def _translate_sqlite(exc: sqlite3.IntegrityError) -> IntegrityViolation:
    message = str(exc)
    if message.startswith("UNIQUE constraint failed:"):
        columns = tuple(
            part.strip().split(".", 1)[-1] for part in message.split(":", 1)[1].split(",")
        )
        return IntegrityViolation("unique", None, columns, message)
    if message.startswith("NOT NULL constraint failed:"):
        return IntegrityViolation("not_null", None, (message.rsplit(".", 1)[-1],), message)
    return IntegrityViolation("foreign_key", None, (), message)


class _SqliteConnection:
    """One shared ``sqlite3`` connection; the database's lock serialises its users."""

    __slots__ = ("_committed", "_conn", "_savepoints")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._savepoints = 0
        self._committed: list[tuple[str, tuple[Any, ...]]] = []
        """The ``fetchrow_committed`` statements of the open transaction, in order: run
        again once a rollback undid them."""

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    async def fetchrow_committed(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        row = await self.fetchrow(sql, args)
        if self._conn.in_transaction:
            self._committed.append((sql, tuple(args)))
        return row

    def redo_committed(self, since: int = 0) -> None:
        """Run again the ``fetchrow_committed`` statements from the ``since``-th on, which a
        rollback just undid. One that fails now is left undone: a number given back, never
        one given twice."""
        for sql, args in self._committed[since:]:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute(sql, args)

    def _run(self, sql: str, args: Sequence[Any]) -> sqlite3.Cursor:
        try:
            return self._conn.execute(sql, tuple(args))
        except sqlite3.IntegrityError as exc:
            raise _translate_sqlite(exc) from None
        except sqlite3.OperationalError as exc:
            if any(text in str(exc) for text in _SQLITE_SCHEMA_MESSAGES):
                raise _schema_changed() from None
            raise

    async def fetch(self, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
        return self._run(sql, args).fetchall()

    async def fetchrow(self, sql: str, args: Sequence[Any]) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self._run(sql, args).fetchone()
        return row

    async def execute(self, sql: str, args: Sequence[Any]) -> int:
        return self._run(sql, args).rowcount

    @contextlib.asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        self._conn.execute(f"SAVEPOINT {name}")
        mark = len(self._committed)
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            self.redo_committed(mark)
            raise
        else:
            self._conn.execute(f"RELEASE {name}")


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A ``sqlite3`` connection configured as Tessera expects (also used by migrations)."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA busy_timeout = 10000")
    # SQLite's own lower() only folds ASCII; searches must find 'Émile' with 'émile'.
    conn.create_function("lower", 1, _unicode_lower, deterministic=True)
    return conn


class SqliteDatabase:
    dialect_name = "sqlite"

    def __init__(self, path: str) -> None:
        self._conn = connect_sqlite(path)
        self._lock = asyncio.Lock()
        self.sa_dialect: Dialect = sqlite_dialect()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._lock:
            yield _SqliteConnection(self._conn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            conn = _SqliteConnection(self._conn)
            try:
                yield conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                conn.redo_committed()  # outside a transaction now: each commits at once
                raise
            else:
                self._conn.execute("COMMIT")

    async def forget_statements(self) -> None:
        """SQLite re-prepares statements after a schema change by itself."""

    async def close(self) -> None:
        self._conn.close()
