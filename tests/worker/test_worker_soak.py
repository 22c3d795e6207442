"""Issue 11 item 1 and its soak: the worker survives an hour of quiet.

The worker's idle slots back off with `poll_interval * 2 ** idle_rounds`; after ~1,024 idle
rounds (about 38 minutes of quiet) that raised OverflowError outside any `try`, and the
worker died. The hour is played on an event loop whose clock jumps ahead whenever nothing is
ready, instead of sleeping: the worker's real loop, real claims on the real database, and
`services.clock` following the same virtual time.
"""

from __future__ import annotations

import asyncio
import selectors
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Installation, OutboxEntry
from whatsapp_helpdesk.jobs import JobPayload
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import IDLE_SLOT_MAX_WAIT, Worker

# On SQLite and PostgreSQL (tests/conftest.py): pooled connections after an hour of quiet.
pytestmark = pytest.mark.both_databases

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


class _CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor (asyncio.to_thread): knows whether a thread is busy."""

    def __init__(self) -> None:
        super().__init__(max_workers=8)
        self.in_flight = 0
        self._lock = threading.Lock()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            self.in_flight += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._lock:
            self.in_flight -= 1


class _JumpingSelector(selectors.DefaultSelector):
    """A selector that, when nothing is ready and no thread is working (a database claim),
    moves virtual time to the loop's next timer instead of sleeping until it."""

    def __init__(self, executor: _CountingExecutor) -> None:
        super().__init__()
        self.executor = executor
        self.offset = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None or self.executor.in_flight:
            return super().select(timeout)  # a thread's result wakes it up
        ready = super().select(0)
        if not ready and timeout > 0:
            self.offset += timeout
        return ready


class _VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.executor = _CountingExecutor()
        self.jumping = _JumpingSelector(self.executor)
        super().__init__(self.jumping)
        self.set_default_executor(self.executor)

    def time(self) -> float:
        return super().time() + self.jumping.offset


class _LoopClock:
    """services.clock on the loop's virtual time."""

    def __init__(self, loop: _VirtualTimeLoop):
        self.loop = loop

    def now(self) -> datetime:
        return START + timedelta(seconds=self.loop.jumping.offset)


def test_R44_idle_back_off_is_capped_however_long_the_quiet(tmp_path) -> None:
    """Issue 11 item 1: 2 ** 1100 idle rounds used to raise OverflowError."""
    worker = Worker(build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                            _env_file=None)), concurrency=2, poll_interval=0.2)
    assert [worker._idle_wait(1, n) for n in (1023, 1024, 1100, 10**6)] == [
        IDLE_SLOT_MAX_WAIT] * 4


@pytest.mark.slow(seconds=9)
def test_R44_soak_worker_still_works_after_an_hour_of_quiet(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An hour of virtual quiet (every slot idle, claiming now and then), then work comes:
    every slot is still alive and the work is done."""
    loop = _VirtualTimeLoop()
    services = build_services(Settings(database_url=database_url, _env_file=None),
                              clock=_LoopClock(loop))
    from whatsapp_helpdesk.db.migrate import upgrade

    upgrade(services.engine)
    done_jobs: list[int] = []

    async def job(_services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        done_jobs.append(entry.id)
        return "done"

    monkeypatch.setitem(REGISTRY, "soak", JobKind("soak", JobPayload, job))
    quiet = timedelta(hours=1)

    async def main() -> None:
        # Slot 0 polls every 4 s, slot 1 backs off to its 2 s cap: 1,800 idle rounds for
        # slot 1, well past the 1,024 that overflowed (fewer claims keep the test short).
        worker = Worker(services, concurrency=2, poll_interval=4.0)
        working = asyncio.create_task(worker.run())
        while services.clock.now() - START < quiet:
            assert not working.done(), f"the worker died: {working.exception()!r}"
            await asyncio.sleep(30)  # virtual: jumps, the worker's timers interleave
        assert not working.done(), f"the worker died: {working.exception()!r}"
        now = services.clock.now()
        with services.sessions.begin() as session:
            session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="",
                                     created_at=now, updated_at=now))
            session.flush()
            for n in range(6):
                outbox.enqueue(session, installation_id=1, kind="soak", now=now,
                               ordering_key=f"conversation:{n}")
        deadline = time.monotonic() + 30  # real seconds
        while len(done_jobs) < 6 and time.monotonic() < deadline and not working.done():
            await asyncio.sleep(0.1)
        worker.stop()
        await working  # re-raises whatever killed a slot

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        services.engine.dispose()
    with services.sessions() as session:
        states = [e.state for e in session.query(OutboxEntry)]
    assert states == ["done"] * 6
    assert loop.jumping.offset >= quiet.total_seconds()
