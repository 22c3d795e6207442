"""The claim's cost does not grow with the backlog's depth (issue 17 item 2), on SQLite and
PostgreSQL.

With thousands of entries pending, the claim evaluated the conversation rule (no earlier
unfinished entry of the same `ordering_key`) for every pending entry, each reading its whole
conversation: PostgreSQL's server processes took 1.46 cores under the ingest bench with the
worker on, and one claim with 5,000 entries in one conversation whose head was being worked
took 4.4 s. The work a claim does is counted here, not timed: on PostgreSQL the rows its
statements read (`pg_stat_get_xact_tuples_returned` of the table and its indexes, before
and after), on
SQLite the virtual machine's steps (a progress handler called every `_STEP` instructions).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db import outbox

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=1)
BACKLOG = 5_000
_STEP = 100

# Bounds well above what the claim now does (PostgreSQL: ~30–60 rows; SQLite: ~1 k
# steps) and far below what it did behind one deep conversation (15,000–20,000 rows,
# 175,000 steps: the whole backlog, candidate after candidate).
MOST_ROWS_READ = 1_000
MOST_SQLITE_STEPS = 20_000


def _backlog(sessions: sessionmaker[Session], installation_id: int, conversations: int) -> None:
    """BACKLOG entries, one conversation after the other in turn, in provider order."""
    with sessions.begin() as session:
        outbox.enqueue_many(session, kind="publish_inbound", payload={}, now=NOW,
                            delay=timedelta(0), entries=[
            outbox.QueuedWork(installation_id, None, f"conversation:{n % conversations}",
                              NOW + timedelta(milliseconds=n)) for n in range(BACKLOG)])
    if sessions.kw["bind"].dialect.name == "postgresql":
        with sessions.begin() as session:  # what autovacuum does for a table that grew
            session.execute(text("ANALYZE outbox"))


def _held(sessions: sessionmaker[Session], installation_id: int, slots: int) -> list[int]:
    """`slots` workers each claim an entry and keep working it (their leases run)."""
    taken = []
    for slot in range(slots):
        with sessions() as session:
            claimed = outbox.claim(session, worker_id=f"slot{slot}", now=LATER,
                                   after_installation=installation_id)
        assert claimed is not None
        taken.append(claimed.id)
    return taken


_ROWS_READ = text(
    "SELECT pg_stat_get_xact_tuples_returned('outbox'::regclass) "
    "+ (SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0) "
    "FROM pg_index WHERE indrelid = 'outbox'::regclass)")


@contextmanager
def _work_counted(connection: Connection) -> Iterator[dict[str, int]]:
    """The rows read (PostgreSQL) or VM steps / _STEP (SQLite) of what runs inside."""
    counted = {"work": 0}
    if connection.dialect.name == "postgresql":
        # Index entries read by every index of the table and rows read by sequential
        # scans, before and after: the counts not yet flushed to the statistics (which
        # may include earlier transactions of this connection), so a difference.
        before = connection.execute(_ROWS_READ).scalar_one()
        yield counted
        counted["work"] = connection.execute(_ROWS_READ).scalar_one() - before
        return
    driver: Any = connection.connection.driver_connection

    def step() -> int:
        counted["work"] += 1
        return 0

    driver.set_progress_handler(step, _STEP)
    try:
        yield counted
    finally:
        driver.set_progress_handler(None, _STEP)


def _claim_counted(engine: Engine, after: int | None) -> tuple[outbox.Claimed | None, int]:
    with engine.connect() as connection, connection.begin() as transaction:
        with _work_counted(connection) as counted:
            claimed = outbox.claim_on(connection, worker_id="next", now=LATER,
                                      after_installation=after)
        transaction.rollback()
    return claimed, counted["work"]


def _within_bound(engine: Engine, work: int) -> None:
    if engine.dialect.name == "postgresql":
        assert work <= MOST_ROWS_READ, f"{work} rows read"
    else:
        assert work * _STEP <= MOST_SQLITE_STEPS, f"{work * _STEP} steps"


@pytest.mark.parametrize("after", [None, "in turn"])
def test_R15_issue17_a_claim_behind_one_deep_conversation_reads_a_bounded_number_of_rows(
    migrated_engine: Engine, sessions: sessionmaker[Session], installation_id: int,
    after: str | None,
) -> None:
    """5,000 entries in one conversation, its head being worked: nothing may run, and the
    claim says so without reading the conversation entry after entry."""
    _backlog(sessions, installation_id, conversations=1)
    _held(sessions, installation_id, slots=1)

    claimed, work = _claim_counted(migrated_engine, installation_id if after else None)

    assert claimed is None
    _within_bound(migrated_engine, work)


@pytest.mark.parametrize("conversations", [50, BACKLOG])
@pytest.mark.parametrize("after", [None, "in turn"])
def test_R15_issue17_a_claim_under_a_deep_backlog_reads_a_bounded_number_of_rows(
    migrated_engine: Engine, sessions: sessionmaker[Session], installation_id: int,
    conversations: int, after: str | None,
) -> None:
    """5,000 entries across many conversations, four of their heads being worked: the claim
    takes the fifth conversation's head, reading a bounded number of rows."""
    _backlog(sessions, installation_id, conversations=conversations)
    held = _held(sessions, installation_id, slots=4)
    # The heads, in conversation order: the first four are held.
    assert held == [1, 2, 3, 4]

    claimed, work = _claim_counted(migrated_engine, installation_id if after else None)

    assert claimed is not None and claimed.id == 5
    _within_bound(migrated_engine, work)


def test_R15_issue17_when_the_first_candidates_all_wait_the_heads_behind_them_are_found(
    migrated_engine: Engine, sessions: sessionmaker[Session], installation_id: int,
) -> None:
    """The claim looks at the oldest few entries first; when they all wait for a head being
    worked, the head of another conversation further back is still found (and only the
    head: its successors wait for it)."""
    _backlog(sessions, installation_id, conversations=1)
    _held(sessions, installation_id, slots=1)
    with sessions.begin() as session:
        elsewhere = [outbox.enqueue(session, installation_id=installation_id,
                                    kind="publish_inbound", now=NOW,
                                    ordering_key="conversation:late",
                                    ordering_at=NOW + timedelta(minutes=n)) for n in range(2)]
        session.flush()
        wanted = elsewhere[0].id

    for after in (None, installation_id):
        claimed, work = _claim_counted(migrated_engine, after)
        assert claimed is not None and claimed.id == wanted
        _within_bound(migrated_engine, work)
