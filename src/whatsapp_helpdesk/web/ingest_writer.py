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
from typing import TYPE_CHECKING

import structlog
from prometheus_client import Histogram

from whatsapp_helpdesk.inbound.ingest import Outcome

if TYPE_CHECKING:
    from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

log = structlog.get_logger(__name__)

BATCH_SIZE = Histogram("whatsapp_helpdesk_ingest_batch_deliveries",
                       "Aircall deliveries stored per transaction by the web process's writer",
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128))

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
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._store(batch)
            if stopping:
                return

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


def _settle(future: asyncio.Future[Outcome], result: Outcome | Exception) -> None:
    if future.done():  # the request was cancelled (client gone): its delivery is kept anyway
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
