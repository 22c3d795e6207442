"""Issue 17 item 8 (R40, R42): raw webhook payloads are kept WEBHOOK_PAYLOAD_RETENTION_DAYS,
then emptied by a scheduled job of the worker, one worker at a time, on both databases.
The rows themselves stay: they are what makes a late redelivery a duplicate (R11)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import DeliveryAttempt, Installation, OutboxEntry, WebhookEvent
from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.operations import payload_retention
from whatsapp_helpdesk.settings import Settings

# On SQLite and PostgreSQL (tests/conftest.py): batched pruning, one worker per turn.
pytestmark = pytest.mark.both_databases

PAYLOAD = '{"event": "message.received", "data": {"id": "m-%d"}}'


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    built = build_services(Settings(database_url=database_url, _env_file=None),  # type: ignore[call-arg]
                           clock=ManualClock())
    upgrade(built.engine)
    yield built
    built.engine.dispose()


def _add_events(services: Services, *, ages_days: list[float]) -> list[int]:
    """Events received `age` days before the clock's now, in that order of ids."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        rows = [
            WebhookEvent(source="aircall", installation_id=None, event_type="message.received",
                         scope="webhook:x", dedupe_key=f"key-{i}", outcome="stored",
                         payload=PAYLOAD % i, received_at=now - timedelta(days=age))
            for i, age in enumerate(ages_days)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _payloads(services: Services) -> dict[int, str]:
    with services.sessions() as session:
        return dict(session.execute(select(WebhookEvent.id, WebhookEvent.payload)).all())


def test_payloads_older_than_retention_are_emptied_rows_kept_R40(services: Services) -> None:
    ids = _add_events(services, ages_days=[90, 45, 31, 29, 1, 0])
    pruned = payload_retention.prune_webhook_payloads(services, batch_size=2)
    assert pruned == 3
    payloads = _payloads(services)
    assert set(payloads) == set(ids), "the dedupe rows stay"
    assert [payloads[i] for i in ids[:3]] == ["", "", ""]
    assert [payloads[i] for i in ids[3:]] == [PAYLOAD % 3, PAYLOAD % 4, PAYLOAD % 5]

    # A later run starts where the last stopped and prunes what has aged since.
    assert payload_retention.prune_webhook_payloads(services) == 0
    services.clock.advance(days=1, hours=1)  # type: ignore[attr-defined]
    assert payload_retention.prune_webhook_payloads(services) == 1
    assert _payloads(services)[ids[3]] == ""
    assert _payloads(services)[ids[4]] == PAYLOAD % 4


def test_retention_is_a_setting_R40(database_url: str) -> None:
    built = build_services(Settings(database_url=database_url,  # type: ignore[call-arg]
                                    webhook_payload_retention_days=2, _env_file=None),
                           clock=ManualClock())
    upgrade(built.engine)
    try:
        ids = _add_events(built, ages_days=[3, 1])
        assert payload_retention.prune_webhook_payloads(built) == 1
        assert [_payloads(built)[i] for i in ids] == ["", PAYLOAD % 1]
    finally:
        built.engine.dispose()


def test_only_one_worker_takes_each_turn_R40(services: Services) -> None:
    interval = timedelta(hours=1)
    assert payload_retention.claim_prune_turn(services, interval) is True
    assert payload_retention.claim_prune_turn(services, interval) is False
    services.clock.advance(hours=1, seconds=1)  # type: ignore[attr-defined]
    assert payload_retention.claim_prune_turn(services, interval) is True
    assert payload_retention.claim_prune_turn(services, interval) is False


def test_the_worker_job_prunes_on_its_own_R40(services: Services) -> None:
    ids = _add_events(services, ages_days=[40, 0])

    async def main() -> None:
        stopping = asyncio.Event()
        task = asyncio.create_task(payload_retention.run_periodically(services, stopping))
        deadline = time.monotonic() + 20
        try:
            while _payloads(services)[ids[0]] != "":
                assert time.monotonic() < deadline, "the scheduled job never pruned"
                await asyncio.sleep(0.05)
        finally:
            stopping.set()
            await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert _payloads(services)[ids[1]] == PAYLOAD % 1


def test_done_entries_older_than_retention_go_with_their_attempts_R40(
        services: Services) -> None:
    """Failed ones stay (R9), pending ones stay, native tickets made stay (R35 count)."""
    now = services.clock.now()
    ids: dict[str, int] = {}
    with services.sessions.begin() as session:
        session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="", created_at=now,
                                 updated_at=now))
        session.flush()
        for name, age, state, kind in [("old_pending", 40, "pending", "publish_inbound"),
                                       ("old_done", 40, "done", "publish_inbound"),
                                       ("old_failed", 40, "failed", "publish_inbound"),
                                       ("old_native", 40, "done", "native_ticket"),
                                       ("new_done", 2, "done", "publish_inbound")]:
            at = now - timedelta(days=age)
            entry = OutboxEntry(installation_id=1, kind=kind, payload="{}", ordering_at=at,
                                state=state, attempts=1, available_at=at, created_at=at,
                                finished_at=at)
            session.add(entry)
            session.flush()
            session.add(DeliveryAttempt(outbox_id=entry.id, attempt=1, started_at=at,
                                        duration_ms=5, outcome="ok"))
            ids[name] = entry.id
    assert payload_retention.prune_done_entries(services, batch_size=2) == 1
    with services.sessions() as session:
        left = set(session.scalars(select(OutboxEntry.id)))
        attempts = set(session.scalars(select(DeliveryAttempt.outbox_id)))
    assert left == {ids["old_pending"], ids["old_failed"], ids["old_native"], ids["new_done"]}
    assert attempts == left
