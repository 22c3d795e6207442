"""R44: a job our pacing holds back gives its slot back and its entry returns when the
bucket has room; a reply held back that way was certainly not sent."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import PUBLISH_INBOUND
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import DeliveryAttempt, Installation, OutboxEntry
from whatsapp_helpdesk.db.rate_buckets import DatabaseRateLimiter
from whatsapp_helpdesk.jobs import JobPayload
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.pacing import Limit, Paced
from whatsapp_helpdesk.replies.reply import aircall_may_have_sent
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import Worker


def test_R44_a_paced_job_is_put_back_until_the_bucket_has_room(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                       _env_file=None))
    upgrade(services.engine)

    async def paced(_services: Any, _entry: outbox.Claimed, _payload: Any) -> str:
        raise Paced("HubSpot calls are paced", retry_after=7.0)

    monkeypatch.setitem(REGISTRY, "paced", JobKind("paced", JobPayload, paced))
    now = services.clock.now()
    with services.sessions.begin() as session:
        session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="",
                                 created_at=now, updated_at=now))
        session.flush()
        outbox.enqueue(session, installation_id=1, kind="paced", now=now)

    assert asyncio.run(Worker(services, concurrency=1).work_once())
    with services.sessions() as session:
        entry = session.query(OutboxEntry).one()
        attempt = session.query(DeliveryAttempt).one()
    services.engine.dispose()
    assert entry.state == outbox.PENDING and entry.locked_until is None
    assert now + timedelta(seconds=6.5) < entry.available_at < now + timedelta(seconds=9)
    assert (attempt.outcome, attempt.http_status) == ("paced", None)


def test_R44_a_reply_our_pacing_held_back_was_not_sent() -> None:
    assert not aircall_may_have_sent(Paced("Aircall calls are paced", retry_after=3.0))


class ManualClock:
    """The pacing's UNIX time, moved only by the test and by the worker's waits."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_R44_a_saturated_portal_does_not_delay_another_portals_messages(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Portal 111's bucket is booked 0.9 s ahead (other workers keep it saturated), portal
    222's is free. A worker with one slot must not sleep on 111's bucket while 222 has
    work: 222's messages go out at once, one bucket interval apart, and 111's when its
    bucket has room, none of them claimed twice."""
    services = build_services(Settings(database_url=database_url, _env_file=None))
    upgrade(services.engine)
    clock = ManualClock()
    limiter = DatabaseRateLimiter(services.engine, clock=clock)
    services.rate_limiter, services.pacing_clock, services.pacing_sleep = (
        limiter, clock, clock.sleep)
    calls: dict[str, list[float]] = {"111": [], "222": []}

    def hubspot(request: httpx.Request) -> httpx.Response:
        calls[request.headers["authorization"].removeprefix("Bearer token-")].append(clock.now)
        return httpx.Response(200, json={"results": []})

    services._http = httpx.AsyncClient(transport=httpx.MockTransport(hubspot))

    async def publish(services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        portal = str(entry.payload["portal"])
        await services.hubspot_portal(f"token-{portal}", installation_id=entry.installation_id
                                      ).list_inboxes()
        return "published"

    monkeypatch.setitem(REGISTRY, PUBLISH_INBOUND,
                        JobKind(PUBLISH_INBOUND, JobPayload, publish, paced_by="hubspot"))
    now = services.clock.now()
    with services.sessions.begin() as session:
        for installation, portal in ((1, "111"), (2, "222")):
            session.add(Installation(id=installation, hubspot_portal_id=portal,
                                     hubspot_scopes="", aircall_scopes="",
                                     created_at=now, updated_at=now))
            session.flush()
            for n in range(5):
                outbox.enqueue(session, installation_id=installation, kind=PUBLISH_INBOUND,
                               now=now, payload={"portal": portal},
                               ordering_key=f"conversation:{portal}:{n}")
    start = clock.now
    limiter.hold_off("hubspot:111", 0.9)
    worker = Worker(services, concurrency=1)

    async def drain() -> None:
        for _ in range(200):
            if not await worker.work_once():
                if sum(map(len, calls.values())) == 10:
                    return
                clock.now += 0.05  # nothing claimable: time passes
        raise AssertionError(f"not drained: {calls}")

    try:
        asyncio.run(drain())
        with services.sessions() as session:
            attempts = [e.attempts for e in session.query(OutboxEntry)]
            states = {e.state for e in session.query(OutboxEntry)}
    finally:
        asyncio.run(services.aclose())
        services.engine.dispose()
    interval = Limit(110, 10).interval
    assert [round(t - start, 6) for t in calls["222"]] == [
        round(n * interval, 6) for n in range(5)]
    assert len(calls["111"]) == 5 and min(calls["111"]) >= start + 0.9
    # Each entry worked once; one given back for its full bucket did not count an attempt.
    assert states == {outbox.DONE} and attempts == [1] * 10
    # Each publication booked one slot, at claim time: the client used it, did not book again.
    assert limiter.acquire("hubspot:222", Limit(110, 10), max_wait=10.0).at == pytest.approx(
        start + 5 * interval)


def test_R44_the_slot_booked_at_claim_time_is_taken_without_a_thread_hop(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's first call takes the slot its claim booked on the event loop (its bucket's
    key is known by then): the booking's thread hop was one per publication (issue 17
    item 3). A second call of the same job books its own slot, in a thread."""
    from whatsapp_helpdesk.pacing import Pacer

    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                       _env_file=None))
    upgrade(services.engine)
    clock = ManualClock()
    limiter = DatabaseRateLimiter(services.engine, clock=clock)
    services.rate_limiter, services.pacing_clock, services.pacing_sleep = (
        limiter, clock, clock.sleep)
    services._http = httpx.AsyncClient(transport=httpx.MockTransport(
        lambda _request: httpx.Response(200, json={"results": []})))
    bookings_in_a_thread: list[int] = []
    acquire = Pacer._acquire

    def counted(pacer: Pacer) -> Any:
        bookings_in_a_thread.append(1)
        return acquire(pacer)

    monkeypatch.setattr(Pacer, "_acquire", counted)
    after_first_call: list[int] = []

    async def publish(services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        client = services.hubspot_portal("token", installation_id=entry.installation_id)
        await client.list_inboxes()
        after_first_call.append(len(bookings_in_a_thread))
        await client.list_inboxes()
        return "published"

    _portal_with_paced_entries(services, monkeypatch, publish, portal="333", keys=[None])
    start = clock.now
    try:
        assert asyncio.run(Worker(services, concurrency=1).work_once())
    finally:
        asyncio.run(services.aclose())
    interval = Limit(110, 10).interval
    assert after_first_call == [0] and bookings_in_a_thread == [1]
    # Two slots booked in all: the claim's, used by the first call, and the second call's.
    assert limiter.acquire("hubspot:333", Limit(110, 10), max_wait=10.0).at == pytest.approx(
        start + 2 * interval)
    services.engine.dispose()


@pytest.mark.both_databases
def test_R44_a_claim_books_its_slot_in_its_own_transaction_once_the_key_is_known(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the bucket's key is cached, the claim and its first call's slot are one
    transaction (issue 17 item 3: the booking was a transaction of its own per job); a full
    bucket rolls the claim back with it: the entry is as if never claimed."""
    from sqlalchemy import event

    services = build_services(Settings(database_url=database_url, _env_file=None))
    upgrade(services.engine)
    clock = ManualClock()
    limiter = DatabaseRateLimiter(services.engine, clock=clock)
    services.rate_limiter, services.pacing_clock, services.pacing_sleep = (
        limiter, clock, clock.sleep)

    async def publish(_services: Any, _entry: outbox.Claimed, _payload: Any) -> str:
        return "published"

    _portal_with_paced_entries(services, monkeypatch, publish, portal="444",
                               keys=[f"conversation:{n}" for n in range(3)])
    worker = Worker(services, concurrency=1)
    transactions: list[int] = []

    def count(_connection: Any) -> None:
        transactions.append(1)

    try:
        assert asyncio.run(worker.work_once())  # the first claim learns the bucket's key
        event.listen(services.engine, "begin", count)
        try:
            claimed = worker._claim(after_idle=False)
        finally:
            event.remove(services.engine, "begin", count)
        assert isinstance(claimed, tuple)
        entry, reservation = claimed
        assert reservation is not None and reservation.permit.granted
        assert reservation.key == "hubspot:444" and transactions == [1]

        limiter.hold_off("hubspot:444", 60.0)  # full: no slot within CLAIM_MAX_WAIT
        assert worker._claim(after_idle=False) is None
        with services.sessions() as session:
            left = [e for e in session.query(OutboxEntry).order_by(OutboxEntry.id)
                    if e.id not in (entry.id,) and e.state == outbox.PENDING]
        assert [(e.attempts, e.locked_by, e.locked_until) for e in left] == [(0, None, None)]
    finally:
        asyncio.run(services.aclose())
        services.engine.dispose()


def _portal_with_paced_entries(services: Any, monkeypatch: pytest.MonkeyPatch, handler: Any,
                               *, portal: str, keys: list[str | None]) -> None:
    """Installation 1 on HubSpot portal `portal`, `handler` as the publication job (paced by
    HubSpot's bucket), and one pending entry per ordering key."""
    monkeypatch.setitem(REGISTRY, PUBLISH_INBOUND,
                        JobKind(PUBLISH_INBOUND, JobPayload, handler, paced_by="hubspot"))
    now = services.clock.now()
    with services.sessions.begin() as session:
        session.add(Installation(id=1, hubspot_portal_id=portal, hubspot_scopes="",
                                 aircall_scopes="", created_at=now, updated_at=now))
        session.flush()
        for key in keys:
            outbox.enqueue(session, installation_id=1, kind=PUBLISH_INBOUND, now=now,
                           ordering_key=key)
