"""Client-side pacing (R44): stay under HubSpot's and Aircall's rate limits on purpose.

The port is `RateLimiter`: `acquire(key, limit)` books the next free slot of a bucket that
every worker process shares (db/rate_buckets.py keeps it in the database), `hold_off` makes
the whole bucket wait after a 429 came back anyway. The HTTP clients only see a `Pacer`
(one key, one limit); they never import the database.

The bucket is a GCRA ("virtual scheduling") with no burst: each key keeps the moment its
next call may start, and every call books one `Limit.interval` after the previous one. Both
providers count in windows (HubSpot: a rolling 10 s window; Aircall: a minute), and a
rolling window of W seconds sees at most W / interval + 1 calls of such an even stream, so
an interval of W / (requests × HEADROOM), and never less than (W + MIN_JITTER_MARGIN) /
requests, keeps a margin for network jitter (a call that leaves late only lowers the rate;
one that reaches the provider out of step with the previous window is what could spill
over). With HubSpot's 110 / 10 s the first bound applies: 106.7 calls per 10 s.

The worker books a job's first call when it claims the entry (worker/runner.py), only if
the slot is at most `CLAIM_MAX_WAIT` away; otherwise it puts the entry back untouched and
claims another installation's work, so a worker slot never sleeps on one portal's full
bucket while another portal's work is claimable. The booking travels with the job
(`reserved_for_this_job`) and the client's `Pacer` uses it for that first call instead of
booking again. Later calls of the job book as they go: a slot near enough
(`Pacer.max_wait`) is waited for in the worker's slot; a farther one is not booked, and
the job ends with `Paced`: the worker puts the entry back until then. Per-conversation
order is kept because the claim holds later entries of a conversation back while an
earlier one is pending.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from whatsapp_helpdesk.errors import RateLimited

# Share of the provider's limit the bucket uses: the rest is margin for jitter between our
# clock and the moment the provider counts a call (see the module docstring)…
HEADROOM = 0.97
# …and at least this much, in seconds, whatever the window: a loaded machine delays a call
# by tens of milliseconds, which 3 % of a short window would not absorb.
MIN_JITTER_MARGIN = 0.25


@dataclass(frozen=True)
class Limit:
    requests: int  # calls the provider allows in one window…
    window_seconds: float  # …of this many seconds (HubSpot: a rolling 10 s; Aircall: 60 s)

    @property
    def interval(self) -> float:
        """Seconds between two calls of an even stream: at most HEADROOM of the limit, and
        the limit's worth of calls spread over the window plus MIN_JITTER_MARGIN."""
        return max(self.window_seconds / (self.requests * HEADROOM),
                   (self.window_seconds + MIN_JITTER_MARGIN) / self.requests)


@dataclass(frozen=True)
class Run(Limit):
    """`slots` consecutive slots of a limit, booked as one (an opening burst)."""

    slots: int = 1

    @property
    def interval(self) -> float:
        return Limit(self.requests, self.window_seconds).interval * self.slots


@dataclass(frozen=True)
class OpeningBurst:
    """A job's first `calls` calls start at once, without waiting for their slots, when the
    bucket has been idle long enough: the install's first read of an Aircall company's
    numbers, which the admin is waiting for (issue 17 item 7).

    The burst books its slots together, and only if the bucket's last slot lies at least
    that many intervals in the past: those slots went unused, so the window holding the
    burst sees no more of our calls than an even stream would (W / interval + 1, as the
    module docstring says), and every later call waits for its slot after the burst's. At
    most a window's worth of slots; when not granted, the calls are paced as usual. (The
    install's own few calls just before, made before the company and so its bucket are
    known, are not paced, with or without a burst.)"""

    calls: int


@dataclass(frozen=True)
class Permit:
    """`granted`: a slot is booked, start the call after `wait` seconds, at `at` (UNIX time).
    Otherwise nothing is booked and the next slot is `wait` seconds away."""

    wait: float
    granted: bool
    at: float = 0.0


class RateLimiter(Protocol):
    def acquire(self, key: str, limit: Limit, *, max_wait: float) -> Permit:
        """Book the next slot of `key` if it is at most `max_wait` seconds away: the slot
        starts at max(the bucket's next slot, now), and the next one an interval later."""
        ...

    def hold_off(self, key: str, seconds: float) -> None:
        """No slot of `key` before `seconds` from now (the provider said 429)."""
        ...


class Paced(RateLimited):
    """Our own pacing, not the provider, says "later": no call was made."""

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message, retry_after=retry_after, status_code=None)


# A slot this near is waited for in the worker's slot; a farther one gives the slot back.
DEFAULT_MAX_WAIT = 1.0
# The farthest slot booked when the worker claims an entry. Long enough that a busy
# portal's bucket keeps a call or two booked ahead (HubSpot's interval is ~0.094 s), so it
# never runs dry while the worker's slots finish other work; short, because a slot sleeps
# until the booked moment, and a longer sleep is time another portal's work waits for.
CLAIM_MAX_WAIT = 0.25


@dataclass
class Reservation:
    """A slot of `key` booked when the job was claimed, for the job's first call to it."""

    key: str
    permit: Permit
    used: bool = False


_RESERVED: ContextVar[Reservation | None] = ContextVar("pacing_reservation", default=None)


