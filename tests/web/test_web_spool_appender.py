"""Issue 17 item 1 (R11, R40; decision 0011): the acknowledgements' group fsync. The
requests an event-loop iteration read reach the spool together, in ONE append (one write,
one fsync), in arrival order, and each is answered only after it."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from whatsapp_helpdesk.inbound.ingest import Outcome
from whatsapp_helpdesk.web.ingest_writer import APPENDER_THREAD, SpoolAppender


class _RecordingSpool:
    def __init__(self) -> None:
        self.appends: list[list[bytes]] = []

    def append_fast(self, records: list[bytes]) -> Outcome:
        self.appends.append(list(records))
        return Outcome(200, "spooled")


def test_issue17_requests_read_in_one_loop_iteration_share_one_fsync() -> None:
    spool = _RecordingSpool()
    appender = SpoolAppender(spool)  # type: ignore[arg-type]
    loop = asyncio.new_event_loop()
    # The answers come back to the loop once per group, not once per request.
    callbacks: list[object] = []
    real_call_soon_threadsafe = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> asyncio.Handle:
        callbacks.append(callback)
        return real_call_soon_threadsafe(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]

    async def two_iterations() -> list[Outcome]:
        first = [appender.submit(b"r%d" % i) for i in range(5)]
        answers = await asyncio.gather(*first)
        second = [appender.submit(b"s%d" % i) for i in range(2)]
        return [*answers, *await asyncio.gather(*second)]

    try:
        answers = loop.run_until_complete(two_iterations())
    finally:
        appender.stop()
        loop.close()
    assert answers == [Outcome(200, "spooled")] * 7
    assert spool.appends == [[b"r0", b"r1", b"r2", b"r3", b"r4"], [b"s0", b"s1"]]
    assert len(callbacks) == 2


def test_issue17_a_failed_append_fails_every_request_of_its_group() -> None:
    class Failing(_RecordingSpool):
        def append_fast(self, records: list[bytes]) -> Outcome:
            raise OSError("disk gone")

    appender = SpoolAppender(Failing())  # type: ignore[arg-type]

    async def answers() -> list[BaseException | Outcome]:
        return await asyncio.gather(*(appender.submit(b"r%d" % i) for i in range(3)),
                                    return_exceptions=True)

    try:
        results = asyncio.run(answers())
    finally:
        appender.stop()
    assert [type(r) for r in results] == [OSError] * 3



@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_issue17_waking_the_appender_does_not_preempt_the_event_loop() -> None:
    """The appender thread runs under SCHED_BATCH: a hand-over (or its fsync's end) makes it
    runnable without preempting the event loop's thread, which holds the GIL the appender
    would only wait for (the wake was 12-26 % of the loop's GIL-held samples over HTTP).
    The event loop's own thread keeps its policy."""
    spool = _RecordingSpool()
    appender = SpoolAppender(spool)  # type: ignore[arg-type]
    policy_before = os.sched_getscheduler(0)

    async def one() -> Outcome:
        return await appender.submit(b"r0")

    try:
        assert asyncio.run(one()) == Outcome(200, "spooled")
        [thread] = [t for t in threading.enumerate() if t.name == APPENDER_THREAD]
        assert thread.native_id is not None
        assert os.sched_getscheduler(thread.native_id) == os.SCHED_BATCH
    finally:
        appender.stop()
    assert os.sched_getscheduler(0) == policy_before
