"""Fixtures shared by every test folder: import path, and fresh databases on SQLite and
PostgreSQL.

`database_url` and `migrated_engine` are reused by the end-to-end tests: every test that
asks for them runs twice, once per database (ids `sqlite` and `postgresql`), each time on
a fresh, empty database of its own.

PostgreSQL is expected on 127.0.0.1:5432 (scripts/test.sh starts it when it is down);
`TEST_POSTGRES_URL` points elsewhere. A PostgreSQL test that cannot reach the server
FAILS rather than skips: the service claims to run on both databases (R40), so a suite
that silently ran on one only would prove half of it.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

# Helper modules that live directly in tests/ (`openapi_hubspot`, shared by the adapter and
# sandbox tests) are imported by name; the tests are not a package (no __init__.py).
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from harness.private_postgres import (  # noqa: E402
    PrivatePostgres,
    started_in_a_temporary_directory,
)

from whatsapp_helpdesk.db.migrate import upgrade  # noqa: E402
from whatsapp_helpdesk.db.session import make_engine  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DATABASE_PREFIX = f"whatsapp_helpdesk_test_{os.getpid()}"


class PostgresServer:
    """An autocommit connection to the server's maintenance database that makes and drops
    the throw-away databases of this test session (all named after our pid, so that two
    test sessions running side by side never touch each other's databases)."""

    def __init__(self, admin_url: URL):
        self.admin_url = admin_url
        # CREATE/DROP DATABASE cannot run inside a transaction block.
        self.admin: Engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._numbers = itertools.count(1)

    def url_of(self, database: str) -> str:
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str) -> str:
        with self.admin.connect() as connection:
            # A database left by a crashed earlier session whose pid we now reuse.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        return self.url_of(name)

    def drop_database(self, name: str) -> None:
        with self.admin.connect() as connection:
            # FORCE ends the connections a test (or a process it spawned) left open.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def next_database_name(self) -> str:
        return f"{DATABASE_PREFIX}_{next(self._numbers)}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server, with a database of this session's own (dropped at the end).

    The configured server (TEST_POSTGRES_URL, default 127.0.0.1:5432) when it answers;
    otherwise a private cluster this session starts from the server binaries at hand
    (Debian's, or the `pgserver` package's) and removes at the end. PostgreSQL tests are
    never skipped: if neither works, they fail and say why."""
    admin_url = make_url(os.environ.get("TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    server = PostgresServer(admin_url)
    private: PrivatePostgres | None = None
    try:
        server.create_database(DATABASE_PREFIX)
    except OperationalError as exc:
        server.admin.dispose()
        try:
            private = started_in_a_temporary_directory()
        except Exception as start_error:  # noqa: BLE001 — said in the failure below
            pytest.fail(
                f"PostgreSQL is not reachable at {admin_url.render_as_string()} ({exc.orig}), "
                f"and a private cluster could not be started: {start_error}. "
                "Set TEST_POSTGRES_URL, or install the test extras (pgserver). "
                "PostgreSQL tests are never skipped.",
                pytrace=False,
            )
        server = PostgresServer(make_url(private.sqlalchemy_url()))
        server.create_database(DATABASE_PREFIX)
    try:
        yield server
    finally:
        server.drop_database(DATABASE_PREFIX)
        server.admin.dispose()
        if private is not None:
            private.destroy()


# The PostgreSQL half carries the `postgresql` marker, so that a tier can take or leave it
# (`-m "not postgresql"`); ids stay "sqlite" and "postgresql".
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty database (no tables), on each of the two databases."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'helpdesk.db'}"
        return
    # Looked up only here, so that the SQLite half of the suite runs without PostgreSQL.
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.next_database_name()
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database brought to the latest migration."""
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()


# --- The three tiers (issue 13 item 5) ---------------------------------------------------------
# Each test gets exactly one of `unit`, `integration` or `browser`, from its folder (a browser
# test elsewhere already says `browser`), so that each tier is one command of the README.
UNIT_FOLDERS = {"domain", "adapters", "architecture", "docs"}


def tier_of(item: pytest.Item) -> str:
    if item.get_closest_marker("browser") is not None:
        return "browser"
    folder = Path(str(item.path)).resolve().relative_to(Path(TESTS_DIR)).parts[0]
    if folder == "browser":
        return "browser"
    return "unit" if folder in UNIT_FOLDERS else "integration"


# A unit test that asks for one of these is not one: it belongs in another folder.
NOT_FOR_UNIT_TESTS = {"database_url", "migrated_engine", "postgres_server", "stack"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        wanted = NOT_FOR_UNIT_TESTS & set(getattr(item, "fixturenames", ()))
        if tier == "unit" and wanted:
            raise pytest.UsageError(f"{item.nodeid} is in a unit folder but uses {wanted}")
        if tier == "browser" and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)
        elif tier != "browser":
            item.add_marker(getattr(pytest.mark, tier))
