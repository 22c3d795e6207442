"""R44: a job our pacing holds back gives its slot back and its entry returns when the
bucket has room; a reply held back that way was certainly not sent."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import DeliveryAttempt, Installation, OutboxEntry
from whatsapp_helpdesk.jobs import JobPayload
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.pacing import Paced
from whatsapp_helpdesk.replies.reply import aircall_may_have_sent
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import Worker


def test_R44_a_paced_job_is_put_back_until_the_bucket_has_room(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/w.db",
                                       _env_file=None))
    upgrade(services.engine)

    async def paced(_services: Any, _entry: outbox.Claimed) -> str:
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
