"""A worker run until a condition holds and nothing more can be claimed, instead of a drain for
a fixed time (issue 13 item 5: `stack.drain(timeout=…)` waited out whatever was left pending,
a retry's real back-off or a message held behind a failed one, to its timeout).

`past_the_longest_wait` is the `when_idle` of a test whose retries wait on the bridge's
sandbox clock: it moves the clock past them rather than waiting them out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.worker.runner import Worker

if TYPE_CHECKING:
    from harness.stack import Stack


def work_until(stack: Stack, done: Callable[[], bool], *, what: str,
               when_idle: Callable[[Services], object] | None = None,
               timeout: float = 30.0) -> None:
    """Run a worker until it has nothing it can claim and `done()` holds. While it has
    nothing to claim and `done()` does not hold yet: `when_idle(services)`, then a short
    poll. An AssertionError naming `what` after `timeout` seconds."""
    async def work(services: Services) -> None:
        worker = Worker(services, concurrency=1)
        deadline = time.monotonic() + timeout
        while True:
            if await worker.work_once(after_idle=False):
                continue
            if await asyncio.to_thread(done):
                return
            assert time.monotonic() < deadline, what
            if when_idle is not None:
                await asyncio.to_thread(when_idle, services)
            await asyncio.sleep(0.05)

    stack.run(work)


def past_the_longest_wait(services: Services) -> None:
    """The bridge's sandbox clock 301 s on (past a 429's wait and the longest back-off), as
    its `POST /_sandbox/clock` moves it (the offset every process reads from the database),
    through the worker's own clock: seen there at once, not at its next read of the offset
    (every half second, bootstrap.StoredClockOffset)."""
    assert services.sandbox_clock_offset is not None
    services.sandbox_clock_offset.move(advance_seconds=301)
