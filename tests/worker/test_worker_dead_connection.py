"""The worker's engine does not ping a pooled connection before each transaction (a round
trip each on PostgreSQL, issue 17 item 3): a transaction of its own that meets a connection
PostgreSQL dropped meanwhile (a restart) is run again on a fresh one, so the entry is
claimed, worked and completed in that same round, not left leased or failed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import DeliveryAttempt, Installation, OutboxEntry
from whatsapp_helpdesk.db.session import make_engine, make_session_factory
from whatsapp_helpdesk.jobs import JobPayload
from whatsapp_helpdesk.jobs.registry import REGISTRY, JobKind
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.worker.runner import Worker


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)
def test_a_transaction_that_meets_a_dropped_connection_runs_again_on_a_fresh_one(
    migrated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = build_services(Settings(database_url=migrated_database_url, _env_file=None),
                              for_the_worker=True)
    assert not services.engine.pool._pre_ping
    admin = make_engine(migrated_database_url)  # the test's own, outside the worker's pool
    sessions = make_session_factory(admin)
    ran: list[int] = []

    async def job(_services: Any, entry: outbox.Claimed, _payload: Any) -> str:
        ran.append(entry.id)
        return "done"

    monkeypatch.setitem(REGISTRY, "quick", JobKind("quick", JobPayload, job))

    def enqueue() -> int:
        now = services.clock.now()
        with sessions.begin() as session:
            if session.get(Installation, 1) is None:
                session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="",
                                         created_at=now, updated_at=now))
                session.flush()
            entry = outbox.enqueue(session, installation_id=1, kind="quick", now=now)
            session.flush()
            return entry.id

    worker = Worker(services, concurrency=1)
    try:
        first = enqueue()
        assert asyncio.run(worker.work_once())  # the worker's pool now holds connections
        with admin.begin() as connection:  # what a PostgreSQL restart does to them
            dropped = connection.scalar(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        assert dropped
        second = enqueue()
        assert asyncio.run(worker.work_once())
        assert ran == [first, second]
        with sessions() as session:
            assert {e.id: e.state for e in session.query(OutboxEntry)} == {
                first: outbox.DONE, second: outbox.DONE}
            assert session.query(DeliveryAttempt).count() == 2
    finally:
        services.engine.dispose()
        admin.dispose()