@contextmanager
def reserved_for_this_job(reservation: Reservation | None) -> Iterator[None]:
    """Within the block (one worker job's task), the first call to `reservation.key` takes
    the slot booked at claim time instead of booking another one."""
    token = _RESERVED.set(reservation)
    try:
        yield
    finally:
        _RESERVED.reset(token)


class Pacer:
    """One provider account's bucket, as an HTTP client uses it before each call.

    `key` is resolved lazily (it may need the database, e.g. an installation's portal id),
    inside the same worker thread as the booking, so the event loop never waits on it."""

    def __init__(self, limiter: RateLimiter, key: Callable[[], str], limit: Limit, *,
                 service: str, max_wait: float = DEFAULT_MAX_WAIT,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 known_key: Callable[[], str | None] | None = None,
                 opening_burst: OpeningBurst | None = None):
        self._limiter = limiter
        self._key = key
        # The key when it is known without the database (a cache), else None: then the slot
        # booked at claim time is taken on the event loop, without a thread hop (issue 17
        # item 3: one per publication).
        self._known_key = known_key
        self._limit = limit
        self._service = service
        # At least one interval: a job's second call to the same account comes one interval
        # after its first. With Aircall's 60 / min (an interval over 1 s) a shorter wait was
        # never granted, and a job of two calls was put back, booked its first call again,
        # and never ran (seen with the number webhooks' sync_number job).
        self._max_wait = max(max_wait, limit.interval + DEFAULT_MAX_WAIT)
        # The limiter's clock (UNIX seconds) and a way to wait: a test's manual clock.
        self._clock = clock
        self._sleep = sleep
        self._opening_burst = opening_burst  # tried once, before the first call
        self._burst_calls_left = 0

    async def before_call(self, operation: str) -> None:
        if self._opening_burst is not None:
            burst, self._opening_burst = self._opening_burst, None
            self._burst_calls_left = await asyncio.to_thread(self._book_burst, burst)
        if self._burst_calls_left:
            self._burst_calls_left -= 1
            return
        await self._wait_for_slot(operation)

    async def _wait_for_slot(self, operation: str) -> None:
        permit = self._reserved_permit()
        if permit is None:
            permit = await asyncio.to_thread(self._acquire)
        if not permit.granted:
            raise Paced(
                f"{self._service} calls are paced under its rate limit; '{operation}' "
                f"waits its turn ({permit.wait:.1f} s).",
                retry_after=permit.wait,
            )
        # Until the booked moment itself, not `wait` after the booking returned: a booking
        # that took longer (a lock wait) must not push its call into the next one's slot.
        delay = min(permit.wait, permit.at - self._clock())
        if delay > 0:
            await self._sleep(delay)

    async def after_rate_limited(self, retry_after: float) -> None:
        await asyncio.to_thread(lambda: self._limiter.hold_off(self._key(), retry_after))

    def _reserved_permit(self) -> Permit | None:
        """The slot booked at claim time, when the key is known without the database."""
        reserved = _RESERVED.get()
        if reserved is None or reserved.used or self._known_key is None:
            return None
        if self._known_key() != reserved.key:
            return None
        reserved.used = True
        return reserved.permit

    def _acquire(self) -> Permit:
        key = self._key()
        # Runs in a thread that got a copy of the job's context: the same Reservation.
        reserved = _RESERVED.get()
        if reserved is not None and not reserved.used and reserved.key == key:
            reserved.used = True
            return reserved.permit
        return self._limiter.acquire(key, self._limit, max_wait=self._max_wait)

    def _book_burst(self, burst: OpeningBurst) -> int:
        """The calls of `burst` that may start at once: all of them (at most a window's
        worth) when its slots are booked, none when the bucket was not idle long enough."""
        limit = self._limit
        slots = min(burst.calls, int(limit.window_seconds / limit.interval))
        if slots < 1:
            return 0
        run = Run(limit.requests, limit.window_seconds, slots=slots)
        # A negative `max_wait`: the bucket's next slot must lie that far in the past, i.e.
        # the slots the burst takes went unused.
        permit = self._limiter.acquire(self._key(), run, max_wait=-run.interval)
        return slots if permit.granted else 0


class SharePacer(Pacer):
    """Calls that may use only `share` of an account's bucket (issue 17 item 7): a long
    background job, such as reading 5,000 numbers from Aircall, must not starve the replies
    that share the company's budget.

    Each call first books a slot of the job's own bucket (`<key>:share`, the limit times
    `share`), waits for it, then books the account's bucket as any call does. The account's
    bucket thus sees the job at most at `share` of its rate, and the slots in between stay
    free for others; with GCRA a reply waits at most one interval behind the job."""

    def __init__(self, limiter: RateLimiter, key: Callable[[], str], limit: Limit, *,
                 service: str, share: float, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 opening_burst: OpeningBurst | None = None):
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        own = Limit(max(1, int(limit.requests * share)), limit.window_seconds)
        # Only this job books its own bucket, so its next slot is at most one of its
        # intervals away (a Pacer always waits that long): waited for in the worker's slot,
        # never given back; the account's bucket is waited for as long.
        super().__init__(limiter, key, limit, service=service,
                         max_wait=own.interval + DEFAULT_MAX_WAIT, clock=clock, sleep=sleep,
                         opening_burst=opening_burst)
        self._own = Pacer(limiter, lambda: f"{key()}:share", own, service=service,
                          clock=clock, sleep=sleep)

    async def _wait_for_slot(self, operation: str) -> None:
        await self._own.before_call(operation)
        await super()._wait_for_slot(operation)
