"""Issue 17 item 7: the install's first read of an Aircall company's numbers opens with a
burst (pacing.OpeningBurst) when the company's bucket was idle long enough. Its calls go at
once, their slots booked together, so that what follows waits behind them and no window sees
more of our calls than an even stream; a bucket in use gets no burst. Both databases: the
buckets are rows every worker shares. A manual clock: the calls' times are the pacer's."""

from __future__ import annotations

import asyncio

import pytest
from harness.aircall_budget import most_in_any_window
from sqlalchemy import Engine

from whatsapp_helpdesk.db.rate_buckets import DatabaseRateLimiter
from whatsapp_helpdesk.pacing import Limit, OpeningBurst, Paced, Pacer

pytestmark = pytest.mark.both_databases

AIRCALL = Limit(requests=60, window_seconds=60)  # Aircall's 60 / min
KEY = "aircall:1"
START = 1_000_000.0


class ManualClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _pacer(limiter: DatabaseRateLimiter, clock: ManualClock, *,
           burst: OpeningBurst | None = None, max_wait: float = 1.0) -> Pacer:
    return Pacer(limiter, lambda: KEY, AIRCALL, service="Aircall", clock=clock,
                 sleep=clock.sleep, max_wait=max_wait, opening_burst=burst)


def _call_times(pacer: Pacer, clock: ManualClock, count: int) -> list[float]:
    async def calls() -> list[float]:
        times = []
        for _ in range(count):
            await pacer.before_call("read a number")
            times.append(clock.now)
        return times

    return asyncio.run(calls())


def test_on_an_idle_bucket_the_burst_goes_at_once_and_what_follows_waits_behind_it(
    migrated_engine: Engine,
) -> None:
    clock = ManualClock()
    limiter = DatabaseRateLimiter(migrated_engine, clock=clock)
    # A call long ago: the bucket has been idle since.
    limiter.acquire(KEY, AIRCALL, max_wait=1.0)
    clock.now += 600

    burst = _call_times(_pacer(limiter, clock, burst=OpeningBurst(calls=11)), clock, 11)

    assert burst == [START + 600] * 11
    # A reply of the same company books its slot after the burst's eleven.
    reply = limiter.acquire(KEY, AIRCALL, max_wait=0.0)
    assert not reply.granted
    assert reply.wait == pytest.approx(11 * AIRCALL.interval)
    # The paced calls after it, and the burst, never exceed an even stream in any window.
    stream = _call_times(_pacer(limiter, clock, max_wait=3_600), clock, 120)
    assert stream[0] == pytest.approx(burst[0] + 11 * AIRCALL.interval)
    even_stream = int(AIRCALL.window_seconds / AIRCALL.interval) + 1
    assert most_in_any_window(burst + stream, AIRCALL.window_seconds) <= even_stream


def test_a_bucket_in_use_gets_no_burst(migrated_engine: Engine) -> None:
    clock = ManualClock()
    limiter = DatabaseRateLimiter(migrated_engine, clock=clock)
    limiter.acquire(KEY, AIRCALL, max_wait=1.0)
    # Five seconds later: eleven slots (11.3 s) have not gone unused since.
    clock.now += 5

    pacer = _pacer(limiter, clock, burst=OpeningBurst(calls=11))
    first, second = _call_times(pacer, clock, 2)

    assert first == START + 5
    assert second == pytest.approx(first + AIRCALL.interval)


def test_a_burst_takes_at_most_a_window(migrated_engine: Engine) -> None:
    clock = ManualClock()
    limiter = DatabaseRateLimiter(migrated_engine, clock=clock)  # a new bucket: idle
    pacer = _pacer(limiter, clock, burst=OpeningBurst(calls=10_001))
    per_window = int(AIRCALL.window_seconds / AIRCALL.interval)

    assert _call_times(pacer, clock, per_window) == [START] * per_window
    # The next call's slot is a window away: the worker puts the job back until then.
    with pytest.raises(Paced) as paced:
        asyncio.run(pacer.before_call("read a number"))
    assert paced.value.retry_after == pytest.approx(per_window * AIRCALL.interval)
