"""The worker: drains the outbox, acting on the error tree (R44).

    success        → done, logged
    RateLimited    → again after the provider's own wait (never spends the retry budget)
    Retryable      → again after exponential backoff with jitter, for DELIVERY_RETRY_HOURS
                     from the first such failure (domain/retry_budget.py); a reply also
                     stops when its next try would fall after WhatsApp's window
    AuthExpired    → refresh the token, again at once
    AuthRevoked    → installation flagged "re-authentication required" (R8); entry failed
                     as `auth_revoked`, re-queued in order when the admin re-authorises
                     (flows/reauth.py)
    Permanent      → failed with its reason, kept, retryable from the dashboard (R9)

Any number of worker processes can run against one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Conversation, Message, OutboxEntry
from whatsapp_helpdesk.domain.retry_budget import RetryIn, after_temporary_failure
from whatsapp_helpdesk.errors import (
    AuthExpired,
    AuthRevoked,
    DeliveryError,
    Permanent,
    RateLimited,
    Retryable,
)
from whatsapp_helpdesk.flows import payload_retention, webhook_health
from whatsapp_helpdesk.flows.contact_company import SET_CONTACT_COMPANY, set_contact_company
from whatsapp_helpdesk.flows.credentials import hubspot_access_token, mark_reauth_required
from whatsapp_helpdesk.flows.ingest import PUBLISH_INBOUND
from whatsapp_helpdesk.flows.media import FETCH_MEDIA, fetch_media
from whatsapp_helpdesk.flows.native_ticketing import NATIVE_TICKET, create_native_ticket
from whatsapp_helpdesk.flows.numbers_refresh import REFRESH_NUMBERS, refresh_numbers_job
from whatsapp_helpdesk.flows.publish import publish_inbound
from whatsapp_helpdesk.flows.reengagement import (
    REENGAGEMENT_NOTE,
    publish_note,
    template_may_follow,
)
from whatsapp_helpdesk.flows.reply import SEND_REPLY, send_reply
from whatsapp_helpdesk.flows.reply import give_up as give_up_reply
from whatsapp_helpdesk.flows.statuses import REPORT_STATUS, report_status
from whatsapp_helpdesk.pacing import Paced

log = structlog.get_logger(__name__)

DELIVERIES = Counter(
    "whatsapp_helpdesk_deliveries_total", "Outbox deliveries by kind and outcome",
    ["kind", "outcome"],
)

# The longest an idle slot other than the first waits before it looks again.
IDLE_SLOT_MAX_WAIT = 2.0
# Doublings past this are above any sensible wait already; without the bound, 2 ** 1024
# idle rounds (about 38 minutes of quiet) overflow a float and killed the worker.
IDLE_MAX_DOUBLINGS = 32

# A job does one outbox entry's work; it returns a word for the delivery log.
Job = Callable[[Services, outbox.Claimed], Awaitable[str]]


async def _publish(services: Services, entry: outbox.Claimed) -> str:
    assert entry.message_id is not None
    return await publish_inbound(services, entry.message_id)


JOBS: dict[str, Job] = {
    PUBLISH_INBOUND: _publish,
    SEND_REPLY: send_reply,
    REPORT_STATUS: report_status,
    NATIVE_TICKET: create_native_ticket,
    SET_CONTACT_COMPANY: set_contact_company,
    REENGAGEMENT_NOTE: publish_note,
    FETCH_MEDIA: fetch_media,
    REFRESH_NUMBERS: refresh_numbers_job,
}


def _record_final_failure(
    session: Session, entry: outbox.Claimed, reason: str, now: datetime
) -> None:
    """What a delivery that failed for good means for its message (kept, shown, R9, R44)."""
    if entry.message_id is None:
        return
    if entry.kind == SEND_REPLY:
        # A reply that will not be sent is FAILED in HubSpot too, with the reason (R23).
        give_up_reply(session, entry.message_id, reason, now)
        return
    if entry.kind == REPORT_STATUS:
        return  # telling HubSpot failed; the message itself is what it is
    message = session.get(Message, entry.message_id)
    if message is not None:
        message.status = "failed"
        message.failure_reason = reason


def _reply_window_start(session: Session, entry: outbox.Claimed) -> datetime | None:
    """For a reply: the customer's last message, which opens WhatsApp's window (R24)."""
    if entry.kind != SEND_REPLY or entry.message_id is None:
        return None
    message = session.get(Message, entry.message_id)
    if message is None or template_may_follow(session, message):
        return None  # R52: past the window the number's template goes, so keep retrying
    conversation = session.get(Conversation, message.conversation_id)
    return conversation.last_inbound_at if conversation is not None else None


class Worker:
    def __init__(self, services: Services, *, concurrency: int | None = None,
                 poll_interval: float = 0.2):
        self.services = services
        self.concurrency = concurrency or services.settings.worker_concurrency
        self.poll_interval = poll_interval
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stopping = asyncio.Event()
        # Pulsed when a slot finds work: the idle slots wake up, there may be more.
        self._work_found = asyncio.Event()
        # The installation this process served last: claims take installations in turn (R44).
        self._last_installation = 0

    def stop(self) -> None:
        self._stopping.set()
        self._work_found.set()

    async def run(self) -> None:
        log.info("worker.started", worker_id=self.worker_id, concurrency=self.concurrency)
        try:
            await asyncio.gather(
                *(self._loop(i) for i in range(self.concurrency)),
                # Aircall disables a failing webhook: checked and re-enabled here (R53).
                webhook_health.run_periodically(self.services, self._stopping),
                # Raw webhook payloads older than WEBHOOK_PAYLOAD_RETENTION_DAYS (issue 17).
                payload_retention.run_periodically(self.services, self._stopping),
            )
        finally:
            await self.services.aclose()

    async def run_until_idle(self, *, timeout: float = 30.0) -> None:
        """Work until no entry is pending any more (tests, `worker --once`); entries waiting
        for a retry are waited for, within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.work_once():
                continue
            if not await asyncio.to_thread(self._anything_pending):
                return
            await asyncio.sleep(0.05)

    def _anything_pending(self) -> bool:
        with self.services.sessions() as session:
            return session.scalar(
                select(OutboxEntry.id).where(OutboxEntry.state == outbox.PENDING).limit(1)
            ) is not None

    def _idle_wait(self, slot: int, idle_rounds: int) -> float:
        """Slot 0 keeps polling every `poll_interval`, so new work is seen at once; the other
        slots back off while there is nothing to do (an empty claim is not free: with a deep
        backlog in a few busy conversations it scans every pending entry, as measured in
        docs/performance.md) and are woken as soon as a slot finds work."""
        if slot == 0:
            return self.poll_interval
        doublings = min(idle_rounds, IDLE_MAX_DOUBLINGS)
        return min(self.poll_interval * 2 ** doublings, IDLE_SLOT_MAX_WAIT)

    async def _loop(self, slot: int) -> None:
        idle_rounds = 0
        while not self._stopping.is_set():
            try:
                worked = await self.work_once()
            except Exception:  # the loop must survive anything (a bad row, a DB blip)
                log.exception("worker.loop_error", slot=slot)
                worked = False
            if worked:
                idle_rounds = 0
                self._work_found.set()  # wakes the waiting slots…
                self._work_found.clear()  # …once: this is a pulse, not a state
                continue
            idle_rounds += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._work_found.wait(),
                                       self._idle_wait(slot, idle_rounds))

    async def work_once(self) -> bool:
        services = self.services
        entry = await asyncio.to_thread(self._claim)
        if entry is None:
            return False
        job = JOBS.get(entry.kind)
        started = services.clock.now()
        t0 = time.monotonic()
        outcome, status_code, detail = "ok", None, None
        try:
            if job is None:
                raise Permanent(f"unknown outbox job {entry.kind!r}")
            detail = await job(services, entry)
        except DeliveryError as exc:
            outcome, status_code, detail = self._classify(exc), exc.status_code, exc.message
            await self._after_failure(entry, exc)
        except Exception as exc:  # a bug must not wedge the conversation: retry, bounded
            log.exception("worker.job_crashed", kind=entry.kind, outbox_id=entry.id)
            outcome, detail = "retry", f"internal error: {exc!r}"[:500]
            await self._after_failure(entry, Retryable(detail))
        else:
            duration_ms = int((time.monotonic() - t0) * 1000)
            await asyncio.to_thread(self._finish, entry, started, duration_ms, detail)
            DELIVERIES.labels(entry.kind, outcome).inc()
            return True
        duration_ms = int((time.monotonic() - t0) * 1000)
        await asyncio.to_thread(self._log_attempt, entry, started, duration_ms, outcome,
                                status_code, detail)
        DELIVERIES.labels(entry.kind, outcome).inc()
        return True

    # --- steps, each its own short transaction -------------------------------------------------

    def _claim(self) -> outbox.Claimed | None:
        with self.services.sessions() as session:
            entry = outbox.claim(
                session, worker_id=self.worker_id, now=self.services.clock.now(),
                lease=timedelta(seconds=self.services.settings.worker_lease_seconds),
                after_installation=self._last_installation,
            )
        if entry is not None:
            self._last_installation = entry.installation_id
        return entry

    def _finish(self, entry: outbox.Claimed, started: datetime, duration_ms: int,
                detail: str | None) -> None:
        """Done and logged in one transaction: one commit per delivery, not two."""
        with self.services.sessions.begin() as session:
            outbox.complete(session, entry_id=entry.id, worker_id=self.worker_id,
                            now=self.services.clock.now())
            outbox.record_attempt(session, outbox_id=entry.id, attempt=entry.attempt,
                                  started_at=started, duration_ms=duration_ms, outcome="ok",
                                  detail=detail)

    def _log_attempt(self, entry: outbox.Claimed, started, duration_ms, outcome, status_code,
                     detail) -> None:  # type: ignore[no-untyped-def]
        with self.services.sessions.begin() as session:
            outbox.record_attempt(session, outbox_id=entry.id, attempt=entry.attempt,
                                  started_at=started, duration_ms=duration_ms, outcome=outcome,
                                  http_status=status_code, detail=detail)

    @staticmethod
    def _classify(exc: DeliveryError) -> str:
        if isinstance(exc, Paced):
            return "paced"  # our own pacing put it back; no call was made
        if isinstance(exc, RateLimited):
            return "rate_limited"
        if isinstance(exc, Retryable | AuthExpired):
            return "retry"
        return "permanent"

    async def _after_failure(self, entry: outbox.Claimed, exc: DeliveryError) -> None:
        services = self.services
        now = services.clock.now()
        if isinstance(exc, AuthExpired):
            try:
                await hubspot_access_token(services, entry.installation_id, force_refresh=True)
            except DeliveryError as refresh_error:
                exc = refresh_error
        if isinstance(exc, AuthRevoked):
            mark_reauth_required(services, entry.installation_id, exc.message)
        permanent = isinstance(exc, Permanent | AuthRevoked)
        budget = timedelta(hours=services.settings.delivery_retry_hours)

        def write() -> bool:
            """True when the entry failed for good."""
            with services.sessions.begin() as session:
                reason = exc.message
                if not permanent:
                    row = session.get(OutboxEntry, entry.id)
                    since = row.retrying_since if row is not None else None
                    rate_limited = isinstance(exc, RateLimited)
                    if isinstance(exc, RateLimited):
                        wait = timedelta(seconds=exc.retry_after)
                    elif isinstance(exc, AuthExpired) and since is None:
                        wait = timedelta(0)  # refreshed just now: at once, the first time
                    elif isinstance(exc, Retryable) and exc.retry_in is not None:
                        wait = timedelta(seconds=exc.retry_in)
                    else:
                        wait = outbox.backoff(entry.attempt)
                    decision = after_temporary_failure(
                        error=exc.message, rate_limited=rate_limited, wait=wait, now=now,
                        retrying_since=since, budget=budget,
                        last_customer_message_at=_reply_window_start(session, entry),
                    )
                    if isinstance(decision, RetryIn):
                        # Rate-limit waits never start the budget's clock (issue 11 item 5).
                        outbox.retry_later(session, entry_id=entry.id, worker_id=self.worker_id,
                                           now=now, delay=wait, error=exc.message,
                                           retrying_since=since if rate_limited else (
                                               since or now))
                        return False
                    reason = decision.reason
                # Re-queued after re-authorisation (flows/reauth.py), except a reply: its
                # failure is already FAILED in HubSpot, and the agent decides.
                requeued_later = isinstance(exc, AuthRevoked) and entry.kind != SEND_REPLY
                outbox.fail(session, entry_id=entry.id, worker_id=self.worker_id, now=now,
                            error=reason,
                            failure_kind=outbox.AUTH_REVOKED if requeued_later else None)
                _record_final_failure(session, entry, reason, now)
                return True

        failed_for_good = await asyncio.to_thread(write)
        log.warning("worker.delivery_failed", kind=entry.kind, outbox_id=entry.id,
                    attempt=entry.attempt, error=exc.message, permanent=failed_for_good)
