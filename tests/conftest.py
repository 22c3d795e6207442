"""Fixtures shared by every test folder: import path, and fresh databases on SQLite and
PostgreSQL.

`database_url` and `migrated_engine` give each test a fresh database of its own (empty, or
at the newest migration). Which databases a test runs on is one rule, `databases_of` below:

- a storage, queue or concurrency test runs twice, once per database (ids `sqlite` and
  `postgresql`, the second half marked `postgresql`): every test under tests/db/, and every
  test marked `both_databases` (per test, or `pytestmark` for a module): the worker's
  claim/pacing/pruning tests, the outage, SIGKILL and concurrent-delivery end-to-end tests,
  dedupe by constraint, the doctor's and `migrate`'s database checks, key rotation, driver
  error redaction. Mark a new test `both_databases` when what it proves depends on the
  database (a constraint, a lock, a transaction, a dialect's SQL or error);
- every other test runs on SQLite only (id `sqlite`): what it proves is HTTP, flows and
  pages, which are the same code on both databases, so the PostgreSQL half only cost time;
- a test that parametrises `database_url` itself (the browser tests: `["sqlite"]`) keeps its
  own list.

`migrated_engine` and the `stack` fixture (tests/harness/stack.py) start from a copy of a
database migrated once per test process (a file copy on SQLite, `CREATE DATABASE … TEMPLATE`
on PostgreSQL) instead of running every migration for every test; tests/db/
test_db_migrations.py still runs them from an empty `database_url`. The `stack` fixture
mostly starts from a copy of a later template still, taken after an install
(`MigratedTemplates.save`: the stacks' snapshot of the install).

PostgreSQL is expected on 127.0.0.1:5432 (scripts/test.sh starts it when it is down);
`TEST_POSTGRES_URL` points elsewhere. A PostgreSQL test that cannot reach the server
FAILS rather than skips: the service claims to run on both databases (R40), so a suite
that silently ran on one only would prove half of it.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import sqlite3
import ssl
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx._transports.default
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

# Helper modules that live directly in tests/ (`openapi_hubspot`, shared by the adapter and
# sandbox tests) are imported by name; the tests are not a package (no __init__.py).
TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

# The worker processes the tests start share the machine with the other test processes
# (pytest-xdist), not with one web process of their own: at the production niceness (10,
# issue 17 item 2) they would get a sliver of a busy CI machine and time out. A test of the
# niceness itself sets it (tests/cli/test_cli_worker_niceness.py). Likewise the scheduling
# policy: under SCHED_IDLE (the production default) they would run only when no test
# process wants the core.
os.environ.setdefault("WORKER_NICENESS", "0")
os.environ.setdefault("WORKER_CPU_POLICY", "normal")

from harness import cpu_report  # noqa: E402
from harness.ordering import long_tests_first  # noqa: E402
from harness.private_postgres import (  # noqa: E402
    PrivatePostgres,
    started_in_a_temporary_directory,
)

from whatsapp_helpdesk.db.migrate import upgrade  # noqa: E402
from whatsapp_helpdesk.db.session import make_engine  # noqa: E402

# Every httpx client builds an SSL context by reading certifi's whole CA bundle (a tenth of a
# second of CPU), and a stack makes four clients that only ever speak plain HTTP on loopback:
# in tests, clients with the default settings share one context (contexts are shareable;
# any other `verify`/`cert` still gets its own).
_create_ssl_context = httpx._transports.default.create_ssl_context


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    return _create_ssl_context()


def _ssl_context(verify: object = True, cert: object = None, trust_env: bool = True,
                 ) -> ssl.SSLContext:
    if verify is True and cert is None and trust_env:
        return _default_ssl_context()
    return _create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)  # type: ignore[arg-type]


httpx._transports.default.create_ssl_context = _ssl_context  # type: ignore[assignment]

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
        self.templates: list[str] = []

    def url_of(self, database: str) -> str:
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database `name` (empty, or a copy of the database `template`)."""
        copy = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as connection:
            # A database left by a crashed earlier session whose pid we now reuse (or, with a
            # template, the empty one `database_url` made under this name).
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
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
        for name in [*server.templates, DATABASE_PREFIX]:
            server.drop_database(name)
        server.admin.dispose()
        if private is not None:
            private.destroy()


# Folders whose every test runs on both databases; elsewhere a test says `both_databases`.
BOTH_DATABASES_FOLDERS = {"db"}
POSTGRESQL = pytest.param("postgresql", marks=pytest.mark.postgresql)


