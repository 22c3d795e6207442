"""One Chromium per test process (issue 13 item 5): Debian's Chromium, driven by Playwright,
launched at the first browser test of the process and kept until its end; each test gets a
fresh browser context of its own (no cookies, no storage, no cache of another test's).

Launching Chromium (and Playwright's driver) cost ~1.6 s of CPU and 2–4 s of wall per test;
a context costs a few milliseconds.

Playwright's sync API and asyncio on the same thread. The sync API runs an event loop in a
greenlet of the thread that started it, and between its calls it leaves that loop marked as
the thread's running loop (`asyncio._set_running_loop`, playwright/_impl/_greenlets.py), so
`asyncio.run` on that thread refuses to start ("cannot be called from a running event loop").
With a Playwright started per test, only that test saw it. Kept for the whole process, it
would break every later test of the process that runs asyncio: the stack's set-up and flows
(tests/harness/stack.py: `asyncio.run` in `_install`, `Stack.run`), pytest's async tests.
So between browser tests Playwright is parked: the thread has no running loop, as before
Playwright started (`park`); a browser context (`chromium_context`) takes it back for the
test's duration. During a browser test, the stack's asyncio flows still run on another
thread (the tests' `_off_the_browser_thread`), as with a browser per test; while parked,
nothing runs Playwright's loop: it waits for the next context, with no page open.
"""

from __future__ import annotations

import asyncio
import atexit
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Debian's Chromium, never one Playwright downloads (scripts/test.sh installs it).
CHROMIUM = Path("/usr/bin/chromium")
# Our pages and the sandboxes' screens refresh themselves on timers: every 2 s (the
# sandboxes' screens), every 3 s (ours, static/live.js).
REFRESH_MS = 3_000
# How long one look at a page waits before its refresh is brought forward (`soon`).
LOOK_MS = 400
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


class _SharedChromium:
    """Playwright and one headless Chromium, started on the thread that drives them."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self.playwright = sync_playwright().start()
        try:
            self.browser = self.playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        except BaseException:
            self.playwright.stop()
            raise
        # Playwright's loop, which its calls leave marked as this thread's running loop.
        self.loop = asyncio.get_running_loop()

    def park(self) -> None:
        """No running loop on this thread until `unpark`: `asyncio.run` works again."""
        asyncio._set_running_loop(None)

    def unpark(self) -> None:
        """Playwright's loop back as the running loop, as its sync calls expect it."""
        running = asyncio._get_running_loop()
        if running is not None and running is not self.loop:
            raise RuntimeError("a browser test cannot run inside another event loop")
        asyncio._set_running_loop(self.loop)

    def stop(self) -> None:
        self.unpark()
        try:
            if self.browser.is_connected():
                self.browser.close()
        finally:
            self.playwright.stop()  # ends its loop: no running loop left on this thread


_shared: _SharedChromium | None = None


def _shared_chromium() -> _SharedChromium:
    """This process's Chromium, launched (and parked) at the first browser test; launched
    again if the last one went away (a crash)."""
    global _shared
    if _shared is not None and not _shared.browser.is_connected():
        stop_shared_chromium()
    if _shared is None:
        if not CHROMIUM.exists():
            pytest.fail(f"{CHROMIUM} is missing: run scripts/test.sh, which installs Debian's "
                        "chromium for the browser tests.", pytrace=False)
        _shared = _SharedChromium()
        _shared.park()
    return _shared


def stop_shared_chromium() -> None:
    """At the end of the test process (`shared_chromium` fixture, or at exit)."""
    global _shared
    if _shared is not None:
        shared, _shared = _shared, None
        try:
            shared.stop()
        finally:
            asyncio._set_running_loop(None)


atexit.register(stop_shared_chromium)


@contextmanager
def chromium_context(**options: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies, no storage) of this process's Chromium, for one
    test: Playwright is the thread's for that long, and parked again after.

    Missing Chromium FAILS the test: the pages' behaviour in a real browser is part of what
    the suite proves (scripts/test.sh installs Debian's chromium)."""
    shared = _shared_chromium()
    shared.unpark()
    try:
        context = shared.browser.new_context(**options)
        try:
            yield context
        finally:
            context.close()
    finally:
        shared.park()


@pytest.fixture(scope="session")
def shared_chromium() -> Iterator[None]:
    """Stops this process's Chromium at the end of the session (a fixture by name: imported
    by the conftest or module of the browser tests)."""
    yield
    stop_shared_chromium()



def soon(page: Any, check: Callable[[float], None], *, timeout: float = 20.0) -> None:
    """`check(ms)`, an `expect(…)` given that timeout, until it passes: what the `expect`
    alone does within `timeout` while `page` refreshes itself. Between looks the page's
    timers are brought forward by a refresh interval (Playwright's clock: the test called
    `context.clock.install()` before opening its pages; real time still flows there), so
    that a step waits for the service, not for the page's next tick. Fails as the `expect`
    does once `timeout` has passed. (The clock also stands in for `performance`: a test that
    reads the page's navigation entries cannot install it.)"""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check(LOOK_MS)
            return
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        page.clock.fast_forward(REFRESH_MS)
