"""Group commit of Aircall webhooks: one writer thread per web process (issue 17 items 1, 2).

Requests hand their body to the writer and wait. The writer takes everything that queued
while it was busy and stores it in one transaction (WebhookSpool.receive_aircall_batch), then
answers each request — only after the commit that holds its delivery, so a 2xx still means
"kept" (R11). Nothing waits on purpose: under light load a batch is one delivery; under
load a batch is whatever arrived during the previous commit, so commits (and SQLite's fsyncs)
are shared exactly when they are the bottleneck. One writer per process also means the
threads of a web process never queue on SQLite's write lock against each other.

See docs/decisions/0010-group-commit.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whatsapp_helpdesk.inbound.ingest import Outcome
from whatsapp_helpdesk.web.webhook_intake import BATCH_SIZE, WEBHOOKS

T = TypeVar("T")

if TYPE_CHECKING:
    from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

log = structlog.get_logger(__name__)

# A bound on one transaction's size: long enough to share a commit among every request a
# web process holds at once, short enough that a batch's statements stay a few ms.
MAX_BATCH = 128

THREAD_NAME = "ingest-writer"

_Item = tuple[bytes, asyncio.AbstractEventLoop, "asyncio.Future[Outcome]"]


class AircallIngestWriter:
    def __init__(self, webhook_spool: WebhookSpool, max_batch: int = MAX_BATCH,
                 writers: int | None = None) -> None:
        self.webhook_spool = webhook_spool
        self.max_batch = max_batch
        if writers is None:
            services = webhook_spool.services
            writers = services.settings.ingest_writers or (
                1 if services.engine.dialect.name == "sqlite" else 4)
        self.writers = writers
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._guard = threading.Lock()

    async def submit(self, body: bytes) -> Outcome:
        """The delivery's outcome, once the transaction holding it has committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._ensure_started()
        self._queue.put((body, loop, future))
        return await future

    def queued(self) -> int:
        """Deliveries waiting for the writer (not those it is storing)."""
        return self._queue.qsize()

    def _ensure_started(self) -> None:
        # Started on first use: an app served without its lifespan still answers.
        if not self._threads:
            with self._guard:
                if not self._threads:
                    self._threads = [
                        threading.Thread(target=self._run, name=f"{THREAD_NAME}-{i}",
                                         daemon=True)
                        for i in range(self.writers)]
                    for thread in self._threads:
                        thread.start()

    def stop(self) -> None:
        """Answers what is queued, then ends the threads."""
        with self._guard:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        serve_in_groups(self._queue, self.max_batch, self._store)

    def _store(self, batch: list[_Item]) -> None:
        BATCH_SIZE.observe(len(batch))
        try:
            results: list[Outcome | Exception] = list(
                self.webhook_spool.receive_aircall_batch([body for body, _, _ in batch]))
        except Exception as exc:  # never leave a request without an answer
            log.exception("aircall.batch_failed", deliveries=len(batch))
            results = [exc] * len(batch)
        for (_, loop, future), result in zip(batch, results, strict=True):
            # RuntimeError: that request's event loop is gone (the server stopped).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, future, result)


def serve_in_groups(items: queue.SimpleQueue[T | None], most: int,
                    handle: Callable[[list[T]], None]) -> None:
    """A writer thread's loop: wait for one item, take whatever else queued meanwhile (up to
    `most`), handle them together; None in the queue ends the loop after what came first."""
    while True:
        item = items.get()
        if item is None:
            return
        group = [item]
        stopping = False
        while len(group) < most:
            try:
                more = items.get_nowait()
            except queue.Empty:
                break
            if more is None:
                stopping = True
                break
            group.append(more)
        handle(group)
        if stopping:
            return


def _settle(future: asyncio.Future[Outcome], result: Outcome | Exception) -> None:
    if future.done():  # the request was cancelled (client gone): its delivery is kept anyway
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


# --- The fast path: spool first, store later (docs/decisions/0011-spool-first-ingest.md) ----

APPENDER_THREAD = "spool-appender"
# Records per group fsync: every request a web process holds at once, in one write.
MAX_GROUP = 512

_Record = tuple[dict[str, Any], asyncio.AbstractEventLoop, "asyncio.Future[Outcome]"]


class SpoolAppender:
    """Group fsync: one thread appends whatever queued while it was busy to the spool with
    ONE write and ONE fsync, then answers each request (R11: a 2xx only once it is on disk).
    The fsync releases the GIL, so the event loop keeps reading requests meanwhile."""

    def __init__(self, webhook_spool: WebhookSpool, max_group: int = MAX_GROUP) -> None:
        self.webhook_spool = webhook_spool
        self.max_group = max_group
        self._queue: queue.SimpleQueue[_Record | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    async def submit(self, record: dict[str, Any]) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        if self._thread is None:
            self._start()
        self._queue.put((record, loop, future))
        return await future

    def _start(self) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=APPENDER_THREAD,
                                                daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Answers what is queued, then ends the thread."""
        with self._guard:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)

    def _run(self) -> None:
        serve_in_groups(self._queue, self.max_group, self._append)

    def _append(self, group: list[_Record]) -> None:
        result: Outcome | Exception
        try:
            result = self.webhook_spool.append_fast([record for record, _, _ in group])
        except Exception as exc:  # not on disk: answered 500, Aircall retries
            log.exception("aircall.spool_append_failed", deliveries=len(group))
            result = exc
        for _, loop, future in group:
            with contextlib.suppress(RuntimeError):  # the server stopped: its loop is gone
                loop.call_soon_threadsafe(_settle, future, result)


class AircallFastPath:
    """`POST /webhooks/aircall` in spool mode, answered here, ahead of the session
    middleware and FastAPI's routing (a webhook has no session, no page): the body read up
    to its limit, a delivery the fast path takes (WebhookSpool.fast_path_record) spooled
    and answered; any other handed on, with its body, to the app's route, which answers as
    it always did. Security headers still wrap it (this middleware sits inside them)."""

    def __init__(self, app: ASGIApp, *, webhook_spool: WebhookSpool, appender: SpoolAppender,
                 max_body: int, path: str = "/webhooks/aircall") -> None:
        self.app = app
        self.webhook_spool = webhook_spool
        self.appender = appender
        self.max_body = max_body
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(scope, receive, self.max_body)
        if body is None:
            WEBHOOKS.labels("aircall", "too_large").inc()
            await JSONResponse({"result": "too_large"}, status_code=413)(scope, receive, send)
            return
        if isinstance(body, _Disconnected):
            return  # the client left before sending it all: nothing to answer
        record = self.webhook_spool.fast_path_record(body)
        if record is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        self.webhook_spool.acks_in_flight += 1
        try:
            outcome = await self.appender.submit(record)
        finally:
            self.webhook_spool.acks_in_flight -= 1
            self.webhook_spool.last_fast_activity = time.monotonic()
        WEBHOOKS.labels("aircall", outcome.result).inc()
        await JSONResponse(outcome.body(), status_code=outcome.status_code)(scope, receive, send)


class _Disconnected:
    pass


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | _Disconnected | None:
    """The whole body; None as soon as it is known to exceed `limit` (declared or sent)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for the app behind: the body already read, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
