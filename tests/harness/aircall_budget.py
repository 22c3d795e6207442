"""Counting what reaches the sandbox Aircall against its budget (R44, issue 17 item 7): the
company's calls as the sandbox saw them, the most any window held, and a worker running
beside a test while it counts. Light: no stack is imported (unit tests use the window count)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.worker.runner import Worker

if TYPE_CHECKING:
    from harness.stack import Stack

DEMO_COMPANY = 1


def api_calls(stack: Stack, company: int = DEMO_COMPANY) -> list[dict[str, Any]]:
    """The company's authenticated Aircall calls so far, oldest first. Leave earlier ones
    out by count (`api_calls(stack)[earlier:]`), not by the sandbox clock's `now_unix`: it
    is whole seconds, and a `since` taken from it counted calls of the same second."""
    answer = stack.aircall.get(f"/_sandbox/companies/{company}/api-calls")
    answer.raise_for_status()
    calls: list[dict[str, Any]] = answer.json()["calls"]
    return calls


def most_in_any_window(times: list[float], window: float) -> int:
    """The most calls any window of `window` seconds saw, wherever it starts (Aircall's
    windows start where they start: every start counts)."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


@contextmanager
def worker_running(stack: Stack, *, concurrency: int) -> Iterator[None]:
    """A worker process's loop, in a thread, until the block ends."""
    stop = threading.Event()

    def main() -> None:
        async def run() -> None:
            services = build_services(stack.settings)
            worker = Worker(services, concurrency=concurrency, poll_interval=0.05)
            task = asyncio.create_task(worker.run())
            while not stop.is_set():
                await asyncio.sleep(0.05)
            worker.stop()
            await task  # Worker.run closes the services' HTTP clients itself
            services.engine.dispose()

        asyncio.run(run())

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
