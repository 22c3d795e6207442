"""Replies: an agent answers from the ticket and the customer gets it on WhatsApp
(R21–R27, R42, R43).

Every test runs the real path: sandbox help desk agent reply → signed HubSpot webhook over
HTTP → our web app → database → worker → sandbox Aircall over HTTP → customer phone; and
back: Aircall's echo and statuses → our web app → worker → HubSpot message status.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from harness.pacing import fast_aircall_bucket
from harness.stack import CUSTOMER, PORTAL, Stack
from harness.work_until import past_the_longest_wait, work_until
from sqlalchemy import func, select

from whatsapp_helpdesk.db.models import Message, OutboxEntry, WebhookEvent
from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE
from whatsapp_helpdesk.replies import reply as reply_flow
from whatsapp_helpdesk.settings import SANDBOX_HUBSPOT_CLIENT_SECRET

SEND_PATH = "/v1/messages/send/whatsapp/native"
OUTGOING = "OUTGOING_CHANNEL_MESSAGE_CREATED"

# Each reply's send waited ~14 s for the install's Aircall calls to be paced out
# (tests/harness/pacing.py): these tests are about replies, not the pacing.
pytestmark = fast_aircall_bucket


# --- helpers ---------------------------------------------------------------------------------


def _connected(stack: Stack) -> None:
    """The number connected, and HubSpot's CHANNEL_ACCOUNT_CREATED received."""
    stack.connect()
    deadline = time.monotonic() + 10
    while stack.hubspot.get("/_sandbox/webhook-deliveries",
                            params={"state": "pending"}).json()["deliveries"]:
        assert time.monotonic() < deadline, "HubSpot webhooks still pending"
        time.sleep(0.05)


def _conversation_started(stack: Stack, text: str = "Hello, where is my order?") -> str:
    """The customer writes first; returns the HubSpot thread of the ticket it created."""
    _connected(stack)
    stack.customer_says(text)
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    return str(ticket["threadId"])


def _delivery_of(stack: Stack, hubspot_message_id: str) -> dict[str, Any] | None:
    deliveries = stack.hubspot.get(
        "/_sandbox/webhook-deliveries", params={"event_type": OUTGOING}
    ).json()["deliveries"]
    return next(
        (d for d in deliveries if d["payload"]["message"]["id"] == hubspot_message_id), None
    )


def _wait_hubspot_delivered(stack: Stack, hubspot_message_id: str, *, attempts: int = 1) -> None:
    """Until the sandbox HubSpot's webhook for this reply got a 2xx (`attempts` of them)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        delivery = _delivery_of(stack, hubspot_message_id)
        ok = [a for a in (delivery or {}).get("attempts", []) if a["statusCode"] == 200]
        if delivery and delivery["state"] == "delivered" and len(ok) >= attempts:
            return
        time.sleep(0.05)
    raise AssertionError(f"HubSpot never delivered the webhook: {delivery}")


def _agent_replies(stack: Stack, thread_id: str, text: str = "We are on it!",
                   **extra: Any) -> str:
    answer = stack.hubspot.post(
        f"/_sandbox/portals/{PORTAL}/threads/{thread_id}/replies", json={"text": text, **extra}
    )
    assert answer.status_code == 201, answer.text
    hubspot_message_id = str(answer.json()["id"])
    _wait_hubspot_delivered(stack, hubspot_message_id)
    return hubspot_message_id


def _settle(stack: Stack) -> None:
    """Work the outbox, let Aircall's echoes and statuses arrive, work what they caused."""
    stack.drain()
    stack.wait_deliveries()
    stack.drain()


def _phone(stack: Stack) -> list[dict[str, Any]]:
    """What the sandbox customer's phone received."""
    return stack.aircall.get("/_sandbox/customer/inbox", params={"phone": CUSTOMER}).json()[
        "messages"
    ]


def _hubspot_message(stack: Stack, hubspot_message_id: str) -> dict[str, Any]:
    for ticket in stack.tickets():
        for message in ticket["messages"]:
            if message["id"] == hubspot_message_id:
                return dict(message)
    raise AssertionError(f"message {hubspot_message_id} is in no ticket")


