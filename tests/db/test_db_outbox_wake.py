"""PostgreSQL: a transaction that adds work to the outbox wakes the idle workers with one
NOTIFY as it commits (db/outbox.py `wake_workers`; worker/idle.py listens), none when it
rolls back, and a savepoint rolled back does not swallow a later enqueue's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

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


def test_the_ingest_drains_many_entries_in_one_insert_wake_the_workers_too(
    sessions: sessionmaker[Session], installation_id: int, listener: psycopg.Connection
) -> None:
    """The spool's drain queues its batch's publications with `enqueue_many`: without a
    NOTIFY an idle PostgreSQL worker saw them only at its next poll, up to 5 s later."""
    _received(listener)
    with sessions.begin() as session:
        outbox.enqueue_many(session, kind="publish_inbound", payload={}, now=NOW,
                            delay=timedelta(0), entries=[
                                outbox.QueuedWork(installation_id=installation_id,
                                                  message_id=None, ordering_key=f"c:{n}",
                                                  ordering_at=NOW) for n in range(3)])
        assert _received(listener) == 0, "notified before the commit"
    assert _received(listener) == 1