def databases_of(definition: pytest.Item) -> list[object]:
    """The databases a test that uses `database_url` runs on (the rule of the docstring)."""
    folder = Path(str(definition.path)).resolve().relative_to(Path(TESTS_DIR)).parts[0]
    if folder in BOTH_DATABASES_FOLDERS or definition.get_closest_marker("both_databases"):
        return ["sqlite", POSTGRESQL]
    return ["sqlite"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0]
        if "database_url" in (names.replace(" ", "").split(",") if isinstance(names, str)
                              else names):
            return  # the test chose its databases itself
    # The PostgreSQL half carries the `postgresql` marker, so that a run can take or leave it
    # (`-m postgresql` is the PostgreSQL job); ids stay "sqlite" and "postgresql".
    metafunc.parametrize("database_url", databases_of(metafunc.definition), indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty database (no tables), on SQLite or PostgreSQL (see above)."""
    if getattr(request, "param", "sqlite") == "sqlite":
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


class MigratedTemplates:
    """One database per kind migrated once per test process, copied into a test's fresh
    `database_url` (a file copy on SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL: each
    a few milliseconds, where running the twelve migrations costs a few tenths of a second).
    Each xdist worker has its own templates: PostgreSQL refuses to copy a template that
    another session is connected to."""

    def __init__(self, folder: Path, request: pytest.FixtureRequest):
        self._folder = folder
        self._request = request
        self._saved = itertools.count(1)

    @functools.cached_property
    def _sqlite_template(self) -> Path:
        path = self._folder / "migrated.db"
        engine = make_engine(f"sqlite:///{path}")
        try:
            upgrade(engine)
        finally:
            engine.dispose()  # the last connection closing folds the WAL into the file
        return path

    @functools.cached_property
    def _postgres_template(self) -> str:
        server: PostgresServer = self._request.getfixturevalue("postgres_server")
        name = f"{DATABASE_PREFIX}_migrated"
        server.templates.append(name)  # dropped with the session's own database
        engine = make_engine(server.create_database(name))
        try:
            upgrade(engine)
        finally:
            engine.dispose()  # CREATE DATABASE … TEMPLATE needs it unused
        return name

    def fill(self, database_url: str, template: str | None = None) -> None:
        """Make the fresh, empty database at `database_url` a migrated one: a copy of the
        migrated template, or of `template` (one `save` answered)."""
        url = make_url(database_url)
        server: PostgresServer
        if url.get_backend_name() == "sqlite":
            assert url.database and not Path(url.database).exists(), database_url
            shutil.copyfile(template or self._sqlite_template, url.database)
        else:
            template = template or self._postgres_template
            server = self._request.getfixturevalue("postgres_server")
            server.create_database(str(url.database), template=template)

    def save(self, database_url: str) -> str:
        """A new template copied from the database at `database_url` (the stacks' snapshot
        of an install, tests/harness/stack.py), for `fill`; dropped at the session's end."""
        url = make_url(database_url)
        name = f"{DATABASE_PREFIX}_saved_{next(self._saved)}"
        if url.get_backend_name() == "sqlite":
            assert url.database, database_url
            path = self._folder / f"{name}.db"
            # Through SQLite's backup, not a file copy: what a connection still open (the
            # install's own engine) holds in the write-ahead log is included.
            with closing(sqlite3.connect(url.database)) as source, \
                    closing(sqlite3.connect(path)) as target:
                source.backup(target)
            return str(path)
        server: PostgresServer = self._request.getfixturevalue("postgres_server")
        # CREATE DATABASE … TEMPLATE refuses a database another session is connected to,
        # and the install's engine is not disposed by the code under test.
        with server.admin.connect() as connection:
            connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": url.database})
        server.templates.append(name)
        server.create_database(name, template=str(url.database))
        return name

    def drop(self, template: str) -> None:
        """Forget a template `save` answered."""
        if template.endswith(".db"):
            Path(template).unlink(missing_ok=True)
            return
        server: PostgresServer = self._request.getfixturevalue("postgres_server")
        server.drop_database(template)
        server.templates.remove(template)


@pytest.fixture(scope="session")
def migrated_templates(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
) -> MigratedTemplates:
    return MigratedTemplates(tmp_path_factory.mktemp("templates"), request)


@pytest.fixture
def migrated_database_url(database_url: str, migrated_templates: MigratedTemplates) -> str:
    """`database_url`, the same URL, brought to the latest migration (from the template)."""
    migrated_templates.fill(database_url)
    return database_url


@pytest.fixture
def migrated_engine(migrated_database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database at the latest migration."""
    engine = make_engine(migrated_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # The sandbox pair the stacks of this process shared, if a stack ran (the harness is
    # imported only by the tests that use it: a unit run does not load the apps).
    stack_harness = sys.modules.get("harness.stack")
    if stack_harness is not None:
        stack_harness.stop_shared_sandboxes()


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
NOT_FOR_UNIT_TESTS = {"database_url", "migrated_database_url", "migrated_engine",
                      "postgres_server", "stack"}


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


# --- The long tests first (issue 13 item 5): tests/harness/ordering.py -----------------------
class LongTestsFirst:
    """A plugin of its own: this module's `pytest_collection_modifyitems` sets the tiers, and
    this one must run after every other (`-k`/`-m` deselect there: slices are of what runs)."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        workerinput = getattr(config, "workerinput", None)
        workers = int(workerinput["workercount"]) if workerinput else 1
        items[:] = long_tests_first(items, workers)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(LongTestsFirst(), "long-tests-first")
    cpu_report.register(config)


# --- Where the suite's CPU goes (issue 13 item 5): `--cpu-report`, tests/harness/cpu_report.py -
pytest_addoption = cpu_report.pytest_addoption
