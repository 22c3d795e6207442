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
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import structlog
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whatsapp_helpdesk.inbound.ingest import Outcome
from whatsapp_helpdesk.scheduling import lower_priority
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

GROUP_SIZE = Histogram("whatsapp_helpdesk_spool_append_group_deliveries",
                       "Deliveries acknowledged per group fsync of the spool (INGEST_MODE=spool)",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

_Waiting = tuple[bytes, "asyncio.Future[Outcome]"]
_HandOver = tuple[asyncio.AbstractEventLoop, list[_Waiting]]


class SpoolAppender:
    """Group fsync: the requests an event-loop iteration read are handed over together to
    one thread, which appends everything handed over while it was busy to the spool with
    ONE write and ONE fsync, then answers them with one callback per loop (R11: a 2xx only
    once it is on disk). The fsync releases the GIL, so the loop keeps reading requests
    meanwhile. Per request this costs a future and a list append; a hand-over is a list
    append under a lock, and wakes the thread only when it is idle (a wake-up on the same
    core is two context switches); the callback into the loop is paid once per group."""

    def __init__(self, webhook_spool: WebhookSpool) -> None:
        self.webhook_spool = webhook_spool
        # Per event loop (tests run several): its requests of this iteration, not handed over.
        self._gathering: dict[asyncio.AbstractEventLoop, list[_Waiting]] = {}
        self._ready = threading.Condition()  # guards the three below
        self._handed: list[_HandOver] = []
        self._stopping = False
        self._thread: threading.Thread | None = None

    def submit(self, record: bytes) -> asyncio.Future[Outcome]:
        """The answer for one encoded spool record, once it is fsynced with its group."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        gathering = self._gathering.get(loop)
        if gathering is None:
            gathering = self._gathering[loop] = []
            # Runs after the requests this iteration read have reached here.
            loop.call_soon(self._hand_over, loop)
        gathering.append((record, future))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        group = self._gathering.pop(loop)
        with self._ready:
            if self._thread is None:  # started on first use: an app served without lifespan
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name=APPENDER_THREAD,
                                                daemon=True)
                self._thread.start()
            self._handed.append((loop, group))
            self._ready.notify()  # nobody to wake while the thread is busy: nearly free

    def stop(self) -> None:
        """Answers what was handed over, then ends the thread."""
        with self._ready:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._ready.notify()
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        # SCHED_BATCH: woken (a hand-over, its fsync done), this thread waits for the running
        # one's time slice instead of preempting it. On the web process's one core, waking it
        # preempted the event loop inside `Condition.notify` while the loop held the GIL, and
        # the appender, scheduled, could only wait for that GIL: two context switches per
        # group for nothing (12-26 % of the loop's GIL-held samples, docs/performance.md).
        # Its share of the CPU is unchanged.
        lower_priority(0, "batch")
        while True:
            with self._ready:
                while not self._handed and not self._stopping:
                    self._ready.wait()
                hand_overs, self._handed = self._handed, []
                if not hand_overs:
                    return  # stopping, and everything handed over was answered
            self._append(hand_overs)

    def _append(self, hand_overs: list[_HandOver]) -> None:
        records = [record for _, group in hand_overs for record, _ in group]
        GROUP_SIZE.observe(len(records))
        result: Outcome | Exception
        try:
            result = self.webhook_spool.append_fast(records)
        except Exception as exc:  # not on disk: answered 500, Aircall retries
            log.exception("aircall.spool_append_failed", deliveries=len(records))
            result = exc
        else:
            WEBHOOKS.labels("aircall", result.result).inc(len(records))
        futures: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Outcome]]] = {}
        for loop, group in hand_overs:
            futures.setdefault(loop, []).extend(future for _, future in group)
        for loop, answered in futures.items():
            with contextlib.suppress(RuntimeError):  # the server stopped: its loop is gone
                loop.call_soon_threadsafe(_settle_all, answered, result)


def _settle_all(futures: list[asyncio.Future[Outcome]], result: Outcome | Exception) -> None:
    for future in futures:
        _settle(future, result)


def _json_answer(status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]]
                 ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """An answer built once, sent as it is (no Response object per request)."""
    content = json.dumps(body, separators=(",", ":")).encode()
    return status, [(b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()), *headers], content


class AircallFastPath:
    """`POST /webhooks/aircall` in spool mode, answered here, ahead of FastAPI's middleware
    stack, the session middleware and the routing (a webhook has no session, no page): the
    body read up to its limit, a delivery the fast path takes (WebhookSpool.fast_path_record)
    spooled and answered; any other request, and any other delivery with its body, handed
    on to `app`, which answers as it always did. Its answers are built once, with the
    security headers every answer carries (web/security_headers.py), since they no longer
    pass through that middleware."""

    def __init__(self, app: ASGIApp, *, webhook_spool: WebhookSpool, appender: SpoolAppender,
                 max_body: int, headers: list[tuple[bytes, bytes]],
                 path: str = "/webhooks/aircall") -> None:
        self.app = app
        self.webhook_spool = webhook_spool
        self.appender = appender
        self.max_body = max_body
        self.path = path
        self._answers: dict[Outcome, tuple[int, list[tuple[bytes, bytes]], bytes]] = {}
        self._headers = headers
        self._too_large = _json_answer(413, {"result": "too_large"}, headers)
        self._failed = _json_answer(500, {"result": "error", "detail": "not kept; retry"},
                                    headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await _read_body(scope, receive, self.max_body)
        if body is None:
            WEBHOOKS.labels("aircall", "too_large").inc()
            await _send(send, self._too_large)
            return
        if isinstance(body, _Disconnected):
            return  # the client left before sending it all: nothing to answer
        record = self.webhook_spool.fast_path_record(body)
        if record is None:
            await self.app(scope, _replaying(body, receive), send)
            return
        spool = self.webhook_spool
        spool.acks_in_flight += 1
        try:
            outcome = await self.appender.submit(record)
        except Exception:  # logged by the appender; nothing kept, so Aircall retries
            await _send(send, self._failed)
            return
        finally:
            spool.acks_in_flight -= 1
            spool.last_fast_activity = time.monotonic()
        await _send(send, self._answer(outcome))

    def _answer(self, outcome: Outcome) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        # A handful of distinct outcomes ("spooled", "busy", "spool_full"): each built once.
        answer = self._answers.get(outcome)
        if answer is None:
            answer = self._answers[outcome] = _json_answer(outcome.status_code, outcome.body(),
                                                           self._headers)
        return answer


async def _send(send: Send, answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> None:
    status, headers, content = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


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
