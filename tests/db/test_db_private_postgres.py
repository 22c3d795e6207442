"""The suite needs no system PostgreSQL and no root for it (issue 15 item 10): when no
server answers on the configured URL, it starts a private cluster of its own from the
`pgserver` package's binaries (Debian's when installed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from harness.private_postgres import PrivatePostgres, free_port, package_binaries
from sqlalchemy import inspect

from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.session import make_engine

ROOT = Path(__file__).resolve().parents[2]


def test_a_cluster_from_the_python_package_alone_takes_the_migrations(tmp_path: Path) -> None:
    binaries = package_binaries()
    assert binaries is not None, "the pgserver test extra is not installed"
    server = PrivatePostgres(tmp_path / "pg", binaries=binaries)
    try:
        server.init()
        server.start()
        server.create_database("bridge")
        engine = make_engine(server.sqlalchemy_url("bridge"))
        try:
            upgrade(engine)
            assert {"messages", "outbox", "webhook_events"} <= set(
                inspect(engine).get_table_names())
        finally:
            engine.dispose()
        with psycopg.connect(server.libpq_url("bridge")) as conn:
            [(version,)] = conn.execute("show server_version_num").fetchall()
        assert int(version) >= 160000  # the package's PostgreSQL 16, not the machine's
    finally:
        server.destroy()
    assert not server.root.exists()


@pytest.mark.slow(seconds=7)  # a pytest run in a subprocess, and a cluster's start
def test_the_suite_starts_a_private_postgresql_when_none_answers() -> None:
    """A PostgreSQL test run against a URL where nothing listens passes, on a private
    cluster; before, it failed with "PostgreSQL is not reachable"."""
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n0", "-q",
         "tests/db/test_db_migrations.py", "-m", "postgresql", "-k", "head"],
        cwd=ROOT, env={**os.environ, "TEST_POSTGRES_URL": nowhere},
        capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout, run.stdout[-2000:]
