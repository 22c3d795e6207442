"""Engines and sessions, the same code for SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import weakref
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

# Execution option of a connection that only reads. On SQLite it does not take the write lock,
# so it may run while the same thread holds a write transaction on another connection (the
# sandbox clock's offset is read that way from inside any transaction).
READ_ONLY = "whatsapp_helpdesk_read_only"
# Execution option of a write transaction whose commit is answered to someone as "kept" (a
# webhook's 2xx, R11). On SQLite it commits with synchronous=FULL: in WAL mode NORMAL
# survives a crash of the process but not of the machine (the WAL is fsynced only at
# checkpoints), so a 2xx could be lost on power loss. Other writes keep NORMAL (the worker
# re-does unfinished work). PostgreSQL's commit is durable (synchronous_commit on).
DURABLE = "whatsapp_helpdesk_durable"


def make_engine(url: str, **kwargs: Any) -> Engine:
    # A database error's message would otherwise carry the statement's bound parameters
    # (a stored payload, a token) into whatever logs it (R41).
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_serialised_writes(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # A bare postgresql:// URL means psycopg 3, the driver we ship.
        url = str(parsed.set(drivername="postgresql+psycopg"))
    # Defaults a caller may override (a worker process needs a pool of one or two).
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10}
    return create_engine(url, **(options | kwargs))


def _sqlite_serialised_writes(engine: Engine) -> None:
    """SQLite: WAL so readers never block, and BEGIN IMMEDIATE so that two processes
    claiming outbox work (or inserting the same webhook) are serialised by the database
    rather than failing half-way with "database is locked"."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # A plain read: a deferred BEGIN, which in WAL mode never waits for a writer.
            connection.exec_driver_sql("BEGIN")
        else:
            _set_synchronous(connection, "FULL" if connection.get_execution_options().get(
                DURABLE) else "NORMAL")
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def _set_synchronous(connection: Any, level: str) -> None:
    """Per connection, and only when it changes; on the driver's connection so that it is
    no statement of the transaction (tests count those)."""
    info = connection.connection.info
    if info.get("synchronous") != level:
        connection.connection.driver_connection.execute(f"PRAGMA synchronous={level}")
        info["synchronous"] = level


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITERS_GUARD = threading.Lock()


def local_writer(engine: Engine) -> AbstractContextManager[Any]:
    """SQLite takes one writer at a time: threads of one process queue on a lock rather than
    in SQLite's busy handler, whose sleeps made the ack p99 of webhooks seconds under load
    (issue 17 item 1). Other processes still wait on the database's own lock. PostgreSQL
    writes rows concurrently: no lock."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(engine, threading.Lock())


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed. Executing one gives a CursorResult, which has the
    count; the session's `execute` is typed as returning any Result."""
    return cast(CursorResult[Any], result).rowcount
