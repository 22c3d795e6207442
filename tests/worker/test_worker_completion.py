"""A publication is recorded in the transaction that completes its outbox entry (issue 17
item 3: a transaction and a thread hop fewer per job): both commit, or neither does, and the
job done again after a lost completion publishes once (HubSpot's idempotency id)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from harness.stack import Stack, stack  # noqa: F401  (fixture, by name)
from sqlalchemy import Engine, event, select, update

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import Message, OutboxEntry
from whatsapp_helpdesk.worker.runner import Worker


class DatabaseLost(Exception):
    pass


async def _work_one_entry(services: Services) -> None:
    """Once it is due (the reorder grace, R15)."""
    worker, deadline = Worker(services, concurrency=1), time.monotonic() + 10
    while not await worker.work_once():
        assert time.monotonic() < deadline, "nothing was claimed"
        await asyncio.sleep(0.05)


def _lose_the_completion(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if statement.startswith("UPDATE outbox SET state="):
        raise DatabaseLost("the database went away before the entry was completed")


def test_a_publication_commits_with_its_entrys_completion_or_not_at_all(
    stack: Stack,  # noqa: F811
) -> None:
    stack.connect()
    stack.customer_says("hello once")
    stack.wait_deliveries()

    event.listen(Engine, "before_cursor_execute", _lose_the_completion)
    try:
        with pytest.raises(DatabaseLost):
            stack.run(_work_one_entry)
    finally:
        event.remove(Engine, "before_cursor_execute", _lose_the_completion)
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["hello once"]  # HubSpot has it…
    with stack.services.sessions() as session:
        message = session.scalars(select(Message)).one()
        assert (message.status, message.hubspot_message_id) == ("pending", None)  # …we do not

    # The lease ends (the worker died with it): the job runs again and completes.
    with stack.services.sessions.begin() as session:
        session.execute(update(OutboxEntry).values(locked_until=None))
    stack.drain()
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["hello once"]
    with stack.services.sessions() as session:
        message = session.scalars(select(Message)).one()
        assert message.status == "published" and message.hubspot_message_id
        assert {e.state for e in session.scalars(select(OutboxEntry))} == {"done"}
