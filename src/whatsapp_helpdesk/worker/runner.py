"""The worker: drains the outbox, acting on the error tree (R44).

    success        → done, logged
    RateLimited    → again after the provider's own wait (never spends the retry budget)
    Retryable      → again after exponential backoff with jitter, for DELIVERY_RETRY_HOURS
                     from the first such failure (domain/retry_budget.py); a reply also
                     stops when its next try would fall after WhatsApp's window
    AuthExpired    → refresh the token, again at once
    AuthRevoked    → installation flagged "re-authentication required" (R8); entry failed
                     as `auth_revoked`, re-queued in order when the admin re-authorises
                     (connect/reauth.py)
    Permanent      → failed with its reason, kept, retryable from the dashboard (R9)

What each kind of entry does, how long it is retried and what failing for good means for it
(its give-up action) is the kind's own entry in jobs/registry.py: the worker has no per-kind
branch. An entry of a kind this version does not know, or whose payload does not validate,
fails at once with the reason, logged and counted (`whatsapp_helpdesk_unreadable_jobs_total`).

Any number of worker processes can run against one database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import structlog
from prometheus_client import Counter
from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.credentials import hubspot_access_token, mark_reauth_required
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import OutboxEntry
from whatsapp_helpdesk.db.rate_buckets import DatabaseRateLimiter
from whatsapp_helpdesk.db.session import READ_ONLY
from whatsapp_helpdesk.domain.clock import OffsetClock, SystemClock
from whatsapp_helpdesk.domain.retry_budget import RetryIn, after_temporary_failure
from whatsapp_helpdesk.errors import (
    AuthExpired,
    AuthRevoked,
    DeliveryError,
    Permanent,
    RateLimited,
    Retryable,
)
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind, UnreadableJob, unknown_kind
from whatsapp_helpdesk.operations import payload_retention, webhook_health
from whatsapp_helpdesk.pacing import (
    CLAIM_MAX_WAIT,
    Limit,
    Paced,
    Reservation,
    reserved_for_this_job,
)
from whatsapp_helpdesk.worker.idle import IdleGate, watch_of

log = structlog.get_logger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

DELIVERIES = Counter(
    "whatsapp_helpdesk_deliveries_total", "Outbox deliveries by kind and outcome",
    ["kind", "outcome"],
)
# Entries failed without running: an unknown kind (a newer version wrote it) or a payload
# that does not validate. Each is also logged as an error.
UNREADABLE_JOBS = Counter(
    "whatsapp_helpdesk_unreadable_jobs_total", "Outbox entries failed unrun, by kind and why",
    ["kind", "why"],
)

# The longest an idle slot other than the first waits before it looks again.
IDLE_SLOT_MAX_WAIT = 2.0
# Doublings past this are above any sensible wait already; without the bound, 2 ** 1024
# idle rounds (about 38 minutes of quiet) overflow a float and killed the worker.
IDLE_MAX_DOUBLINGS = 32

# At most this many claims given back in a row before the slot rests (every installation
# with work may have a full bucket); each one found full is skipped by the next claim.
CLAIMS_GIVEN_BACK_AT_MOST = 8


def on_a_live_connection(step: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`step` (one or more transactions of the worker's own), once more if it met a pooled
    connection that died meanwhile (PostgreSQL restarted). The worker's engine does not ping
    a connection before each use (bootstrap `for_the_worker`); SQLAlchemy invalidates the
    pool on such an error, so the second try gets a fresh connection. The steps retried are
    safe to run twice: a claim whose commit was lost leaves an entry leased until its lease
    ends; a completion is the lease holder's and idempotent (`outbox.with_completion`)."""
    try:
        return step(*args, **kwargs)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.info("worker.connection_lost_retried", error=str(exc.orig)[:200])
        return step(*args, **kwargs)


class _NotPaced:
    """A job whose first call books no pacing slot."""


_NOT_PACED = _NotPaced()


