"""R53: nothing lost when our own database is down.

The database becomes unreachable for the web process (on PostgreSQL, the test's database
refuses connections and its sessions are terminated; on SQLite, the file is moved away)
while the customer keeps writing. Every delivery is still acknowledged at once, after the
spool's fsync; when the database returns the spool is replayed, and every message reaches
HubSpot exactly once, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from harness.outage import DatabaseOutage
from harness.pacing import fast_aircall_bucket
from harness.pages import wait_for
from harness.stack import CUSTOMER, PORTAL, Stack
from sqlalchemy import func, select

from whatsapp_helpdesk.db.models import Message
from whatsapp_helpdesk.spool import read_records

# On SQLite and PostgreSQL (tests/conftest.py): the database itself stops.
# Their Aircall sends waited ~14 s for the install's Aircall calls to be paced out
# (tests/harness/pacing.py): these tests are about the outage, not the pacing.
pytestmark = [pytest.mark.both_databases, fast_aircall_bucket]

# The outage tests wait longer than the pages' default (a replay follows the database's return).
_wait_for = partial(wait_for, timeout=20.0)


@pytest.fixture
def outage(stack: Stack, database_url: str, request: pytest.FixtureRequest
           ) -> Iterator[DatabaseOutage]:
    server = (request.getfixturevalue("postgres_server")
              if database_url.startswith("postgresql") else None)
    cut = DatabaseOutage(database_url, stack.services.engine, server)
    yield cut
    if cut.is_down:
        cut.restore()


def _texts(stack: Stack) -> list[str]:
    return [m["text"] for t in stack.tickets() for m in t["messages"]]


def _failed_attempts(stack: Stack) -> list[dict[str, Any]]:
    log = stack.aircall.get("/_sandbox/deliveries").json()["deliveries"]
    return [d for d in log if d["outcome"] != "success"]


def test_R53_messages_sent_while_the_database_is_down_arrive_once_in_order(
    stack: Stack, outage: DatabaseOutage
) -> None:
    stack.connect()
    stack.customer_says("before the cut")
    stack.wait_deliveries()
    stack.drain()

    outage.cut()
    during = [f"during the cut {i}" for i in range(8)]
    for text in during:
        stack.customer_says(text)
    stack.wait_deliveries()

    # Acknowledged at once: Aircall saw no failure, so it has nothing to retry or disable.
    assert _failed_attempts(stack) == []
    health = stack.bridge.get("/healthz")
    assert health.status_code == 503
    assert health.json()["database"] == "unreachable"
    assert health.json()["spool"]["records"] == len(during)
    assert "whatsapp_helpdesk_spool_records 8.0" in stack.bridge.get("/metrics").text
    # The webhook token is a secret: the spool keeps its digest, never the token.
    segments = sorted(Path(stack.settings.spool_dir).glob("spool-*.log"))
    records = [r.payload for s in segments for r in read_records(s)]
    assert len(records) == len(during)
    assert all('"token":""' in r["body"] and r["webhook_digest"] for r in records)

    outage.restore()
    _wait_for(lambda: stack.bridge.get("/healthz").json()["spool"]["records"] == 0,
              what="the spool to be replayed")
    stack.customer_says("after the cut")
    stack.wait_deliveries()
    stack.drain()

    assert _texts(stack) == ["before the cut", *during, "after the cut"]
    with stack.services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == len(during) + 2
    assert stack.bridge.get("/healthz").status_code == 200


def _hubspot_attempts(stack: Stack, hubspot_message_id: str) -> list[dict[str, Any]]:
    deliveries = stack.hubspot.get("/_sandbox/webhook-deliveries", params={
        "event_type": "OUTGOING_CHANNEL_MESSAGE_CREATED"}).json()["deliveries"]
    return [a for d in deliveries if d["payload"]["message"]["id"] == hubspot_message_id
            for a in d["attempts"]]


def _phone_texts(stack: Stack) -> list[str]:
    messages = stack.aircall.get("/_sandbox/customer/inbox",
                                 params={"phone": CUSTOMER}).json()["messages"]
    return [m["body"] for m in messages if m["direction"] == "outbound"]


def test_R53_agent_replies_while_the_database_is_down_reach_the_phone_once_in_order(
    stack: Stack, outage: DatabaseOutage
) -> None:
    stack.connect()
    stack.customer_says("Where is my order?")
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()

    outage.cut()
    replies = [f"reply during the cut {i}" for i in range(3)]
    for text in replies:
        answer = stack.hubspot.post(
            f"/_sandbox/portals/{PORTAL}/threads/{ticket['threadId']}/replies",
            json={"text": text})
        assert answer.status_code == 201, answer.text
        message_id = str(answer.json()["id"])
        # Signature v3 verified without the database; answered 200 once spooled.
        attempts = _wait_for(lambda m=message_id: _hubspot_attempts(stack, m), what="a try")
        assert [a["statusCode"] for a in attempts] == [200]
    # A forged webhook is refused, not spooled, while the database is down too (R42).
    forged = stack.bridge.post("/webhooks/hubspot", content=b'{"type":"x"}', headers={
        "X-HubSpot-Signature-v3": "Zm9yZ2Vk", "X-HubSpot-Request-Timestamp": "1",
        "Content-Type": "application/json"})
    assert forged.status_code == 401
    assert stack.bridge.get("/healthz").json()["spool"]["records"] == len(replies)

    outage.restore()
    _wait_for(lambda: stack.bridge.get("/healthz").json()["spool"]["records"] == 0,
              what="the spool to be replayed")
    stack.drain()
    stack.wait_deliveries()
    stack.drain()

    assert _phone_texts(stack) == replies


def test_R53_a_web_process_started_while_the_database_is_down_still_spools(
    stack: Stack, outage: DatabaseOutage
) -> None:
    """A web process restarted during an outage (a crash, a deploy) knows the registrations
    from the digest cache kept beside the spool: it spools an authenticated delivery instead
    of answering 503 until Aircall disables the webhook, and still refuses a forged one."""
    import json

    from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

    stack.connect()
    stack.customer_says("before the cut")
    stack.wait_deliveries()
    stack.drain()
    token = next(w["token"] for w in stack.aircall.get("/_sandbox/webhooks").json()["webhooks"]
                 if w["active"] and w["url"].startswith(str(stack.bridge.base_url)))
    outage.cut()

    fresh = WebhookSpool(stack.services)  # as a newly started process builds it
    fresh.start()
    try:
        body = json.loads(Path("tests/fixtures/aircall/message_received__whatsapp_text.json")
                          .read_text())
        body["token"] = token
        assert fresh.receive_aircall(json.dumps(body).encode()).result == "spooled"
        body["token"] = "forged-" + token
        assert fresh.receive_aircall(json.dumps(body).encode()).status_code in (401, 503)
        assert fresh.spool.status().records == 1
    finally:
        fresh.stop()
