"""Issue 11 item 5 (R44) through the worker and the outbox, on both databases: 429s do not
spend the retry budget; the budget is time (DELIVERY_RETRY_HOURS); a final failure has one
clear reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Installation, OutboxEntry
from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.errors import RateLimited, Retryable
from whatsapp_helpdesk.jobs import JobPayload
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import Worker

ERROR_503 = "HubSpot failed to publish a message (503); will retry."


def _run(database_url: str, monkeypatch: pytest.MonkeyPatch,
         answers: Callable[[int, ManualClock], str | None], *, hours: float = 24,
         max_steps: int = 400) -> OutboxEntry:
    """One entry of a job that answers call n with `answers(n)`: None = success, "429",
    "503". The clock jumps to each retry's due time."""
    clock = ManualClock()
    # No client pacing: it books real-time slots, and this world jumps a manual clock.
    services = build_services(Settings(database_url=database_url, delivery_retry_hours=hours,
                                       _env_file=None, client_pacing=False), clock=clock)  # type: ignore[call-arg]
    upgrade(services.engine)
    calls = 0

    async def job(_services: Any, _entry: outbox.Claimed, _payload: Any) -> str:
        nonlocal calls
        calls += 1
        answer = answers(calls, clock)
        if answer == "429":
            raise RateLimited("HubSpot rate limit reached while trying to publish a message; "
                              "will retry.", retry_after=10)
        if answer == "503":
            raise Retryable(ERROR_503, status_code=503)
        return "done"

    monkeypatch.setitem(REGISTRY, "budgeted", JobKind("budgeted", JobPayload, job))
    now = clock.now()
    with services.sessions.begin() as session:
        session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="", created_at=now,
                                 updated_at=now))
        session.flush()
        entry = outbox.enqueue(session, installation_id=1, kind="budgeted", now=now)
        session.flush()
        entry_id = entry.id

    async def main() -> None:
        worker = Worker(services, concurrency=1)
        try:
            for _ in range(max_steps):
                if not await worker.work_once():
                    with services.sessions() as session:
                        row = session.get(OutboxEntry, entry_id)
                        assert row is not None
                        if row.state != outbox.PENDING:
                            return
                        clock.set(row.available_at)
        finally:
            await services.aclose()

    try:
        asyncio.run(main())
        with services.sessions() as session:
            row = session.get(OutboxEntry, entry_id)
            assert row is not None
            session.expunge(row)
            return row
    finally:
        services.engine.dispose()


def test_R44_fifteen_429s_then_a_503_do_not_fail_the_message(database_url, monkeypatch) -> None:
    """The finding: 15 answers 429 then one 503 failed a message for good."""
    entry = _run(database_url, monkeypatch,
                 lambda n, _clock: "429" if n <= 15 else "503" if n == 16 else None)
    assert entry.state == outbox.DONE and entry.attempts == 17
    assert entry.retrying_since is None


def test_R44_temporary_errors_fail_after_the_stated_time_with_one_clear_reason(
    database_url, monkeypatch
) -> None:
    entry = _run(database_url, monkeypatch, lambda _n, _clock: "503", hours=0.5)
    assert entry.state == outbox.FAILED
    assert entry.last_error == ("HubSpot failed to publish a message (503). "
                                "Gave up after retrying for 30 minutes.")
    assert entry.finished_at is not None and entry.retrying_since is not None
    assert entry.finished_at - entry.retrying_since <= timedelta(minutes=30)
    assert entry.finished_at - entry.retrying_since >= timedelta(minutes=25)  # not earlier


def test_R44_rate_limited_for_longer_than_the_budget_still_delivers(
    database_url, monkeypatch
) -> None:
    entry = _run(database_url, monkeypatch,
                 lambda n, _clock: "429" if n <= 300 else None, hours=0.5, max_steps=1000)
    assert entry.state == outbox.DONE and entry.attempts == 301  # 300 × 10 s > 30 min


def test_R24_R44_a_reply_whose_retry_would_come_after_the_window_fails_with_that_reason(
    database_url, monkeypatch
) -> None:
    """Aircall asks for a minute's wait, but the customer's window closes in 30 s: the reply
    fails now, with the window's reason, instead of waiting to be refused."""
    from whatsapp_helpdesk.db.job_kinds import SEND_REPLY
    from whatsapp_helpdesk.db.models import Conversation, Message, Number
    from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE

    clock = ManualClock()
    services = build_services(Settings(database_url=database_url, _env_file=None,
                                       client_pacing=False), clock=clock)  # type: ignore[call-arg]
    upgrade(services.engine)

    async def rate_limited_send(_services: Any, _entry: outbox.Claimed, _payload: Any) -> str:
        raise RateLimited("Aircall rate limit reached while trying to send a message; "
                          "will retry.", retry_after=60)

    monkeypatch.setitem(REGISTRY, SEND_REPLY,
                        replace(REGISTRY[SEND_REPLY], handler=rate_limited_send))
    now = clock.now()
    with services.sessions.begin() as session:
        session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="", created_at=now,
                                 updated_at=now))
        session.flush()
        session.add(Number(id=1, installation_id=1, aircall_number_id="1001"))
        session.flush()
        session.add(Conversation(id=1, installation_id=1, number_id=1,
                                 customer_e164="+33612345678", created_at=now,
                                 last_inbound_at=now - timedelta(hours=24, seconds=-30)))
        session.flush()
        reply = Message(installation_id=1, conversation_id=1, direction="outbound",
                        text="On it", sent_at=now, stored_at=now, status="pending")
        session.add(reply)
        session.flush()
        entry = outbox.enqueue(session, installation_id=1, kind=SEND_REPLY, now=now,
                               message_id=reply.id, ordering_key="replies:1")
        session.flush()
        entry_id, reply_id = entry.id, reply.id

    async def main() -> None:
        try:
            assert await Worker(services, concurrency=1).work_once()
        finally:
            await services.aclose()

    try:
        asyncio.run(main())
        with services.sessions() as session:
            row = session.get(OutboxEntry, entry_id)
            message = session.get(Message, reply_id)
            assert row is not None and message is not None
            assert (row.state, row.last_error) == (outbox.FAILED, WINDOW_CLOSED_MESSAGE)
            assert (message.status, message.failure_reason) == ("failed", WINDOW_CLOSED_MESSAGE)
    finally:
        services.engine.dispose()
