"""Database calls made on the web app's event loop (issue 13).

A blocking query on the loop stalls every other request the web app is serving: the routes'
database work belongs in a worker thread (run_in_threadpool / asyncio.to_thread). The
listener here sees every statement of every engine and keeps the ones executed on a thread
whose event loop serves an ASGI app through uvicorn — the harness serves our web app that way
(harness/stack.py `Served`); the sandboxes served next to it hold no database, and the tests'
own `asyncio.run` (Stack.run, the worker) is not a server's loop.

`watch_loop()`, entered inside a coroutine, records the statements executed on that
coroutine's own loop thread while the block runs (the worker's: its job slots share one loop,
so a query there stalls every other slot's HTTP calls); the threads the loop hands work to
(asyncio.to_thread) and the served loops on their own threads are not watched.

Two fixtures:
- `database_calls_on_the_web_loop`: the list of such calls, for a test to assert on;
- `no_database_call_on_the_web_loop`: autouse once a folder's conftest imports it; every test
  of that folder fails at teardown if its web app made such a call.

The sandbox's movable clock is left out: it exists only in sandbox mode and reads its offset
at most every half second (bootstrap.StoredClockOffset.__call__), from every clock reading,
which are everywhere on the loop.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

OURS = "whatsapp_helpdesk/"
# Our frames are the repository's: the package and the tests (a route a test adds).
REPOSITORY = str(Path(__file__).resolve().parents[2]) + "/"
VIRTUALENV = f"{REPOSITORY}.venv/"
UVICORN_SERVER = "uvicorn/server.py"


def _stack_now() -> list[traceback.FrameSummary]:
    """The calling thread's frames, outermost first; without reading source lines (this
    runs for every statement executed on a loop, the worker's and the tests' too)."""
    frames = traceback.StackSummary.extract(traceback.walk_stack(None), lookup_lines=False)
    return list(reversed(frames))


def _on_a_served_loop(stack_now: list[traceback.FrameSummary]) -> bool:
    """Whether this thread runs the event loop of a uvicorn server (its `run` is at the
    bottom of the thread's stack, below asyncio.run)."""
    return any(frame.filename.endswith(UVICORN_SERVER) for frame in stack_now)


def _in_the_sandbox_clock(stack_now: list[traceback.FrameSummary]) -> bool:
    return any(frame.name == "__call__" and frame.filename.endswith(f"{OURS}bootstrap.py")
               for frame in stack_now)


def describe(statement: str, stack_now: list[traceback.FrameSummary]) -> str:
    """The statement's first words, then our frames from the innermost outwards: the first
    of them is the offending call, the last the route."""
    ours = [f"{frame.filename.rsplit(OURS, 1)[-1].removeprefix(REPOSITORY)}:{frame.lineno}"
            f" {frame.name}" for frame in reversed(stack_now)
            if frame.filename != __file__ and (
                OURS in frame.filename or (frame.filename.startswith(REPOSITORY)
                                           and not frame.filename.startswith(VIRTUALENV)))]
    return f"{' '.join(statement.split()[:3])}  from  {'  <  '.join(ours)}"


@contextmanager
def recording_loop_calls(*, served_only: bool,
                         loop_thread: int | None = None) -> Iterator[list[str]]:
    """The database calls made on an event loop while the block runs: a served one (the web
    app's), or with `served_only=False` any (the worker's, run by a test); with
    `loop_thread`, only the loop running on that thread."""
    calls: list[str] = []
    lock = threading.Lock()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if loop_thread is not None and threading.get_ident() != loop_thread:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a thread without a loop: a worker thread, the test itself
        stack_now = _stack_now()
        if (_on_a_served_loop(stack_now) or not served_only) \
                and not _in_the_sandbox_clock(stack_now):
            seen = describe(statement, stack_now)
            with lock:
                if seen not in calls:  # a loop over rows says it once
                    calls.append(seen)

    # On the Engine class: every engine, also one a test builds after the block started.
    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield calls
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def watch_loop() -> AbstractContextManager[list[str]]:
    """Inside a coroutine: the database calls made on its loop's thread while the block runs,
    each named by its frames (`describe`)."""
    asyncio.get_running_loop()  # outside a loop there is nothing to watch: RuntimeError
    return recording_loop_calls(served_only=False, loop_thread=threading.get_ident())


def recording_web_loop_calls() -> AbstractContextManager[list[str]]:
    return recording_loop_calls(served_only=True)


@pytest.fixture
def database_calls_on_the_web_loop() -> Iterator[list[str]]:
    with recording_web_loop_calls() as calls:
        yield calls


@pytest.fixture(autouse=True)
def no_database_call_on_the_web_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Autouse where a conftest imports it (tests/web, tests/e2e). A test that asks for
    `database_calls_on_the_web_loop` checks the calls itself."""
    if "database_calls_on_the_web_loop" in request.fixturenames:
        yield
        return
    with recording_web_loop_calls() as calls:
        yield
    assert not calls, "database calls on the web app's event loop:\n" + "\n".join(calls)
