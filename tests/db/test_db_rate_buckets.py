"""R44: the pacing buckets shared through the database (db/rate_buckets.py, pacing.py).

Each test runs on SQLite and PostgreSQL (`migrated_engine`)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Engine

from whatsapp_helpdesk.db.rate_buckets import DatabaseRateLimiter
from whatsapp_helpdesk.pacing import HEADROOM, MIN_JITTER_MARGIN, Limit

PORTAL = "hubspot:4242"


class FakeClock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_R44_a_bucket_books_consecutive_slots_and_holds_off_after_a_429(
    migrated_engine: Engine,
) -> None:
    clock = FakeClock()
    limiter = DatabaseRateLimiter(migrated_engine, clock=clock)
    limit = Limit(requests=10, window_seconds=1)
    waits = [limiter.acquire(PORTAL, limit, max_wait=1.0) for _ in range(3)]
    assert [p.granted for p in waits] == [True, True, True]
    assert [round(p.wait, 6) for p in waits] == [round(i * limit.interval, 6) for i in range(3)]
    # Another portal has its own budget.
    assert limiter.acquire("hubspot:1", limit, max_wait=1.0).wait == 0

    limiter.hold_off(PORTAL, 30.0)
    refused = limiter.acquire(PORTAL, limit, max_wait=1.0)
    assert not refused.granted and refused.wait == 30.0
    clock.now += 30.0
    assert limiter.acquire(PORTAL, limit, max_wait=1.0).granted


def test_R44_two_concurrent_workers_never_book_more_than_the_rate(
    migrated_engine: Engine,
) -> None:
    """Two threads, each with its own connection, book slots of one portal as fast as they
    can: the booked starts are never closer than the bucket's interval, so no rolling
    window holds more than the limit, and the rate is still reached."""
    limit = Limit(requests=40, window_seconds=1.0)
    starts: list[float] = []
    lock = threading.Lock()
    errors: list[BaseException] = []
    run_for = 1.5

    def hammer() -> None:
        read = threading.local()

        def clock() -> float:  # the real time, remembered as the limiter read it
            read.now = time.time()
            return read.now

        limiter = DatabaseRateLimiter(migrated_engine, clock=clock)
        deadline = time.time() + run_for
        try:
            while time.time() < deadline:
                permit = limiter.acquire(PORTAL, limit, max_wait=0.5)
                if permit.granted:
                    with lock:
                        starts.append(read.now + permit.wait)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors

    starts.sort()
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= limit.interval - 1e-6, min(gaps)
    most_in_a_window = max(
        sum(1 for s in starts[i:] if s - start < limit.window_seconds)
        for i, start in enumerate(starts)
    )
    assert most_in_a_window <= limit.requests
    # Bookings reach up to `max_wait` ahead: at least the rate over the run was granted.
    assert len(starts) >= run_for / limit.interval * 0.9


def test_R44_a_short_window_keeps_a_fixed_margin_for_jitter() -> None:
    """The limit's worth of calls spans the window plus at least MIN_JITTER_MARGIN, however
    short the window; HubSpot's own 10 s keeps its 3 % headroom."""
    short = Limit(requests=20, window_seconds=2)
    assert short.requests * short.interval >= 2 + MIN_JITTER_MARGIN
    hubspot = Limit(requests=110, window_seconds=10)
    assert hubspot.interval == pytest.approx(10 / (110 * HEADROOM))
    # An even stream: a rolling 10 s window sees at most 10 / interval + 1 calls, under 110.
    assert 10 / hubspot.interval + 1 <= 110
