"""Progress where work takes time (issue 15 item 13; R40, R9): `migrate` says which
migration it applies and how far along it is; `deliveries retry` requeues many failed
deliveries at once, counting as it goes."""

from __future__ import annotations

import argparse
import re

import pytest
from alembic.script import ScriptDirectory
from harness.stack import Stack
from sqlalchemy import select

from whatsapp_helpdesk.cli import cmd_deliveries_retry, cmd_migrate
from whatsapp_helpdesk.db.migrate import alembic_config
from whatsapp_helpdesk.db.models import OutboxEntry
from whatsapp_helpdesk.settings import Settings


@pytest.mark.both_databases
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_R40_migrate_reports_each_migration_and_then_nothing_to_do(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=database_url, _env_file=None)  # type: ignore[call-arg]

    assert cmd_migrate(settings, argparse.Namespace()) == 0
    first = capsys.readouterr().out
    # Every revision of the script directory, oldest first (the head moves as we add them).
    scripts = ScriptDirectory.from_config(alembic_config(database_url))
    revisions = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    total = str(len(revisions))
    steps = re.findall(r"\[(\d+)/(\d+)\] (\d{4})", first)
    assert steps == [(str(n), total, rev) for n, rev in enumerate(revisions, start=1)]
    assert len(steps) >= 7
    assert f"up to date at revision {revisions[-1]}" in first

    assert cmd_migrate(settings, argparse.Namespace()) == 0
    again = capsys.readouterr().out
    assert "[1/" not in again
    assert f"already up to date at revision {revisions[-1]}: nothing to do" in again


def _failed_publications(stack: Stack, count: int) -> list[int]:
    """`count` customer messages HubSpot refused (400): failed deliveries to retry."""
    stack.connect(1001)
    stack.hubspot.post("/_sandbox/faults", json={
        "path_prefix": "/conversations/custom-channels/2026-03/", "method": "POST",
        "mode": "status", "status": 400, "times": count})
    for n in range(count):
        stack.customer_says(f"message {n}", phone=f"+3361234567{n}")
    stack.wait_deliveries()
    stack.drain()
    with stack.services.sessions() as session:
        failed = list(session.scalars(select(OutboxEntry.id).where(
            OutboxEntry.state == "failed").order_by(OutboxEntry.id)))
    assert len(failed) == count
    return failed


def test_R9_deliveries_retry_requeues_every_failed_one_with_progress(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = _failed_publications(stack, 3)

    code = cmd_deliveries_retry(stack.settings, argparse.Namespace(installation=None))

    assert code == 0
    out = capsys.readouterr().out
    assert "3 failed deliveries to retry" in out
    assert re.findall(r"\[(\d)/3\]", out) == ["1", "2", "3"]
    assert "3 requeued, 0 skipped" in out
    with stack.services.sessions() as session:
        states = session.scalars(select(OutboxEntry.state).where(OutboxEntry.id.in_(failed)))
        assert set(states) == {"pending"}
    stack.drain()
    assert len(stack.tickets()) == 3


def test_R9_deliveries_retry_with_nothing_failed_says_so(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cmd_deliveries_retry(stack.settings, argparse.Namespace(installation=None)) == 0
    assert "No failed delivery to retry." in capsys.readouterr().out