@dataclass(frozen=True)
class _NothingDue:
    """An idle read found nothing due at `now`; `next_at`: see `outbox.Look`."""

    now: datetime
    next_at: datetime | None


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
        # Installation → until when (pacing clock) its bucket is known to be too full to
        # book at claim time: its work is not claimed before then. Read and written by the
        # slots' claims, each in its own thread.
        self._bucket_full_until: dict[int, float] = {}
        self._bucket_full_lock = threading.Lock()
        # Idle polls skipped while the outbox cannot have changed (worker/idle.py: SQLite's
        # commits, PostgreSQL's notifications).
        # Only on the system's time (the sandbox's offset moves by a commit): a test's
        # manual clock moves without one.
        on_system_time = isinstance(services.clock, SystemClock | OffsetClock)
        self._idle_gate = IdleGate(watch_of(services.engine) if on_system_time else None)

    def stop(self) -> None:
        self._stopping.set()
        self._work_found.set()

    async def run(self) -> None:
        log.info("worker.started", worker_id=self.worker_id, concurrency=self.concurrency)
        self._idle_gate.start()
        try:
            await asyncio.gather(
                *(self._loop(i) for i in range(self.concurrency)),
                # Aircall disables a failing webhook: checked and re-enabled here (R53).
                webhook_health.run_periodically(self.services, self._stopping),
                # Raw webhook payloads older than WEBHOOK_PAYLOAD_RETENTION_DAYS (issue 17).
                payload_retention.run_periodically(self.services, self._stopping),
            )
        finally:
            self._idle_gate.close()
            await self.services.aclose()

    async def run_until_idle(self, *, timeout: float = 30.0) -> None:
        """Work until no entry is pending any more (tests, `worker --once`); entries waiting
        for a retry are waited for, within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.work_once():
                continue
            if not await asyncio.to_thread(on_a_live_connection, self._anything_pending):
                return
            await asyncio.sleep(0.05)

    def _anything_pending(self) -> bool:
        with self.services.sessions() as session:
            return session.scalar(
                select(OutboxEntry.id).where(OutboxEntry.state == outbox.PENDING).limit(1)
            ) is not None

    def _idle_wait(self, slot: int, idle_rounds: int) -> float:
        """Slot 0 keeps polling every `poll_interval`, so new work is seen at once; the other
        slots back off while there is nothing to do (an empty claim is not free: two
        statements, a bounded number of index probes, db/outbox.py) and are woken as soon
        as a slot finds work."""
        if slot == 0:
            return self.poll_interval
        doublings = min(idle_rounds, IDLE_MAX_DOUBLINGS)
        return min(self.poll_interval * 2.0 ** doublings, IDLE_SLOT_MAX_WAIT)

    async def _loop(self, slot: int) -> None:
        idle_rounds = 0
        while not self._stopping.is_set():
            try:
                # A slot that just finished an entry claims the next one without the idle
                # read first (a transaction fewer per entry under load).
                worked = await self.work_once(after_idle=idle_rounds > 0)
            except Exception:  # the loop must survive anything (a bad row, a DB blip)
                log.exception("worker.loop_error", slot=slot)
                worked = False
            if worked:
                idle_rounds = 0
                self._work_found.set()  # wakes the waiting slots…
                self._work_found.clear()  # …once: this is a pulse, not a state
                continue
            if self._stopping.is_set():
                # stop()'s pulse may already have been cleared by a slot that finished an
                # entry meanwhile: waiting now would sit out the whole back-off.
                break
            idle_rounds += 1
            wait = self._idle_wait(slot, idle_rounds)
            # Work held back by a full bucket is due again sooner than an idle back-off.
            wait = min(wait, max(0.0, self._next_bucket_room() - self.services.pacing_clock()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._work_found.wait(), wait)

    async def work_once(self, *, after_idle: bool = True) -> bool:
        services = self.services
        if after_idle and self._idle_gate.may_skip():
            return False  # nothing committed since a poll found nothing due: nothing to do
        # Taken before the idle read, so that a commit after it disarms the gate.
        stamp = self._idle_gate.stamp() if after_idle else None
        claimed = await asyncio.to_thread(on_a_live_connection, self._claim, after_idle)
        if isinstance(claimed, _NothingDue):
            self._idle_gate.arm(stamp, claimed.now, claimed.next_at)
            return False
        self._idle_gate.disarm()
        if claimed is None:
            return False
        entry, reservation = claimed
        kind = REGISTRY.get(entry.kind)
        started = services.clock.now()
        t0 = time.monotonic()
        outcome, status_code, detail = "ok", None, None
        try:
            if kind is None:
                raise unknown_kind(entry.kind)
            job = kind.read(entry)
            with reserved_for_this_job(reservation), outbox.completion_steps() as steps:
                detail = await kind.handler(services, entry, job)
        except DeliveryError as exc:
            if isinstance(exc, UnreadableJob):
                log.error("worker.unreadable_job", kind=entry.kind, outbox_id=entry.id,
                          why=exc.why, error=exc.message)
                UNREADABLE_JOBS.labels(entry.kind, exc.why).inc()
            outcome, status_code, detail = self._classify(exc), exc.status_code, exc.message
            await self._after_failure(entry, kind, exc)
        except Exception as exc:  # a bug must not wedge the conversation: retry, bounded
            log.exception("worker.job_crashed", kind=entry.kind, outbox_id=entry.id)
            outcome, detail = "retry", f"internal error: {exc!r}"[:500]
            await self._after_failure(entry, kind, Retryable(detail))
        else:
            duration_ms = int((time.monotonic() - t0) * 1000)
            await asyncio.to_thread(on_a_live_connection, self._finish, entry, started,
                                    duration_ms, detail, steps)
            DELIVERIES.labels(entry.kind, outcome).inc()
            return True
        duration_ms = int((time.monotonic() - t0) * 1000)
        await asyncio.to_thread(on_a_live_connection, self._log_attempt, entry, started,
                                duration_ms, outcome, status_code, detail)
        DELIVERIES.labels(entry.kind, outcome).inc()
        return True

    # --- steps, each its own short transaction -------------------------------------------------

    def _claim(self, after_idle: bool) -> tuple[outbox.Claimed, Reservation | None] | None | (
            _NothingDue):
        """The next entry, in installation turn, with its first call's slot booked (R44).
        After an idle round, a plain read first (`outbox.look`): nothing due, no claim.

        An installation whose bucket has no slot within CLAIM_MAX_WAIT is given back and
        skipped until its bucket has room: the slot claims other installations' work
        rather than sleeping on that bucket."""
        engine = self.services.engine
        now = self.services.clock.now()
        if after_idle:
            with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
                look = outbox.look(connection, now)
            if not look.due:
                return _NothingDue(now, look.next_at)
        lease = timedelta(seconds=self.services.settings.worker_lease_seconds)
        for _ in range(CLAIMS_GIVEN_BACK_AT_MOST):
            full = self._installations_with_full_buckets()
            # Core on the engine, not a Session: the claim is two statements, and the
            # booking's one when its bucket's key is known (cached): then the entry and its
            # slot are taken in one transaction (issue 17 item 3: a transaction fewer per
            # job), and a full bucket rolls both back. An unknown key may need a database
            # read, which on SQLite would wait for this transaction's write lock.
            with engine.connect() as connection, connection.begin() as transaction:
                entry = outbox.claim_on(
                    connection, worker_id=self.worker_id, now=now, lease=lease,
                    after_installation=self._last_installation, skip_installations=full,
                )
                if entry is None:
                    return None
                self._last_installation = entry.installation_id
                bucket = self._first_call_bucket(entry, known_only=True)
                if isinstance(bucket, _NotPaced):
                    return entry, None
                if bucket is not None:
                    reservation = self._book_first_call(entry, bucket, connection)
                    if reservation.permit.granted:
                        return entry, reservation
                    transaction.rollback()  # given back: as if never claimed
            if bucket is None:
                # Retried alone: the claim above is committed.
                reservation = on_a_live_connection(self._book_first_call, entry)
                if reservation.permit.granted:
                    return entry, reservation
                with self.services.sessions.begin() as session:
                    outbox.release(session, entry_id=entry.id, worker_id=self.worker_id)
            now = self.services.clock.now()
        return None

    def _first_call_bucket(self, entry: outbox.Claimed, *, known_only: bool = False
                           ) -> tuple[str, Limit] | _NotPaced | None:
        """The bucket the job's first call books, or `_NOT_PACED` (no pacing, or a kind
        not paced). With `known_only`, None when its key is not cached (it would need a
        read of the database)."""
        kind = REGISTRY.get(entry.kind)
        provider = kind.paced_by if kind is not None else None
        services = self.services
        if services.rate_limiter is None or provider is None:
            return _NOT_PACED
        if known_only:
            return services.known_pace_bucket(provider, entry.installation_id)
        return services.pace_bucket(provider, entry.installation_id) or _NOT_PACED

    def _book_first_call(self, entry: outbox.Claimed, bucket: tuple[str, Limit] | None = None,
                         connection: Connection | None = None) -> Reservation:
        """Book the job's first call in its bucket (`_first_call_bucket`, which must be
        paced), in `connection`'s transaction if given, else in one of its own."""
        if bucket is None:
            found = self._first_call_bucket(entry)
            assert isinstance(found, tuple)  # only paced jobs book
            bucket = found
        limiter = self.services.rate_limiter
        assert limiter is not None
        key, limit = bucket
        if connection is not None and isinstance(limiter, DatabaseRateLimiter):
            permit = limiter.acquire_on(connection, key, limit, max_wait=CLAIM_MAX_WAIT)
        else:
            permit = limiter.acquire(key, limit, max_wait=CLAIM_MAX_WAIT)
        # The bucket's next free slot after this booking (or without one), and from when a
        # booking at claim time can succeed again.
        next_slot = permit.at + limit.interval if permit.granted else (
            self.services.pacing_clock() + permit.wait)
        with self._bucket_full_lock:
            self._bucket_full_until[entry.installation_id] = next_slot - CLAIM_MAX_WAIT
        return Reservation(key=key, permit=permit)

    def _installations_with_full_buckets(self) -> list[int]:
        now = self.services.pacing_clock()
        with self._bucket_full_lock:
            # Forget the past ones: the map stays as small as the portals being held back.
            self._bucket_full_until = {
                i: until for i, until in self._bucket_full_until.items() if until > now}
            return list(self._bucket_full_until)

    def _next_bucket_room(self) -> float:
        """When the first installation held back by its full bucket may be claimed again
        (pacing clock; infinity when none is held back)."""
        now = self.services.pacing_clock()
        with self._bucket_full_lock:
            return min((until for until in self._bucket_full_until.values() if until > now),
                       default=float("inf"))

    def _finish(self, entry: outbox.Claimed, started: datetime, duration_ms: int,
                detail: str | None, steps: list[outbox.CompletionStep]) -> None:
        """Done and logged in one transaction, with the job's last writes (its completion
        steps): one commit per delivery. Core on the engine, not a Session."""
        with self.services.engine.begin() as connection:
            for step in steps:
                step(connection)
            outbox.complete_on(connection, entry_id=entry.id, worker_id=self.worker_id,
                               now=self.services.clock.now())
            outbox.record_attempt_on(connection, outbox_id=entry.id, attempt=entry.attempt,
                                     started_at=started, duration_ms=duration_ms,
                                     outcome="ok", detail=detail)

    def _log_attempt(self, entry: outbox.Claimed, started: datetime, duration_ms: int,
                     outcome: str, status_code: int | None, detail: str | None) -> None:
        with self.services.sessions.begin() as session:
            outbox.record_attempt_on(
                session.connection(), outbox_id=entry.id, attempt=entry.attempt,
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

    async def _after_failure(
        self, entry: outbox.Claimed, kind: JobKind[Any] | None, exc: DeliveryError
    ) -> None:
        """Retry, or fail for good, as the kind's retry policy says; then its give-up action.
        An unknown kind is failed as it is: what it means for its message is unknown here."""
        services = self.services
        now = services.clock.now()
        if isinstance(exc, AuthExpired):
            try:
                await hubspot_access_token(services, entry.installation_id, force_refresh=True)
            except DeliveryError as refresh_error:
                exc = refresh_error
        if isinstance(exc, AuthRevoked):
            await asyncio.to_thread(mark_reauth_required, services, entry.installation_id,
                                    exc.message)
        permanent = isinstance(exc, Permanent | AuthRevoked)
        policy = kind.retry if kind is not None else None

        def write() -> bool:
            """True when the entry failed for good."""
            with services.sessions.begin() as session:
                reason = exc.message
                if not permanent and policy is not None:
                    row = session.get(OutboxEntry, entry.id)
                    since = row.retrying_since if row is not None else None
                    # Rate-limit waits never start the budget's clock (issue 11 item 5).
                    rate_limited = (isinstance(exc, RateLimited)
                                    and not policy.rate_limits_spend_budget)
                    if isinstance(exc, RateLimited):
                        wait = timedelta(seconds=exc.retry_after)
                    elif isinstance(exc, AuthExpired) and since is None:
                        wait = timedelta(0)  # refreshed just now: at once, the first time
                    elif isinstance(exc, Retryable) and exc.retry_in is not None:
                        wait = timedelta(seconds=exc.retry_in)
                    else:
                        wait = policy.backoff(entry.attempt)
                    window = policy.window_opened_at
                    decision = after_temporary_failure(
                        error=exc.message, rate_limited=rate_limited, wait=wait, now=now,
                        retrying_since=since, budget=policy.budget(services.settings),
                        last_customer_message_at=window(session, entry) if window else None,
                    )
                    if isinstance(decision, RetryIn):
                        outbox.retry_later(session, entry_id=entry.id, worker_id=self.worker_id,
                                           now=now, delay=wait, error=exc.message,
                                           retrying_since=since if rate_limited else (
                                               since or now))
                        return False
                    reason = decision.reason
                requeued_later = (isinstance(exc, AuthRevoked) and policy is not None
                                  and policy.requeue_after_reauth)
                outbox.fail(session, entry_id=entry.id, worker_id=self.worker_id, now=now,
                            error=reason,
                            failure_kind=outbox.AUTH_REVOKED if requeued_later else None)
                if kind is not None:
                    kind.give_up(session, entry, reason, now)
                return True

        failed_for_good = await asyncio.to_thread(on_a_live_connection, write)
        log.warning("worker.delivery_failed", kind=entry.kind, outbox_id=entry.id,
                    attempt=entry.attempt, error=exc.message, permanent=failed_for_good)
