"""R44 end to end: a burst to one portal, worked by two workers sharing the pacing bucket
through the database, stays under the sandbox HubSpot's real rolling-window limit.

The window is shortened on both sides (sandbox `rate_limit_interval_ms`, our
HUBSPOT_RATE_WINDOW_SECONDS) so that several windows go by in seconds; the limit is
enforced by the sandbox exactly as with HubSpot's 10 s."""

from __future__ import annotations

import asyncio
import time

import pytest
from harness.stack import PORTAL, Stack
from sqlalchemy import func, select

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import DeliveryAttempt, OutboxEntry, RateBucket
from whatsapp_helpdesk.worker.runner import Worker

# On SQLite and PostgreSQL (tests/conftest.py): the rate buckets are rows every worker shares.
# The pacing is the subject: the settings' Aircall bucket, not the stack's fast default.
pytestmark = [pytest.mark.both_databases, pytest.mark.paced_aircall]

LIMIT = 20
WINDOW_MS = 2000
MESSAGES = 60  # three windows' worth: without pacing most of them meet a 429 first


def _outcomes(stack: Stack) -> dict[str, int]:
    with stack.services.sessions() as session:
        return dict(session.execute(
            select(DeliveryAttempt.outcome, func.count()).group_by(DeliveryAttempt.outcome)
        ).all())


def _pending(stack: Stack) -> int:
    with stack.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.state == outbox.PENDING)) or 0


def _two_workers_until_drained(stack: Stack, timeout: float) -> None:
    settings = stack.settings.model_copy(update={
        "hubspot_rate_limit": LIMIT, "hubspot_rate_window_seconds": WINDOW_MS / 1000})

    async def main() -> None:
        services = [build_services(settings) for _ in range(2)]
        workers = [Worker(s, concurrency=4, poll_interval=0.05) for s in services]
        running = [asyncio.create_task(w.run()) for w in workers]
        deadline = time.monotonic() + timeout
        try:
            while await asyncio.to_thread(_pending, stack):
                assert time.monotonic() < deadline, "outbox not drained in time"
                await asyncio.sleep(0.1)
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*running)
            for s in services:
                s.engine.dispose()

    asyncio.run(main())


@pytest.mark.slow(seconds=8)
def test_R44_a_burst_to_one_portal_is_paced_under_the_limit_and_all_delivered(
    stack: Stack,
) -> None:
    stack.connect()
    stack.hubspot.post("/_sandbox/config", json={
        "rate_limit_max": LIMIT, "rate_limit_interval_ms": WINDOW_MS}).raise_for_status()
    for n in range(MESSAGES):
        stack.customer_says(f"burst {n}", phone=f"+336123450{n % 6:02d}")
    stack.wait_deliveries(timeout=30)

    _two_workers_until_drained(stack, timeout=60)

    texts = sorted(m["text"] for t in stack.tickets() for m in t["messages"]
                   if m["direction"] == "INCOMING")
    assert texts == sorted(f"burst {n}" for n in range(MESSAGES))
    outcomes = _outcomes(stack)
    # Every call but the rare one whose arrival jitter crossed a window edge went through:
    # on a loaded machine (the suite runs on two xdist workers over two cores) a booked call
    # now and then leaves later than its slot. Pacing off, this burst met 5 or more 429s;
    # the benchmark (bench/pacing.py, docs/performance.md) measures the ceiling itself.
    assert outcomes.get("rate_limited", 0) <= MESSAGES // 20, outcomes
    assert outcomes.get("ok") == MESSAGES, outcomes
    # The calls booked the portal's own bucket, shared by both workers (the Aircall company's
    # bucket holds the install's first read of the numbers).
    with stack.services.sessions() as session:
        keys = session.scalars(select(RateBucket.key)).all()
    assert [k for k in keys if k.startswith("hubspot:")] == [f"hubspot:{PORTAL}"]
