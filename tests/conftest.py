"""Shared fixtures: every test that asks for ``db_url`` runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``TESSERA_TEST_PG``; the suite creates its own database there and
drops it at the end. With ``CI=true`` an unreachable server fails the run instead of
skipping the PostgreSQL half.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import yaml
from fastapi.testclient import TestClient

from engine.migrate import MigrationRefused, run_migration
from engine.tables import build_tables
from metadata.fingerprint import definitions_hash
from runtime.app import build_app, load_definitions
from runtime.settings import Settings
from tests.support.identity import bearer, issue_token
from tests.support.migrated import migrate_or_restore

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engine.migrate import Plan

REPO = Path(__file__).resolve().parent.parent
TEST_PACKS = REPO / "tests" / "packs"
PG_ADMIN_URL = os.environ.get("TESSERA_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

# Test folders (and so the SQLite databases in them) in memory where Linux offers a tmpfs:
# SQLite in WAL mode syncs the log to disk at every commit, ~3 ms on this machine's disk
# against ~0.04 ms on tmpfs, and the suite commits tens of thousands of times. pytest's own
# variable for its temporary root; one set by the caller wins.
SHM = Path("/dev/shm")
if SHM.is_dir() and os.access(SHM, os.W_OK):
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(SHM))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["all", "sqlite", "postgresql"],
        default="all",
        help="Which databases to run database tests on.",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        choice = metafunc.config.getoption("--db")
        backends = ["sqlite", "postgresql"] if choice == "all" else [choice]
        only_on = metafunc.definition.get_closest_marker("only_on")
        if only_on is not None:  # a behaviour that exists on one database only
            backends = [b for b in backends if b in only_on.args]
        marks = {"postgresql": [pytest.mark.postgres]}
        metafunc.parametrize(
            "backend",
            [pytest.param(b, marks=marks.get(b, []), id=b) for b in backends],
            scope="function",
        )


_PASSED_BY_MARK: dict[str, int] = {"postgres": 0, "redis": 0, "browser": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed:
        for mark in _PASSED_BY_MARK:
            if mark in report.keywords:
                _PASSED_BY_MARK[mark] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With CI=true a whole run must have exercised the real PostgreSQL, Redis and browser: a run
    in which none of their tests passed fails, whatever skipped them. Under pytest-xdist the
    controller counts the reports of every worker (they reach its ``pytest_runtest_logreport``);
    a worker, which sees only its share of the tests, does not judge."""
    config = session.config
    if hasattr(config, "workerinput"):
        return
    whole_run = (
        config.getoption("--db") == "all"
        and not config.option.keyword
        and not config.option.collectonly
        and config.args_source is pytest.Config.ArgsSource.TESTPATHS
    )
    ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    if ci and whole_run and session.testscollected and exitstatus == 0:
        missing = [mark for mark, count in _PASSED_BY_MARK.items() if count == 0]
        if missing:
            print(f"\nCI=true: no {' or '.join(missing)} test passed in this run", flush=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """URL of a fresh PostgreSQL database for this test session."""
    name = f"tessera_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {PG_ADMIN_URL} is unreachable: {exc}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
        pytest.skip(message)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        # a commit does not wait for its WAL record to reach the disk (4-6 ms a commit here,
        # 0.1-0.2 ms without): what a crash of the server could lose, a test database does
        # not need; every other guarantee (visibility, locking, isolation) is unchanged
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _reset_postgres(url: str) -> None:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("pg_server")
    _reset_postgres(url)
    return url


@dataclass
class Instance:
    """A Tessera instance folder on disk, with helpers to migrate and serve it."""

    path: Path
    settings: Settings

    def migrate(self, *, allow_data_loss: bool = False) -> Plan:
        """``tessera migrate``'s migration; an empty database migrated before to the same
        definitions in this process is restored instead (tests/support/migrated.py)."""
        project = load_definitions(self.settings)
        url = self.settings.database_url
        tables = build_tables(project)
        digest = definitions_hash(project, self.settings.customizations)
        versions = {m.name: m.version for m in project.modules.values()}
        plan = migrate_or_restore(
            url,
            tables,
            definitions_hash=digest,
            module_versions=versions,
            allow_data_loss=allow_data_loss,
            migrate=lambda: run_migration(
                url,
                tables,
                allow_data_loss=allow_data_loss,
                applied_by="tests",
                definitions_hash=digest,
                module_versions=versions,
            ),
        )
        if plan.refused:
            raise MigrationRefused("\n".join(plan.reasons()))
        return plan

    def token(self, username: str = "tests", roles: tuple[str, ...] = ("admin",)) -> str:
        return issue_token(self.settings.database_url, username, roles)

    @contextlib.contextmanager
    def client(self, *, signed_in: bool = True) -> Iterator[TestClient]:
        """A client of the instance's app, by default with an admin's token."""
        app = build_app(self.settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            if signed_in:
                client.headers.update(bearer(self.token()))
            yield client


def write_instance(
    path: Path,
    db_url: str,
    modules: list[str],
    module_paths: list[Path] | None = None,
    **settings: Any,
) -> Instance:
    path.mkdir(parents=True, exist_ok=True)
    config = {
        "database_url": db_url,
        "modules": modules,
        "module_paths": [str(p) for p in (module_paths or [TEST_PACKS])],
        **settings,
    }
    (path / "tessera.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return Instance(path, Settings.load(path / "tessera.yaml"))


def pack_instance(
    root: Path, db_url: str, pack: str, files: dict[str, str], **settings: Any
) -> Instance:
    """A migrated instance of one pack written from ``files`` (paths inside the pack)."""
    for relative, text in files.items():
        path = root / "packs" / pack / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    instance = write_instance(root / "i", db_url, [pack], [root / "packs"], **settings)
    instance.migrate()
    return instance


@pytest.fixture
def kitchen(db_url: str, tmp_path: Path) -> Instance:
    """The kitchen-sink test pack (every field type), migrated."""
    instance = write_instance(tmp_path / "instance", db_url, ["kitchen"])
    instance.migrate()
    return instance


@pytest.fixture
def kitchen_client(kitchen: Instance) -> Iterator[TestClient]:
    with kitchen.client() as client:
        yield client
