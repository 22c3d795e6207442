"""PostgreSQL: a transaction that adds work to the outbox wakes the idle workers with one
NOTIFY as it commits (db/outbox.py `wake_workers`; worker/idle.py listens), none when it
rolls back, and a savepoint rolled back does not swallow a later enqueue's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db import outbox

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)


@pytest.fixture
def listener(migrated_engine: Engine) -> Iterator[psycopg.Connection]:
    conninfo = migrated_engine.url.set(drivername="postgresql").render_as_string(
        hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"LISTEN {outbox.WAKE_CHANNEL}")
        yield connection


def _received(listener: psycopg.Connection) -> int:
    # Every notification already committed has arrived once a round trip came back.
    listener.execute("SELECT 1")
    return len(list(listener.notifies(timeout=0.0, stop_after=0)))


def _enqueue(session: Session, installation_id: int) -> None:
    outbox.enqueue(session, installation_id=installation_id, kind="publish_inbound", now=NOW)
    session.flush()


def test_one_notify_per_committed_transaction_that_adds_work(
    sessions: sessionmaker[Session], installation_id: int, listener: psycopg.Connection
) -> None:
    _received(listener)  # the fixtures' own writes
    with sessions.begin() as session:
        _enqueue(session, installation_id)
        _enqueue(session, installation_id)
        assert _received(listener) == 0, "notified before the commit"
    assert _received(listener) == 1

    with sessions.begin() as session:
        _enqueue(session, installation_id)
        session.rollback()
    assert _received(listener) == 0

    with sessions.begin() as session:
        savepoint = session.begin_nested()
        _enqueue(session, installation_id)
        savepoint.rollback()
        _enqueue(session, installation_id)
    assert _received(listener) == 1
