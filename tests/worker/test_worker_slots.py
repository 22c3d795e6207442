"""The worker's slots: the first keeps polling, the others back off while there is nothing
to do and are woken as soon as a slot finds work, so a burst is still worked in parallel."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Installation, OutboxEntry
from whatsapp_helpdesk.jobs import JobPayload
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import IDLE_SLOT_MAX_WAIT, Worker


def test_only_the_first_slot_keeps_polling_at_full_speed(tmp_path) -> None:
    worker = Worker(build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                            _env_file=None)), concurrency=4, poll_interval=0.2)
    assert [worker._idle_wait(0, n) for n in (1, 5, 50)] == [0.2, 0.2, 0.2]
    assert [worker._idle_wait(1, n) for n in (1, 2, 3, 50)] == [0.4, 0.8, 1.6,
                                                                IDLE_SLOT_MAX_WAIT]


def test_idle_slots_wake_up_for_a_burst(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                       _env_file=None))
    upgrade(services.engine)
    running = 0
    most_at_once = 0
    finished = 0

    async def slow_job(_services: Any, _entry: outbox.Claimed, _payload: Any) -> str:
        nonlocal running, most_at_once, finished
        running += 1
        most_at_once = max(most_at_once, running)
        await asyncio.sleep(0.25)
        running -= 1
        finished += 1
        return "done"

    monkeypatch.setitem(REGISTRY, "slow", JobKind("slow", JobPayload, slow_job))

    # Slots 1-3 wait far longer than the test may take (the back-off's lengths are the test
    # above's): only a wake-up can let them work on the burst.
    def long_back_off(slot: int, _idle_rounds: int) -> float:
        waiting.add(slot)
        return 0.05 if slot == 0 else 60.0

    waiting: set[int] = set()

    async def until(condition: Any, what: str) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.02)

    async def main() -> None:
        worker = Worker(services, concurrency=4, poll_interval=0.05)
        monkeypatch.setattr(worker, "_idle_wait", long_back_off)
        working = asyncio.create_task(worker.run())
        await until(lambda: waiting >= {1, 2, 3}, "the idle slots never went to wait")
        now = services.clock.now()
        with services.sessions.begin() as session:
            session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="",
                                     created_at=now, updated_at=now))
            session.flush()
            for n in range(8):
                outbox.enqueue(session, installation_id=1, kind="slow", now=now,
                               ordering_key=f"conversation:{n}")
        await until(lambda: finished == 8, "the burst was not worked")
        worker.stop()
        await working

    asyncio.run(main())
    with services.sessions() as session:
        states = [e.state for e in session.query(OutboxEntry)]
    services.engine.dispose()
    assert states == ["done"] * 8
    assert most_at_once >= 3


def test_R44_a_worker_serves_installations_in_turn(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One portal's burst queued first does not make the next portal wait for all of it."""
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                       _env_file=None))
    upgrade(services.engine)
    served: list[int] = []

    async def record(_services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        served.append(entry.installation_id)
        return "done"

    monkeypatch.setitem(REGISTRY, "record", JobKind("record", JobPayload, record))
    now = services.clock.now()
    with services.sessions.begin() as session:
        for installation in (1, 2):
            session.add(Installation(id=installation, hubspot_scopes="", aircall_scopes="",
                                     created_at=now, updated_at=now))
        session.flush()
        for installation, count in ((1, 4), (2, 2)):
            for n in range(count):
                outbox.enqueue(session, installation_id=installation, kind="record", now=now,
                               ordering_key=f"conversation:{installation}:{n}")

    async def main() -> None:
        await Worker(services, concurrency=1).run_until_idle(timeout=20)

    asyncio.run(main())
    services.engine.dispose()
    assert served == [1, 2, 1, 2, 1, 1]


def test_a_slot_that_goes_idle_after_stop_does_not_wait_out_its_back_off(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() wakes the waiting slots with the same pulse as found work; a slot that finishes
    an entry right after clears it. A slot whose claim was still running then went on to wait
    its whole back-off (60 s in test_idle_slots_wake_up_for_a_burst under the suite's load)."""
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                       _env_file=None))
    upgrade(services.engine)
    claims: list[asyncio.Event] = []

    async def held_claim(*, after_idle: bool = True) -> bool:
        slot_claim = asyncio.Event()
        claims.append(slot_claim)
        await slot_claim.wait()
        return slot_claim is claims[1]  # the second slot's claim "found work", the first's not

    async def main() -> None:
        worker = Worker(services, concurrency=2, poll_interval=0.05)
        monkeypatch.setattr(worker, "work_once", held_claim)
        monkeypatch.setattr(worker, "_idle_wait", lambda _slot, _rounds: 60.0)
        working = asyncio.create_task(worker.run())
        while len(claims) < 2:
            await asyncio.sleep(0.01)
        worker.stop()
        claims[1].set()  # finishes its entry: the pulse is set and cleared
        await asyncio.sleep(0.05)
        claims[0].set()  # finds nothing after stop(): must not wait 60 s
        await asyncio.wait_for(working, 10)

    asyncio.run(main())
    services.engine.dispose()
