"""R40 (issue 17 item 1): a customer's next message costs one transaction, six statements.

Before: two transactions (the token looked up in one of its own) and nine statements, most
of a delivery's CPU being the ORM around them (bench/ingest.py --profile). The first message
of a conversation may cost more (its contact's company, a newly registered webhook).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from harness.stack import Stack
from sqlalchemy import event, func, select

from whatsapp_helpdesk.db.models import Message, OutboxEntry, WebhookEvent

# On SQLite and PostgreSQL (tests/conftest.py): the statements of one transaction, per dialect.
pytestmark = pytest.mark.both_databases


def _hubspot_events(stack: Stack) -> int:
    with stack.services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.source == "hubspot")) or 0)


def test_R40_next_customer_message_is_one_transaction_of_six_statements(stack: Stack) -> None:
    stack.connect()
    # Connecting makes HubSpot send CHANNEL_ACCOUNT_CREATED: counted out of this test.
    deadline = time.monotonic() + 10
    while not _hubspot_events(stack):
        assert time.monotonic() < deadline, "HubSpot's CHANNEL_ACCOUNT_CREATED never came"
        time.sleep(0.05)
    stack.customer_says("the first message of the conversation")
    stack.wait_deliveries()
    engine = stack.services.engine
    statements: list[str] = []
    commits: list[bool] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # Not counted: SQLite's own BEGIN IMMEDIATE, and the sandbox clock's offset (read
        # from service_state in sandbox mode only, outside the transaction).
        if not statement.lstrip().upper().startswith("BEGIN") and "service_state" not in statement:
            statements.append(statement)

    def on_commit(_conn: Any) -> None:
        commits.append(True)

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        stack.customer_says("count my statements")
        stack.wait_deliveries()
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)

    with stack.services.sessions() as session:
        # Stored and queued for publication: the statements counted did the whole job.
        message_id = session.scalars(select(Message.id).where(
            Message.text == "count my statements")).one()
        assert session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.message_id == message_id)) == 1
    assert len(commits) == 1, commits
    assert len(statements) <= 6, "\n".join(" ".join(s.split())[:70] for s in statements)
