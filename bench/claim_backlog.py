"""Benchmark: one outbox claim under a deep backlog, and what it costs the database.

    .venv/bin/python bench/claim_backlog.py [--databases sqlite,postgresql] [--backlog 5000]
        [--claims 20]
    PYTHONPATH=/tmp/base-w/src .venv/bin/python bench/claim_backlog.py   # an older tree

For each shape of backlog (--backlog entries in 1, 50, 200 or --backlog conversations, the
heads of the first four being worked, as four worker slots do), --claims claims, each in a
transaction rolled back, so that each sees the same backlog. Printed per claim: what it
took (or none), the work counted (PostgreSQL: rows and index entries read, from the
transaction's own statistics; SQLite: VM steps), and CPU ms: on PostgreSQL the server
process's (its /proc/PID/stat, the same machine), on SQLite this thread's (the claim runs in
process). Counts do not depend on the machine's load; CPU times do, a little.
PostgreSQL must run at 127.0.0.1:5432 with trust auth for user postgres.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, text

from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.db.session import make_engine, make_session_factory

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=1)
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
STEP = 100
ROWS_READ = text(
    "SELECT pg_stat_get_xact_tuples_returned('outbox'::regclass) "
    "+ (SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) "
    "FROM pg_index WHERE indrelid = 'outbox'::regclass)")


def _engine(database: str, folder: Path) -> Engine:
    if database == "sqlite":
        return make_engine(f"sqlite:///{folder / 'claim.db'}")
    name = f"whatsapp_helpdesk_bench_claim_{os.getpid()}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return make_engine(ADMIN.rsplit("/", 1)[0] + f"/{name}")


def _drop(engine: Engine) -> None:
    name = engine.url.database
    engine.dispose()
    if engine.dialect.name == "postgresql":
        admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def _fill(engine: Engine, backlog: int, conversations: int) -> int:
    upgrade(engine)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        installation = Installation(hubspot_portal_id="1", aircall_company_id="c",
                                    created_at=NOW, updated_at=NOW)
        session.add(installation)
        session.flush()
        installation_id = installation.id
        outbox.enqueue_many(session, kind="publish_inbound", payload={}, now=NOW,
                            delay=timedelta(0), entries=[
            outbox.QueuedWork(installation_id, None, f"conversation:{n % conversations}",
                              NOW + timedelta(milliseconds=n)) for n in range(backlog)])
    for slot in range(min(4, conversations)):
        with sessions() as session:
            outbox.claim(session, worker_id=f"slot{slot}", now=LATER,
                         after_installation=installation_id)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ANALYZE outbox"))
    return installation_id


def _server_cpu_ms(connection: Connection) -> float:
    pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    connection.rollback()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def _one_claim(connection: Connection, installation_id: int) -> tuple[int | None, int]:
    steps = [0]
    postgresql = connection.dialect.name == "postgresql"
    driver: Any = connection.connection.driver_connection
    if not postgresql:
        def step() -> int:
            steps[0] += 1
            return 0
        driver.set_progress_handler(step, STEP)
    with connection.begin() as transaction:
        # Not flushed to the statistics yet, which may include earlier transactions:
        # the difference is the claim's.
        before = connection.execute(ROWS_READ).scalar_one() if postgresql else 0
        claimed = outbox.claim_on(connection, worker_id="bench", now=LATER,
                                  after_installation=installation_id)
        if postgresql:
            steps[0] = connection.execute(ROWS_READ).scalar_one() - before
        transaction.rollback()
    if not postgresql:
        driver.set_progress_handler(None, STEP)
        steps[0] *= STEP
    return (claimed.id if claimed else None), steps[0]


def run(database: str, backlog: int, claims: int) -> None:
    for conversations in (1, 50, 200, backlog):
        with tempfile.TemporaryDirectory() as folder:
            engine = _engine(database, Path(folder))
            try:
                installation_id = _fill(engine, backlog, conversations)
                with engine.connect() as connection:
                    postgresql = database == "postgresql"
                    cpu0 = _server_cpu_ms(connection) if postgresql else time.thread_time()
                    for _ in range(claims):
                        taken, work = _one_claim(connection, installation_id)
                    cpu1 = _server_cpu_ms(connection) if postgresql else time.thread_time()
                cpu_ms = (cpu1 - cpu0) / claims * (1 if postgresql else 1000)
                unit = "rows read" if postgresql else "VM steps"
                whose = "server" if postgresql else "in-process"
                print(f"{database:10} backlog {backlog} in {conversations:>5} conversations: "
                      f"takes {taken}  {work:>9,} {unit} per claim  {cpu_ms:8.2f} ms "
                      f"{whose} CPU per claim", flush=True)
            finally:
                _drop(engine)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--claims", type=int, default=20)
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}  load {os.getloadavg()[0]:.1f}  "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC  code from {outbox.__file__}")
    for database in args.databases.split(","):
        run(database, args.backlog, args.claims)


if __name__ == "__main__":
    sys.exit(main())
