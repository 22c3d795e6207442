"""Each job kind's retry policy and give-up action, through the worker and the outbox, on both
databases (issue 13 item 2, R9, R23, R44); and what the worker does with an entry it cannot run:
an unknown kind or a malformed payload fails at once, visibly, logged and counted."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import prometheus_client
import pytest
from sqlalchemy import select
from structlog.testing import capture_logs

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Conversation, Installation, Message, Number, OutboxEntry
from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.errors import AuthRevoked, Permanent, RateLimited, Retryable
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.jobs.registry import REGISTRY
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import Worker

REASON = "HubSpot refused it: boom."


@dataclass
class World:
    services: Services
    clock: ManualClock
    entries: dict[str, int]  # kind → its outbox entry
    messages: dict[str, int]  # kind → the message its entry is for, when it has one


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    """One entry of every registered kind, each in its own conversation order, queued through
    the typed `jobs.enqueue`; a retry budget of 30 minutes."""
    clock = ManualClock()
    services = build_services(
        Settings(database_url=database_url, delivery_retry_hours=0.5, _env_file=None,
                 # Pacing books real-time slots; this world jumps a manual clock (pacing
                 # has its own tests, tests/worker/test_worker_pacing.py).
                 client_pacing=False), clock=clock
    )  # type: ignore[call-arg]
    upgrade(services.engine)
    now = clock.now()
    with services.sessions.begin() as session:
        session.add(
            Installation(id=1, hubspot_scopes="", aircall_scopes="", created_at=now, updated_at=now)
        )
        session.flush()
        session.add(Number(id=1, installation_id=1, aircall_number_id="1001"))
        session.flush()
        session.add(
            Conversation(
                id=1,
                installation_id=1,
                number_id=1,
                customer_e164="+33612345678",
                created_at=now,
                last_inbound_at=now,
            )
        )
        session.flush()

        def message(direction: str, status: str, hubspot_id: str | None = None) -> int:
            row = Message(
                installation_id=1,
                conversation_id=1,
                direction=direction,
                hubspot_message_id=hubspot_id,
                text="Hello",
                sent_at=now,
                stored_at=now,
                status=status,
            )
            session.add(row)
            session.flush()
            return row.id

        messages = {
            "publish_inbound": message("inbound", "pending"),
            "fetch_media": message("inbound", "pending"),
            "send_reply": message("outbound", "pending", "hs-reply"),
            "report_status": message("outbound", "sent", "hs-sent"),
        }
        typed: dict[str, payloads.JobPayload] = {
            "publish_inbound": payloads.PublishInbound(),
            "fetch_media": payloads.FetchMedia(url="https://files.example/1.jpg", kind="image"),
            "send_reply": payloads.SendReply(channel_account_id="8123"),
            "report_status": payloads.ReportStatus(hubspot_message_id="hs-sent", status="SENT"),
            "native_ticket": payloads.NativeTicket(
                number_id=1,
                kind="MISSED_CALL",
                reference="991",
                customer="+33612345678",
                at=now.isoformat(),
            ),
            "set_contact_company": payloads.SetContactCompany(conversation_id=1, company="Acme"),
            "reengagement_note": payloads.ReengagementNote(reply_id=1, text="A note."),
            "refresh_numbers": payloads.RefreshNumbers(),
            "sync_number": payloads.SyncNumber(aircall_number_id="1001"),
        }
        assert set(typed) == set(REGISTRY), "a kind was added: give it a row in this table"
        entries = {}
        for kind, job in typed.items():
            entry = jobs.enqueue(
                session,
                job,
                installation_id=1,
                now=now,
                message_id=messages.get(kind),
                ordering_key=f"test:{kind}",
            )
            session.flush()
            entries[kind] = entry.id
    try:
        yield World(services, clock, entries, messages)
    finally:
        services.engine.dispose()


def _every_kind_answers(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[outbox.Claimed], None]
) -> None:
    """Every registered kind's handler replaced by `answer` (which raises, or returns)."""

    async def handler(_services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        answer(entry)
        return "done"

    for kind, job_kind in list(REGISTRY.items()):
        monkeypatch.setitem(REGISTRY, kind, replace(job_kind, handler=handler))


def _drain(world: World, max_steps: int = 2000) -> None:
    """Work until nothing is pending, the clock jumping to each retry's due time."""

    async def main() -> None:
        worker = Worker(world.services, concurrency=1)
        try:
            for _ in range(max_steps):
                if await worker.work_once():
                    continue
                with world.services.sessions() as session:
                    due = session.scalar(
                        select(OutboxEntry.available_at)
                        .where(OutboxEntry.state == outbox.PENDING)
                        .order_by(OutboxEntry.available_at)
                    )
                if due is None:
                    return
                world.clock.set(due)
            raise AssertionError("the outbox did not drain")
        finally:
            await world.services.aclose()

    asyncio.run(main())


def _rows(world: World) -> tuple[dict[str, OutboxEntry], dict[str, Message], list[OutboxEntry]]:
    with world.services.sessions() as session:
        entries = {kind: session.get_one(OutboxEntry, id_) for kind, id_ in world.entries.items()}
        messages = {kind: session.get_one(Message, id_) for kind, id_ in world.messages.items()}
        reports = list(
            session.scalars(
                select(OutboxEntry).where(
                    OutboxEntry.kind == payloads.ReportStatus.KIND,
                    OutboxEntry.id.not_in(list(world.entries.values())),
                )
            )
        )
        session.expunge_all()
    return entries, messages, reports


# What failing for good means for the message, by kind (its give-up action); kinds without a
# message are only their own FAILED entry, listed on the dashboard.
MESSAGE_AFTER_GIVE_UP: dict[str, tuple[str, bool]] = {  # (status, carries the reason)
    "publish_inbound": ("failed", True),
    "fetch_media": ("failed", True),
    "send_reply": ("failed", True),  # and FAILED in HubSpot: a report is queued (R23)
    "report_status": ("sent", False),  # telling HubSpot failed; the message is what it is
}


def _assert_given_up(world: World, reason: str) -> None:
    entries, messages, reports = _rows(world)
    for kind, entry in entries.items():
        assert (kind, entry.state, entry.last_error) == (kind, outbox.FAILED, reason)
    for kind, (status, with_reason) in MESSAGE_AFTER_GIVE_UP.items():
        message = messages[kind]
        assert (kind, message.status, message.failure_reason) == (
            kind,
            status,
            reason if with_reason else None,
        )
    # Only the reply's give-up tells HubSpot.
    assert [
        (r.message_id, json.loads(r.payload)["status"], json.loads(r.payload)["error"])
        for r in reports
    ] == [(world.messages["send_reply"], "FAILED", reason)]


def test_R9_R23_a_permanent_failure_gives_up_as_each_kind_says(world, monkeypatch) -> None:
    def refuse(_entry: outbox.Claimed) -> None:
        raise Permanent(REASON)

    _every_kind_answers(monkeypatch, refuse)
    _drain(world)
    _assert_given_up(world, REASON)
    entries, _, _ = _rows(world)
    assert {kind: entry.attempts for kind, entry in entries.items()} == dict.fromkeys(REGISTRY, 1)


def test_R44_temporary_errors_give_up_after_each_kinds_budget(world, monkeypatch) -> None:
    def unavailable(_entry: outbox.Claimed) -> None:
        raise Retryable("HubSpot failed to publish a message (503); will retry.", status_code=503)

    _every_kind_answers(monkeypatch, unavailable)
    _drain(world)
    _assert_given_up(
        world, "HubSpot failed to publish a message (503). Gave up after retrying for 30 minutes."
    )
    entries, _, _ = _rows(world)
    for kind, entry in entries.items():
        assert entry.finished_at is not None and entry.retrying_since is not None
        spent = entry.finished_at - entry.retrying_since
        assert timedelta(minutes=25) <= spent <= timedelta(minutes=30), kind
        assert entry.attempts > 2, kind  # retried with backoff, not failed at once


def test_R44_rate_limit_waits_spend_no_kinds_budget(world, monkeypatch) -> None:
    """Five waits of ten minutes each (50 > 30 minutes of budget), then success: no kind
    gives up."""
    calls: Counter[int] = Counter()

    def busy_then_ok(entry: outbox.Claimed) -> None:
        calls[entry.id] += 1
        if calls[entry.id] <= 5:
            raise RateLimited("Rate limit reached; will retry.", retry_after=600)

    _every_kind_answers(monkeypatch, busy_then_ok)
    _drain(world)
    entries, messages, reports = _rows(world)
    assert {kind: (entry.state, entry.attempts) for kind, entry in entries.items()} == (
        dict.fromkeys(REGISTRY, (outbox.DONE, 6))
    )
    assert reports == []
    assert {kind: m.status for kind, m in messages.items()} == {
        "publish_inbound": "pending",
        "fetch_media": "pending",
        "send_reply": "pending",
        "report_status": "sent",
    }


# Whether a job failed because HubSpot's grant was revoked goes again after the admin
# re-authorises (connect/reauth.py): all but a reply, which is FAILED in HubSpot already.
REQUEUED_AFTER_REAUTH = {kind: kind != "send_reply" for kind in REGISTRY}


def test_R8_a_revoked_grant_keeps_each_kind_for_reauthorisation_or_not(world, monkeypatch) -> None:
    def revoked(_entry: outbox.Claimed) -> None:
        raise AuthRevoked("HubSpot's authorisation was revoked.")

    _every_kind_answers(monkeypatch, revoked)
    _drain(world)
    entries, messages, _ = _rows(world)
    assert {
        kind: entry.failure_kind == outbox.AUTH_REVOKED for kind, entry in entries.items()
    } == REQUEUED_AFTER_REAUTH
    assert messages["send_reply"].status == "failed"
    with world.services.sessions() as session:
        assert session.get_one(Installation, 1).reauth_required


# --- Entries the worker cannot run --------------------------------------------------------------


def _unreadable_count(kind: str, why: str) -> float:
    value = prometheus_client.REGISTRY.get_sample_value(
        "whatsapp_helpdesk_unreadable_jobs_total", {"kind": kind, "why": why}
    )
    return value or 0.0


def _enqueue_raw(world: World, kind: str, payload: dict[str, Any], message_id: int | None) -> int:
    """As a newer (or broken) version would have written it, bypassing the typed payloads."""
    with world.services.sessions.begin() as session:
        entry = outbox.enqueue(
            session,
            installation_id=1,
            kind=kind,
            now=world.clock.now(),
            message_id=message_id,
            payload=payload,
            ordering_key=f"raw:{kind}",
        )
        session.flush()
        return entry.id


def _run_only(world: World, entry_id: int) -> tuple[OutboxEntry, list[dict[str, Any]]]:
    """The fixture's entries out of the way; then one claim, its logs captured."""
    with world.services.sessions.begin() as session:
        for id_ in world.entries.values():
            session.get_one(OutboxEntry, id_).state = outbox.DONE
    with capture_logs() as logs:
        _drain(world)
    with world.services.sessions() as session:
        row = session.get_one(OutboxEntry, entry_id)
        session.expunge(row)
    return row, logs


def test_an_unknown_kind_fails_visibly_logged_and_counted(world) -> None:
    before = _unreadable_count("sent_by_a_newer_version", "unknown_kind")
    entry_id = _enqueue_raw(
        world, "sent_by_a_newer_version", {"x": 1}, world.messages["publish_inbound"]
    )
    row, logs = _run_only(world, entry_id)
    assert (row.state, row.attempts) == (outbox.FAILED, 1)
    assert row.last_error is not None and "sent_by_a_newer_version" in row.last_error
    assert "Unknown job kind" in row.last_error
    assert _unreadable_count("sent_by_a_newer_version", "unknown_kind") == before + 1
    assert [(e["log_level"], e["why"]) for e in logs if e["event"] == "worker.unreadable_job"] == [
        ("error", "unknown_kind")
    ]
    with world.services.sessions() as session:
        # What an unknown kind means for its message is unknown: left as it was.
        assert session.get_one(Message, world.messages["publish_inbound"]).status == "pending"


@pytest.mark.parametrize(
    ("kind", "payload", "message", "named"),
    [
        # int("four") used to crash the handler: retried as an internal error for a day.
        (
            "set_contact_company",
            {"conversation_id": "four", "company": "Acme"},
            None,
            "conversation_id",
        ),
        ("publish_inbound", {}, None, "names no message"),  # used to fail an assertion, retried
        ("send_reply", {"attachment_count": "three"}, "send_reply", "attachment_count"),
    ],
)
def test_a_malformed_payload_fails_at_once_with_its_kinds_give_up(
    world, kind: str, payload: dict[str, Any], message: str | None, named: str
) -> None:
    before = _unreadable_count(kind, "bad_payload")
    entry_id = _enqueue_raw(world, kind, payload, world.messages[message] if message else None)
    row, logs = _run_only(world, entry_id)
    assert (row.state, row.attempts) == (outbox.FAILED, 1)
    assert row.last_error is not None and named in row.last_error
    assert _unreadable_count(kind, "bad_payload") == before + 1
    assert [e["why"] for e in logs if e["event"] == "worker.unreadable_job"] == ["bad_payload"]
    if message == "send_reply":  # the reply's give-up: FAILED here and in HubSpot (R23)
        _, messages, reports = _rows(world)
        assert (messages["send_reply"].status, messages["send_reply"].failure_reason) == (
            "failed",
            row.last_error,
        )
        assert [r.message_id for r in reports] == [world.messages["send_reply"]]
