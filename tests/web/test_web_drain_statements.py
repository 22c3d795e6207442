"""Issue 17 item 1 (R14, R15; decision 0011): the drain stores a batch in O(1) statements.

The drain's cost was one statement per row and table (~1 ms of CPU per stored row): a
batch of inbound WhatsApp messages is now one multi-row INSERT per table, the numbers read
once. Here a burst waits in the spool while the drain is held, then the drain's statements
are counted (an engine event, the drain thread's only) and its rows checked against what
the deliveries stored one by one leave: one message, event and publish job each, one
conversation per customer, a conversation's messages in arrival order, a copy stored once.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import httpx
import phonenumbers
import pytest
from harness.pages import wait_for
from harness.stack import SUPPORT_FR, Stack
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select

from whatsapp_helpdesk.db.models import Conversation, Message, OutboxEntry, WebhookEvent
from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

pytestmark = pytest.mark.both_databases

DRAIN_THREAD = "spool-replay"
DRAIN_CPU_METRIC = "whatsapp_helpdesk_spool_drain_cpu_seconds_total"
CUSTOMERS = 6
PER_CUSTOMER = 4


def _body(token: str, words: str, customer: int, *, message_id: str | None = None,
          sent_ms: int = 1_764_000_000_000) -> bytes:
    return json.dumps({
        "resource": "message", "event": "message.received", "timestamp": 1_764_000_000,
        "token": token,
        "data": {"id": message_id or uuid.uuid4().hex, "direction": "inbound",
                 "channel": "whatsapp", "status": "received", "type": "text", "body": words,
                 "external_number": f"+336123456{customer:02d}", "created_at": sent_ms,
                 "contact": {"first_name": f"Client{customer}", "last_name": "Test"},
                 "number": {"id": SUPPORT_FR, "digits": "+33 1 76 36 06 95"}},
    }).encode()


def _post(stack: Stack, body: bytes) -> httpx.Response:
    with httpx.Client(base_url=str(stack.bridge.base_url), timeout=60) as client:
        return client.post("/webhooks/aircall", content=body,
                           headers={"content-type": "application/json"})


def _webhook_spool(stack: Stack) -> WebhookSpool:
    spool: WebhookSpool = stack.web_app.state.webhook_spool
    return spool


class _DrainStatements:
    """The statements of each batch the drain stores: (records, statements) per batch."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, list[str]]] = []
        self.current: list[str] | None = None

    def before_cursor_execute(self, _conn: Any, _cursor: Any, statement: str,
                              *_args: Any) -> None:
        if self.current is not None and threading.current_thread().name == DRAIN_THREAD:
            self.current.append(statement[:80])


@pytest.fixture
def drain_statements(stack: Stack) -> Iterator[_DrainStatements]:
    counter = _DrainStatements()
    engine = stack.services.engine
    event.listen(engine, "before_cursor_execute", counter.before_cursor_execute)
    yield counter
    event.remove(engine, "before_cursor_execute", counter.before_cursor_execute)


def test_issue17_the_drain_stores_a_batch_in_a_constant_number_of_statements(
        stack: Stack, drain_statements: _DrainStatements,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stack.connect()
    webhook_spool = _webhook_spool(stack)
    webhook_spool.refresh_digests()
    token = str(stack.aircall.get("/_sandbox/webhooks").json()["webhooks"][0]["token"])
    released, entered = threading.Event(), threading.Event()
    real = webhook_spool._deliver_batch

    def held(records: list[Any]) -> None:
        entered.set()
        assert released.wait(60), "the test never released the drain"
        drain_statements.current = []
        drain_statements.batches.append((len(records), drain_statements.current))
        real(records)
        drain_statements.current = None

    monkeypatch.setattr(webhook_spool, "_deliver_batch", held)
    # The customers' numbers parsed by the drain (phonenumbers was a fifth of its CPU per row).
    real_parse, parsed = phonenumbers.parse, []

    def counted_parse(*args: Any, **kwargs: Any) -> Any:
        if drain_statements.current is not None:
            parsed.append(args[0])
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(phonenumbers, "parse", counted_parse)
    # Arrival order is the spool's order: sent one at a time, a customer's messages in turn,
    # each later in Aircall's time than the one before.
    bodies = [_body(token, f"c{c} m{m}", c, sent_ms=1_764_000_000_000 + 1000 * (m * 10 + c))
              for m in range(PER_CUSTOMER) for c in range(CUSTOMERS)]
    copy = bodies[3]  # Aircall's retry of one, in the same batch
    # The first wakes the drain, which is held on it alone; the rest wait in the next
    # segment, one batch.
    assert _post(stack, bodies[0]).json() == {"result": "spooled"}
    assert entered.wait(60), "the drain never started"
    for body in [*bodies[1:], copy]:
        assert _post(stack, body).json() == {"result": "spooled"}
    drain_cpu = REGISTRY.get_sample_value(DRAIN_CPU_METRIC)
    assert drain_cpu is not None, "the drain's CPU is not exported"
    released.set()
    wait_for(lambda: webhook_spool.spool.unreplayed() == 0, what="the drain")
    # What bench/ingest.py divides by the rows stored: the drain thread's CPU time.
    assert (REGISTRY.get_sample_value(DRAIN_CPU_METRIC) or 0.0) > drain_cpu

    assert [records for records, _ in drain_statements.batches] == [1, len(bodies)]
    statements = drain_statements.batches[1][1]
    # One by one this was ~5 statements a delivery (event, number, conversation, message,
    # job): over 100 here. Now: (SQLite's BEGIN IMMEDIATE,) one read of the number, one
    # INSERT per table (events, conversations, messages, jobs).
    assert len(statements) <= 6, statements
    # A customer's number parsed once (at most: the process may know it already), not twice
    # for each of their messages (issue 17 item 1: 2 per message before).
    assert len(parsed) <= CUSTOMERS, parsed
    with stack.services.sessions() as session:
        messages = session.execute(select(Message.id, Message.text, Message.conversation_id)
                                   .order_by(Message.id)).all()
        assert len(messages) == len(bodies)
        for c in range(CUSTOMERS):
            # A conversation's messages in arrival order (R15).
            assert [text for _, text, _ in messages if text.startswith(f"c{c} ")] == [
                f"c{c} m{m}" for m in range(PER_CUSTOMER)]
        conversations = session.execute(select(
            Conversation.id, Conversation.customer_e164, Conversation.customer_name,
            Conversation.last_inbound_at)).all()
        assert len(conversations) == CUSTOMERS
        by_customer = {customer: (name, last) for _, customer, name, last in conversations}
        assert by_customer["+33612345601"][0] == "Client1 Test"
        # The latest inbound time of the customer's messages, not the first one's.
        last = by_customer["+33612345601"][1]
        assert last.replace(tzinfo=last.tzinfo or UTC).timestamp() == (
            1_764_000_000_000 + 1000 * ((PER_CUSTOMER - 1) * 10 + 1)) / 1000
        # (Not the install's read of the numbers, done before.)
        jobs = session.execute(select(OutboxEntry.message_id, OutboxEntry.ordering_key).where(
            OutboxEntry.kind != "refresh_numbers")).all()
        conversation_of = {message_id: conversation for message_id, _, conversation in messages}
        assert sorted(message_id for message_id, _ in jobs) == sorted(conversation_of)
        assert all(key == f"conversation:{conversation_of[message_id]}"
                   for message_id, key in jobs)
        outcomes = session.execute(select(WebhookEvent.outcome, func.count()).where(
            WebhookEvent.source == "aircall").group_by(WebhookEvent.outcome)).all()
        assert outcomes == [("stored", len(bodies))]
