"""The sandbox clock's offset, stored in the database and shared by web and worker processes,
can be read from inside any write transaction (on SQLite a second writer would wait for the
first, held by the same thread, until "database is locked")."""

from __future__ import annotations

import time

import pytest

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import ServiceState
from whatsapp_helpdesk.domain.clock import SystemClock
from whatsapp_helpdesk.settings import Settings


def test_clock_read_inside_a_write_transaction_does_not_wait(database_url: str) -> None:
    services = build_services(Settings(database_url=database_url, _env_file=None))
    upgrade(services.engine)
    offset = services.sandbox_clock_offset
    assert offset is not None
    try:
        offset.move(advance_seconds=3600)
        offset.forget()  # as after a reset, or half a second later: the next read queries
        started = time.monotonic()
        with services.sessions.begin() as session:
            session.add(ServiceState(key="written-first", value="1"))
            session.flush()  # this transaction now holds SQLite's write lock
            now = services.clock.now()
        assert time.monotonic() - started < 5
        assert (now - SystemClock().now()).total_seconds() == pytest.approx(3600, abs=60)
    finally:
        services.engine.dispose()


def test_an_injected_clock_leaves_no_sandbox_offset_to_move(tmp_path) -> None:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/c.db",
                                       _env_file=None), clock=SystemClock())
    assert services.sandbox_clock_offset is None