def _move_all_clocks(stack: Stack, seconds: float) -> None:
    """The service's clock first, so that it is moved before HubSpot signs with its own: the
    web app that moves its offset uses it at once (bootstrap.StoredClockOffset.move), and
    each drain's worker reads it afresh; no wait for the 0.5 s cache."""
    stack.bridge.post("/_sandbox/clock", json={"advance_seconds": seconds})
    stack.hubspot.post("/_sandbox/clock", json={"advance_seconds": seconds})
    stack.aircall.post("/_sandbox/clock", json={"advance_seconds": seconds})


def _count(stack: Stack, model: type) -> int:
    with stack.services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _signed(body: bytes, url: str, timestamp_ms: int, secret: str = SANDBOX_HUBSPOT_CLIENT_SECRET
            ) -> dict[str, str]:
    source = b"POST" + url.encode() + body + str(timestamp_ms).encode()
    signature = base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest())
    return {"X-HubSpot-Signature-v3": signature.decode(),
            "X-HubSpot-Request-Timestamp": str(timestamp_ms),
            "Content-Type": "application/json"}


# --- tests -----------------------------------------------------------------------------------


def test_R21_R22_R23_reply_inside_window_reaches_phone_and_is_sent_then_read(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    hubspot_id = _agent_replies(stack, thread_id, "We are on it!")
    _settle(stack)

    [received] = _phone(stack)
    assert received["body"] == "We are on it!"
    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    # R22: the reply is in the ticket, after the customer's message, on the contact's record.
    [ticket] = stack.tickets()
    assert [(m["direction"], m["text"]) for m in ticket["messages"]] == [
        ("INCOMING", "Hello, where is my order?"), ("OUTGOING", "We are on it!")]
    contact = stack.hubspot.get(f"/_sandbox/portals/{PORTAL}/contacts").json()["contacts"]
    assert any(ticket["threadId"] in c["threadIds"] for c in contact)

    # READ follows when the customer opens it (R23).
    stack.aircall.post(f"/_sandbox/customer/messages/{received['id']}/read")
    _settle(stack)
    assert _hubspot_message(stack, hubspot_id)["status"] == "READ"
    with stack.services.sessions() as session:
        reply = session.scalars(select(Message).where(Message.direction == "outbound")).one()
    assert (reply.status, reply.provider_message_id) == ("read", received["id"])


def test_R15_echo_of_our_reply_is_recognised_never_published(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    _agent_replies(stack, thread_id, "Only once in the ticket")
    _settle(stack)
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == [
        "Hello, where is my order?", "Only once in the ticket"]
    with stack.services.sessions() as session:
        outcome = session.scalars(select(WebhookEvent.outcome).where(
            WebhookEvent.event_type == "message.sent")).one()
        publishes = session.scalar(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.kind == "publish_inbound"))
    assert outcome == "echo_of_our_reply"
    assert publishes == 1  # the customer's message only


def test_R24_reply_after_24h_and_1s_is_failed_with_window_message_never_sent(
    stack: Stack,
) -> None:
    thread_id = _conversation_started(stack)
    _move_all_clocks(stack, 24 * 3600 + 1)
    hubspot_id = _agent_replies(stack, thread_id, "Sorry for the delay")
    _settle(stack)

    message = _hubspot_message(stack, hubspot_id)
    assert message["status"] == "FAILED"
    assert message["failureDetails"]["errorMessage"] == WINDOW_CLOSED_MESSAGE
    assert _phone(stack) == []


def test_R24_reply_just_inside_window_is_sent(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    _move_all_clocks(stack, 24 * 3600 - 60)
    hubspot_id = _agent_replies(stack, thread_id, "Just in time")
    _settle(stack)
    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    assert [m["body"] for m in _phone(stack)] == ["Just in time"]


def test_R25_reply_with_attachment_is_failed_and_never_reaches_aircall(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    hubspot_id = _agent_replies(stack, thread_id, "Here is the invoice", attachments=[
        {"type": "FILE", "name": "invoice.pdf", "url": "https://files.example/invoice.pdf"}])
    _settle(stack)

    message = _hubspot_message(stack, hubspot_id)
    assert message["status"] == "FAILED"
    assert "Attachments can't be sent" in message["failureDetails"]["errorMessage"]
    assert _phone(stack) == []


def test_R25_simple_rich_text_becomes_whatsapp_markup(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    _agent_replies(stack, thread_id, "Thanks a lot",
                   richText="<div><b>Thanks</b> a <i>lot</i><br>See you</div>")
    _settle(stack)
    assert [m["body"] for m in _phone(stack)] == ["*Thanks* a _lot_\nSee you"]


def test_R25_reply_typed_on_several_lines_reaches_the_phone_on_those_lines(
    stack: Stack,
) -> None:
    """Issue 15 item 1: the help desk composer sends its HTML (one element per line typed);
    the phone gets the agent's lines and blank lines, not one run-on line."""
    thread_id = _conversation_started(stack)
    typed = "Hello Anna,\n\nYour parcel left today.\nTracking: 12345"
    _agent_replies(stack, thread_id, typed)
    _settle(stack)
    assert [m["body"] for m in _phone(stack)] == [typed]


@pytest.mark.both_databases
def test_R27_replayed_webhook_sends_once(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    hubspot_id = _agent_replies(stack, thread_id, "Exactly once")
    _settle(stack)
    delivery = _delivery_of(stack, hubspot_id)
    assert delivery is not None
    stack.hubspot.post(f"/_sandbox/webhook-deliveries/{delivery['id']}/replay")
    _wait_hubspot_delivered(stack, hubspot_id, attempts=2)
    _settle(stack)

    assert [m["body"] for m in _phone(stack)] == ["Exactly once"]
    with stack.services.sessions() as session:
        outcomes = session.scalars(select(WebhookEvent.outcome).where(
            WebhookEvent.event_type == OUTGOING)).all()
        replies = session.scalar(select(func.count()).select_from(Message).where(
            Message.direction == "outbound"))
    assert outcomes == ["stored"] and replies == 1


def test_R44_aircall_503_twice_then_recovery_delivers_once(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    stack.aircall.post("/_sandbox/faults", json={
        "path_prefix": SEND_PATH, "method": "POST", "mode": "status", "status": 503, "times": 2})
    hubspot_id = _agent_replies(stack, thread_id, "Despite the outage")
    # Each refused send's back-off moved past on the bridge's clock, not waited out.
    work_until(stack, lambda: bool(_phone(stack)), what="the reply on the phone",
               when_idle=past_the_longest_wait)
    _settle(stack)

    assert [m["body"] for m in _phone(stack)] == ["Despite the outage"]
    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    faults = stack.aircall.get("/_sandbox/faults").json()["faults"]
    assert faults == []  # both 503s were spent: two refused attempts, then the send


def test_R42_forged_signature_is_401_and_stores_nothing(stack: Stack) -> None:
    _connected(stack)
    body = json.dumps({"type": OUTGOING, "portalId": str(PORTAL), "message": {
        "id": "forged-1", "channelAccountId": "1", "text": "pay here"}}).encode()
    url = f"{stack.settings.public_url}/webhooks/hubspot"
    now_ms = int(time.time() * 1000)
    events_before = _count(stack, WebhookEvent)  # the connection's CHANNEL_ACCOUNT_CREATED
    forged = _signed(body, url, now_ms, secret="not-the-client-secret")
    assert stack.bridge.post("/webhooks/hubspot", content=body, headers=forged).status_code == 401
    no_signature = {"Content-Type": "application/json"}
    assert stack.bridge.post("/webhooks/hubspot", content=body,
                             headers=no_signature).status_code == 401
    assert _count(stack, WebhookEvent) == events_before and _count(stack, Message) == 0


def test_R42_stale_signature_is_401_and_stores_nothing(stack: Stack) -> None:
    _connected(stack)
    body = json.dumps({"type": "CHANNEL_ACCOUNT_UPDATED", "portalId": str(PORTAL),
                       "channelAccountId": "1", "authorized": False}).encode()
    url = f"{stack.settings.public_url}/webhooks/hubspot"
    six_minutes_ago = int(time.time() * 1000) - 6 * 60 * 1000
    stale = _signed(body, url, six_minutes_ago)
    events_before = _count(stack, WebhookEvent)
    assert stack.bridge.post("/webhooks/hubspot", content=body, headers=stale).status_code == 401
    assert _count(stack, WebhookEvent) == events_before
    # The same body signed now is accepted: only the age made the difference.
    fresh = _signed(body, url, int(time.time() * 1000))
    assert stack.bridge.post("/webhooks/hubspot", content=body, headers=fresh).status_code == 200


def test_R6_deauthorised_channel_refuses_replies(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    [account] = stack.hubspot.get(
        f"/_sandbox/portals/{PORTAL}/channel-accounts").json()["channelAccounts"]
    # The agent's reply is stored before the admin de-authorises the channel account.
    answer = stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/threads/{thread_id}/replies",
                                json={"text": "Too late"})
    hubspot_id = str(answer.json()["id"])
    _wait_hubspot_delivered(stack, hubspot_id)
    stack.hubspot.patch(f"/_sandbox/portals/{PORTAL}/channel-accounts/{account['id']}",
                        json={"authorized": False})
    deadline = time.monotonic() + 10
    while _count_outcome(stack, "disconnected") == 0:  # CHANNEL_ACCOUNT_UPDATED arrived
        assert time.monotonic() < deadline, "the de-authorisation never reached the service"
        time.sleep(0.05)
    _settle(stack)
    assert _hubspot_message(stack, hubspot_id)["status"] == "FAILED"
    assert _phone(stack) == []


def _count_outcome(stack: Stack, outcome: str) -> int:
    with stack.services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.outcome == outcome)) or 0)


# --- crashes in the middle of a send (decision 0002) ------------------------------------------


def _reply_row(stack: Stack) -> Message:
    with stack.services.sessions() as session:
        return session.scalars(select(Message).where(Message.direction == "outbound")).one()


@pytest.mark.both_databases
def test_R27_worker_dying_between_send_and_record_never_sends_twice(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id = _conversation_started(stack)
    hubspot_id = _agent_replies(stack, thread_id, "Sent just before the crash")

    class WorkerDied(BaseException):
        """Not an Exception: nothing in the worker catches it, as with a SIGKILL."""

    def die(*_args: object, **_kwargs: object) -> None:
        raise WorkerDied

    # Aircall accepted the message; the process dies before recording Aircall's answer.
    monkeypatch.setattr(reply_flow, "_record_sent", die)
    with pytest.raises(WorkerDied):
        stack.drain()
    monkeypatch.undo()
    assert _reply_row(stack).status in ("sending", "sent")  # the echo may be in already
    stack.wait_deliveries()
    # The dead worker's lease runs out; the next worker finds the reply and reconciles it.
    stack.bridge.post("/_sandbox/clock", json={"advance_seconds": 61})
    _settle(stack)

    assert [m["body"] for m in _phone(stack)] == ["Sent just before the crash"]
    assert _hubspot_message(stack, hubspot_id)["status"] == "SENT"
    assert _reply_row(stack).provider_message_id == _phone(stack)[0]["id"]


def _worker_process(stack: Stack) -> subprocess.Popen[bytes]:
    settings = stack.settings
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PUBLIC_URL": settings.public_url,
        "SANDBOX_HUBSPOT_PORT": str(settings.sandbox_hubspot_port),
        "SANDBOX_AIRCALL_PORT": str(settings.sandbox_aircall_port),
        "WORKER_LEASE_SECONDS": "2",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "whatsapp_helpdesk.cli", "worker"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.both_databases
@pytest.mark.slow(seconds=8)
def test_R27_sigkill_mid_send_neither_duplicates_nor_loses_silently(stack: Stack) -> None:
    thread_id = _conversation_started(stack)
    # Aircall answers slowly, so the kill lands while the send is in flight.
    stack.aircall.post("/_sandbox/faults", json={
        "path_prefix": SEND_PATH, "method": "POST", "mode": "slow", "delay_seconds": 2,
        "times": 1})
    hubspot_id = _agent_replies(stack, thread_id, "In flight when the worker died")
    worker = _worker_process(stack)
    try:
        deadline = time.monotonic() + 15
        while _reply_row(stack).status != "sending":
            assert time.monotonic() < deadline, "the worker never started the send"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    time.sleep(2.2)  # Aircall's slow answer, whatever became of it
    stack.wait_deliveries()
    # Past the lease and past the reconciliation window: the outcome is final now.
    stack.bridge.post("/_sandbox/clock", json={"advance_seconds": 121})
    _settle(stack)

    received = _phone(stack)
    message = _hubspot_message(stack, hubspot_id)
    assert len(received) <= 1  # never twice
    if received:  # Aircall got it before the connection died: recognised by its echo
        assert message["status"] == "SENT"
    else:  # never silently lost: the agent is told to check before resending
        assert message["status"] == "FAILED"
        assert message["failureDetails"]["errorMessage"] == reply_flow.DELIVERY_UNCERTAIN_MESSAGE
