"""An idle worker does not poll the outbox while nothing was committed (issue 17 item 3: its
polls were most of an idle worker's CPU), and still sees new work at once and work due
later at its time (worker/idle.py): on SQLite by its commits, on PostgreSQL by a NOTIFY,
falling back to polling while it cannot listen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Installation, OutboxEntry
from whatsapp_helpdesk.jobs import JobPayload
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import Worker

QUIET_STRETCH = 1.0  # slot 0 used to poll five times in it (poll_interval 0.2 s)


async def _until(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.both_databases
def test_an_idle_worker_reads_the_outbox_only_after_a_commit_or_at_a_due_time(
    migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(Settings(database_url=migrated_database_url, _env_file=None))
    outbox_reads: list[float] = []

    @event.listens_for(services.engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "outbox.available_at" in statement:
            outbox_reads.append(time.monotonic())

    done: dict[int, float] = {}

    async def job(_services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        done[entry.id] = time.monotonic()
        return "done"

    monkeypatch.setitem(REGISTRY, "quick", JobKind("quick", JobPayload, job))

    def enqueue(delay: timedelta = timedelta(0)) -> int:
        now = services.clock.now()
        with services.sessions.begin() as session:
            if session.get(Installation, 1) is None:
                session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="",
                                         created_at=now, updated_at=now))
                session.flush()
            entry = outbox.enqueue(session, installation_id=1, kind="quick", now=now,
                                   delay=delay)
            session.flush()
            return entry.id

    async def main() -> None:
        worker = Worker(services, concurrency=2, poll_interval=0.2)
        working = asyncio.create_task(worker.run())
        try:
            # It looked and found nothing; its start-up writes (the periodic tasks' turns)
            # are behind it. Polling every 0.2 s, it never went 1 s without a read.
            await _until(lambda: bool(outbox_reads)
                         and time.monotonic() - outbox_reads[-1] > 1.0, timeout=5)
            before = len(outbox_reads)
            await asyncio.sleep(QUIET_STRETCH)  # the stretch being measured
            assert len(outbox_reads) == before, "polled the outbox with nothing committed"

            # New work, committed by another connection: claimed within a poll interval.
            first = enqueue()
            assert await _until(lambda: first in done, timeout=2) < 1.0

            # Work due later: nothing wakes it but its due time, and that does.
            enqueued_at = time.monotonic()
            later = enqueue(delay=timedelta(seconds=1.5))
            await _until(lambda: later in done, timeout=5)
            assert 1.4 < done[later] - enqueued_at < 2.5
        finally:
            worker.stop()
            await working

    asyncio.run(main())
    with services.sessions() as session:
        assert {e.state for e in session.query(OutboxEntry)} == {"done"}
    services.engine.dispose()


class _Watch:
    def __init__(self) -> None:
        self.version: int | None = 1

    def stamp(self) -> tuple[int, int, int] | None:
        return None if self.version is None else (1, 1, self.version)

    def close(self) -> None:
        pass


def test_the_idle_gate_skips_until_a_commit_the_due_time_or_its_bounds() -> None:
    from datetime import UTC, datetime

    from whatsapp_helpdesk.worker import idle

    watch, clock = _Watch(), [100.0]
    gate = idle.IdleGate(watch, monotonic=lambda: clock[0])  # type: ignore[arg-type]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert not gate.may_skip()  # never armed: poll

    # The first arming after a change is short (a sandbox clock move is read late)…
    gate.arm(gate.stamp(), now, None)
    assert gate.may_skip()
    clock[0] += idle.FIRST_QUIET_AFTER_A_CHANGE + 0.01
    assert not gate.may_skip()
    # …the next one with the same stamp lasts until MAX_QUIET, or the next due time.
    gate.arm(gate.stamp(), now, None)
    clock[0] += idle.MAX_QUIET - 0.1
    assert gate.may_skip()
    clock[0] += 0.2
    assert not gate.may_skip()
    gate.arm(gate.stamp(), now, now + timedelta(seconds=2))
    clock[0] += 1.9
    assert gate.may_skip()
    clock[0] += 0.2
    assert not gate.may_skip()

    # A commit (another data_version) ends it at once; so does a stamp it cannot read.
    gate.arm(gate.stamp(), now, None)
    watch.version = 2
    assert not gate.may_skip()
    gate.arm(gate.stamp(), now, None)
    watch.version = None
    assert not gate.may_skip()
    gate.arm(gate.stamp(), now, None)  # no stamp: never armed
    assert not gate.may_skip()


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)
def test_an_idle_worker_on_postgresql_polls_while_it_cannot_listen_and_listens_again(
    migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listening connection dropped (PostgreSQL restarting, an admin's kill): work
    committed meanwhile, whose NOTIFY reached nobody, is still claimed at the next poll;
    then the worker listens again and stops polling."""
    from sqlalchemy import text

    services = build_services(Settings(database_url=migrated_database_url, _env_file=None))
    done: dict[int, float] = {}

    async def job(_services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        done[entry.id] = time.monotonic()
        return "done"

    monkeypatch.setitem(REGISTRY, "quick", JobKind("quick", JobPayload, job))
    listeners = text("SELECT pid FROM pg_stat_activity WHERE query = :listen "
                     "AND datname = current_database()").bindparams(
        listen=f"LISTEN {outbox.WAKE_CHANNEL}")

    def listening() -> list[int]:
        with services.engine.connect() as connection:
            return list(connection.scalars(listeners))

    def enqueue() -> int:
        now = services.clock.now()
        with services.sessions.begin() as session:
            if session.get(Installation, 1) is None:
                session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="",
                                         created_at=now, updated_at=now))
                session.flush()
            entry = outbox.enqueue(session, installation_id=1, kind="quick", now=now)
            session.flush()
            return entry.id

    async def main() -> None:
        worker = Worker(services, concurrency=2, poll_interval=0.2)
        working = asyncio.create_task(worker.run())
        try:
            await _until(lambda: bool(listening()), timeout=5)
            first = enqueue()
            await _until(lambda: first in done, timeout=2)
            # Idle and armed: only a NOTIFY (or MAX_QUIET, 5 s) would make it look again.
            await asyncio.sleep(idle.FIRST_QUIET_AFTER_A_CHANGE + 1.0)
            with services.engine.begin() as connection:
                for pid in listening():
                    connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            lost = enqueue()
            assert await _until(lambda: lost in done, timeout=4) < 1.5
            # Listening again: new work is claimed at once, by its NOTIFY.
            await _until(lambda: bool(listening()), timeout=5)
            await asyncio.sleep(idle.FIRST_QUIET_AFTER_A_CHANGE + 1.0)
            after = enqueue()
            assert await _until(lambda: after in done, timeout=4) < 1.0
        finally:
            worker.stop()
            await working

    from whatsapp_helpdesk.worker import idle

    asyncio.run(main())
    services.engine.dispose()
