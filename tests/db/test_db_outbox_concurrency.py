"""Many workers draining one outbox at once (R14, R15, R40): every entry is completed
exactly once, and within a conversation the completions follow the customer's order.

Threads share one engine (SQLite's deployment: one process, a few worker threads); on
PostgreSQL separate OS processes claim side by side, as workers on several machines would.

The order of completions is read from the database, not from the workers' own logs: each
completion writes a delivery attempt in the transaction that marks the entry done, and
the next entry of the conversation can only be claimed after that commit, so attempt ids
rise in completion order within a conversation.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from multiprocessing import forkserver

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import DeliveryAttempt, OutboxEntry
from whatsapp_helpdesk.db.session import make_engine, make_session_factory

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
KEYS = 10
ENTRIES = 200
WORKERS = 6
WORK_SECONDS = 0.002  # a pretend call to HubSpot, so that workers overlap
DEADLINE_SECONDS = 30.0


def _enqueue_shuffled(sessions: sessionmaker[Session], installation_id: int) -> None:
    """ENTRIES entries over KEYS conversations, each key's entries enqueued out of order."""
    plan = [(f"conv-{n % KEYS}", NOW + timedelta(seconds=n)) for n in range(ENTRIES)]
    random.Random(20260105).shuffle(plan)
    with sessions.begin() as session:
        for key, ordering_at in plan:
            outbox.enqueue(
                session, installation_id=installation_id, kind="publish_inbound", now=NOW,
                payload={"key": key, "ordering_at": ordering_at.isoformat()},
                ordering_key=key, ordering_at=ordering_at,
            )


def _pending(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.count()).select_from(OutboxEntry).where(OutboxEntry.state == outbox.PENDING)
        ) or 0


def drain(
    sessions: sessionmaker[Session],
    worker_id: str,
    *,
    on_claim: Callable[[str], None] = lambda key: None,
    before_commit: Callable[[str], None] = lambda key: None,
) -> int:
    """Claim and complete until nothing is pending; returns how many this worker did."""
    done = 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        with sessions() as session:
            claimed = outbox.claim(session, worker_id=worker_id, now=NOW)
        if claimed is None:
            if _pending(sessions) == 0:
                return done
            time.sleep(0.001)  # everything left is held by the conversations' workers
            continue
        key = claimed.payload["key"]
        on_claim(key)
        time.sleep(WORK_SECONDS)
        with sessions.begin() as session:
            outbox.record_attempt_on(
                session.connection(), outbox_id=claimed.id, attempt=claimed.attempt,
                started_at=NOW, duration_ms=2, outcome="ok", detail=worker_id)
            outbox.complete(session, entry_id=claimed.id, worker_id=worker_id, now=NOW)
            before_commit(key)
        done += 1
    raise TimeoutError(f"{worker_id} did not drain the outbox in {DEADLINE_SECONDS} s")


def _assert_exactly_once_in_order(sessions: sessionmaker[Session]) -> set[str]:
    """Check the outcome; returns the ids of the workers that completed something."""
    with sessions() as session:
        entries = session.scalars(select(OutboxEntry)).all()
        attempts = session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)).all()

    assert len(entries) == ENTRIES
    assert all(entry.state == outbox.DONE for entry in entries)
    # One claim and one completion per entry: nobody ever held an entry someone else held.
    assert all(entry.attempts == 1 for entry in entries)
    assert sorted(attempt.outbox_id for attempt in attempts) == sorted(e.id for e in entries)

    by_id = {entry.id: entry for entry in entries}
    completed_in_order: dict[str, list[datetime]] = defaultdict(list)
    for attempt in attempts:
        entry = by_id[attempt.outbox_id]
        assert entry.ordering_key is not None
        completed_in_order[entry.ordering_key].append(entry.ordering_at)
    assert len(completed_in_order) == KEYS
    for key, times in completed_in_order.items():
        assert times == sorted(times), f"{key} completed out of order"
    return {attempt.detail or "" for attempt in attempts}


def test_R15_threads_drain_every_entry_once_in_conversation_order(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    _enqueue_shuffled(sessions, installation_id)
    in_flight: set[str] = set()
    overlaps: list[str] = []
    guard = threading.Lock()

    def on_claim(key: str) -> None:
        with guard:
            if key in in_flight:
                overlaps.append(key)
            in_flight.add(key)

    def before_commit(key: str) -> None:
        # Released before the commit that lets the next entry of the key be claimed.
        with guard:
            in_flight.discard(key)

    results: dict[str, int | BaseException] = {}

    def run(worker_id: str) -> None:
        try:
            results[worker_id] = drain(sessions, worker_id, on_claim=on_claim,
                                       before_commit=before_commit)
        except BaseException as exc:  # reported by the main thread
            results[worker_id] = exc

    threads = [threading.Thread(target=run, args=(f"thread-{n}",)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_SECONDS + 5)

    assert not [thread.name for thread in threads if thread.is_alive()]
    errors = [value for value in results.values() if isinstance(value, BaseException)]
    assert not errors, errors
    assert sum(value for value in results.values() if isinstance(value, int)) == ENTRIES
    assert overlaps == [], "two workers held entries of one conversation at once"
    assert len(_assert_exactly_once_in_order(sessions)) > 1, "the workers never overlapped"


FORKSERVER_PRELOAD = ["pytest", "whatsapp_helpdesk.db.outbox", "whatsapp_helpdesk.db.models",
                      "whatsapp_helpdesk.db.session"]


def _process_worker(database_url: str, worker_id: str, start: object) -> None:
    """Entry point of one spawned worker process (must be importable by name)."""
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        start.wait(DEADLINE_SECONDS)  # type: ignore[attr-defined]
        drain(make_session_factory(engine), worker_id)
    finally:
        engine.dispose()


@pytest.mark.slow(seconds=13)
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_R40_worker_processes_drain_every_entry_once_in_conversation_order(
    database_url: str, migrated_engine: Engine, installation_id: int,
    sessions: sessionmaker[Session],
) -> None:
    _enqueue_shuffled(sessions, installation_id)
    # Fresh processes, never forks of this one (its threads, its pooled connections): forks
    # of the fork server, a clean process started once that has imported what the workers
    # import (this module's imports: SQLAlchemy, the package's models, pytest). Spawned,
    # each of the six imported it all again: ~1 s of CPU each, most of their CPU here.
    # (Python 3.11's fork server does not take this process's sys.path: this module itself
    # is imported by each child, its imports already there.)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORKSERVER_PRELOAD)
    start = context.Event()
    processes = [
        context.Process(target=_process_worker, args=(database_url, f"process-{n}", start))
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        start.set()  # all claim from the same moment, whatever their start-up time
        for process in processes:
            process.join(DEADLINE_SECONDS + 10)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
        # The fork server stopped and reaped here, and with it what its children spent (its
        # own reaping): counted with this test (RUSAGE_CHILDREN, --cpu-report), none left.
        forkserver._forkserver._stop()  # the standard library's own tests' way

    assert [process.exitcode for process in processes] == [0] * WORKERS
    assert len(_assert_exactly_once_in_order(sessions)) > 1, "the workers never overlapped"
