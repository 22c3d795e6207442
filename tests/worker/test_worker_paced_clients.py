"""R44: the HubSpot and Aircall clients consult their pacer before every call, and a 429
that still comes back makes every worker hold off (the bucket, shared in the database,
is drained for as long as the provider asks). Both databases (`migrated_engine`)."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest
from sqlalchemy import Engine

from whatsapp_helpdesk.aircall import AircallClient, BearerToken
from whatsapp_helpdesk.db.rate_buckets import DatabaseRateLimiter
from whatsapp_helpdesk.errors import RateLimited
from whatsapp_helpdesk.hubspot import HubSpotPortalClient
from whatsapp_helpdesk.pacing import Limit, Paced, Pacer, Permit

# On SQLite and PostgreSQL (tests/conftest.py): the rate buckets are rows every worker shares.
pytestmark = pytest.mark.both_databases

LIMIT = Limit(requests=110, window_seconds=10)


def _limiter(engine: Engine) -> DatabaseRateLimiter:
    return DatabaseRateLimiter(engine)


def _answer(status: int, headers: dict[str, str] | None = None,
            seen: list[httpx.Request] | None = None) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        body = {"results": []} if status == 200 else {"status": "error", "message": "limit"}
        return httpx.Response(status, json=body, headers=headers or {})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def _hubspot(http: httpx.AsyncClient, limiter: DatabaseRateLimiter) -> HubSpotPortalClient:
    return HubSpotPortalClient("token", http=http, api_base="https://api.test",
                               pacer=Pacer(limiter, lambda: "hubspot:1", LIMIT,
                                           service="HubSpot"))


def test_R44_a_hubspot_429_holds_every_worker_off_for_the_window(
    migrated_engine: Engine,
) -> None:
    limiter = _limiter(migrated_engine)
    http = _answer(429, {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                         "X-HubSpot-RateLimit-Remaining": "0"})
    with pytest.raises(RateLimited) as raised:
        asyncio.run(_hubspot(http, limiter).list_inboxes())
    assert not isinstance(raised.value, Paced) and raised.value.retry_after == 10.0
    # Another worker's next booking for this portal waits out HubSpot's window.
    after = limiter.acquire("hubspot:1", LIMIT, max_wait=1.0)
    assert not after.granted and 9.0 < after.wait <= 10.0


def test_R44_a_held_off_portal_is_not_called_and_the_job_is_paced(
    migrated_engine: Engine,
) -> None:
    limiter = _limiter(migrated_engine)
    limiter.hold_off("hubspot:1", 30.0)
    seen: list[httpx.Request] = []
    with pytest.raises(Paced) as raised:
        asyncio.run(_hubspot(_answer(200, seen=seen), limiter).list_inboxes())
    assert seen == []
    assert 29.0 < raised.value.retry_after <= 30.0


def test_R44_calls_within_the_budget_go_out_one_interval_apart(
    migrated_engine: Engine,
) -> None:
    limiter = _RecordingLimiter(migrated_engine)
    sent_at: list[float] = []
    fast = Limit(requests=20, window_seconds=1)

    def handle(request: httpx.Request) -> httpx.Response:
        sent_at.append(time.time())  # the limiter's clock
        return httpx.Response(200, json={"results": []})

    client = HubSpotPortalClient(
        "token", http=httpx.AsyncClient(transport=httpx.MockTransport(handle)),
        api_base="https://api.test",
        pacer=Pacer(limiter, lambda: "hubspot:2", fast, service="HubSpot"))

    async def three_at_once() -> None:
        await asyncio.gather(*(client.list_inboxes() for _ in range(3)))

    # A bucket with calls already booked for the next 0.3 s: the three are booked ahead of
    # their slots, one interval apart, and none leaves before its slot. A call may leave
    # late (a loaded machine), which only ever lowers the rate: so the test compares each
    # call with its slot, not the calls' spacing with each other (that flaked under load).
    limiter.hold_off("hubspot:2", 0.3)

    asyncio.run(three_at_once())
    slots = sorted(p.at for p in limiter.permits)
    assert len(slots) == len(sent_at) == 3
    assert all(p.granted for p in limiter.permits)
    assert [round(b - a, 6) for a, b in itertools.pairwise(slots)] == [
        round(fast.interval, 6)] * 2
    # The k-th call to leave left no earlier than the k-th slot (1 ms for float rounding).
    assert all(sent >= slot - 0.001 for sent, slot in zip(sorted(sent_at), slots, strict=True))


class _RecordingLimiter(DatabaseRateLimiter):
    """The database limiter, keeping each permit it gave."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.permits: list[Permit] = []

    def acquire(self, key: str, limit: Limit, *, max_wait: float) -> Permit:
        permit = super().acquire(key, limit, max_wait=max_wait)
        self.permits.append(permit)
        return permit


def test_R44_an_aircall_429_holds_the_company_off_until_its_reset(
    migrated_engine: Engine,
) -> None:
    limiter = _limiter(migrated_engine)
    reset = int(time.time()) + 40
    http = _answer(429, {"X-AircallApi-Reset": str(reset), "X-AircallApi-Remaining": "0"})
    company = Limit(requests=60, window_seconds=60)
    client = AircallClient(BearerToken("t"), http=http, api_base="https://aircall.test",
                           pacer=Pacer(limiter, lambda: "aircall:9", company,
                                       service="Aircall"))
    with pytest.raises(RateLimited):
        asyncio.run(client.ping())
    after = limiter.acquire("aircall:9", company, max_wait=1.0)
    assert not after.granted and 30.0 < after.wait <= 41.0
    seen: list[httpx.Request] = []
    paced = AircallClient(BearerToken("t"), http=_answer(200, seen=seen),
                          api_base="https://aircall.test",
                          pacer=Pacer(limiter, lambda: "aircall:9", company, service="Aircall"))
    with pytest.raises(Paced):
        asyncio.run(paced.ping())
    assert seen == []
