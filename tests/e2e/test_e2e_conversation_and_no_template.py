"""R13 (the whole conversation in the ticket's view, in order) and R26 (no template on this
channel unless one is configured), end to end over real HTTP against both sandboxes."""

from __future__ import annotations

import time

from harness.pacing import fast_aircall_bucket
from harness.stack import CUSTOMER, PORTAL, Stack

from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE

# Their Aircall sends waited ~14 s for the install's Aircall calls to be paced out
# (tests/harness/pacing.py): these tests are about the window, not the pacing.
pytestmark = fast_aircall_bucket

OUTGOING = "OUTGOING_CHANNEL_MESSAGE_CREATED"


def _until(condition_met: object, what: str, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition_met():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _hubspot_webhooks_settled(stack: Stack) -> bool:
    return not stack.hubspot.get("/_sandbox/webhook-deliveries",
                                 params={"state": "pending"}).json()["deliveries"]


def _customer_writes(stack: Stack, text: str) -> None:
    stack.customer_says(text)
    stack.wait_deliveries()
    stack.drain()


def _agent_replies(stack: Stack, thread_id: str, text: str) -> str:
    answer = stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/threads/{thread_id}/replies",
                                json={"text": text})
    assert answer.status_code == 201, answer.text
    message_id = str(answer.json()["id"])
    _until(lambda: _hubspot_webhooks_settled(stack), "HubSpot's reply webhook still pending")
    # Work the reply, let Aircall's echo and status come back, work what they caused.
    stack.drain()
    stack.wait_deliveries()
    stack.drain()
    return message_id


def _only_ticket(stack: Stack) -> dict:
    [ticket] = stack.tickets()
    return ticket


def test_R13_the_whole_conversation_is_in_the_ticket_view_in_order(stack: Stack) -> None:
    stack.connect()
    _until(lambda: _hubspot_webhooks_settled(stack), "CHANNEL_ACCOUNT_CREATED still pending")
    _customer_writes(stack, "Hello, my parcel is late")
    thread_id = str(_only_ticket(stack)["threadId"])
    _agent_replies(stack, thread_id, "Sorry about that, let me check")
    _customer_writes(stack, "Order 4711, thank you")
    _agent_replies(stack, thread_id, "It leaves the warehouse today")
    _customer_writes(stack, "Great, bye")
    conversation = ["Hello, my parcel is late", "Sorry about that, let me check",
                    "Order 4711, thank you", "It leaves the warehouse today", "Great, bye"]

    ticket = _only_ticket(stack)  # one ticket: everything was within 24 h (R20)
    assert [m["text"] for m in ticket["messages"]] == conversation
    assert [m["direction"] for m in ticket["messages"]] == [
        "INCOMING", "OUTGOING", "INCOMING", "OUTGOING", "INCOMING"]
    # The agent's screen: the help desk's ticket view shows every message, in that order.
    page = stack.hubspot.get(f"/help-desk/{PORTAL}/tickets/{ticket['id']}")
    assert page.status_code == 200
    positions = [page.text.find(text) for text in conversation]
    assert -1 not in positions, dict(zip(conversation, positions, strict=True))
    assert positions == sorted(positions)


def test_R26_without_a_template_a_reply_outside_the_window_fails_and_no_template_is_sent(
    stack: Stack,
) -> None:
    """No template is configured (the default): after the window closed (R24) the reply is
    FAILED with the window's message, and nothing, template or text, leaves through Aircall."""
    stack.connect()
    _until(lambda: _hubspot_webhooks_settled(stack), "CHANNEL_ACCOUNT_CREATED still pending")
    _customer_writes(stack, "Hello, anyone there?")
    thread_id = str(_only_ticket(stack)["threadId"])
    # Every clock past the window, the service's first: the web app that moves its offset
    # uses it at once (bootstrap.StoredClockOffset.move), before HubSpot signs with its own.
    for side in (stack.bridge, stack.hubspot, stack.aircall):
        assert side.post("/_sandbox/clock", json={"advance_seconds": 24 * 3600 + 1}
                         ).status_code == 200
    hubspot_id = _agent_replies(stack, thread_id, "Sorry for the delay")

    [reply] = [m for m in _only_ticket(stack)["messages"] if m["id"] == hubspot_id]
    assert reply["status"] == "FAILED"
    assert reply["failureDetails"]["errorMessage"] == WINDOW_CLOSED_MESSAGE
    conversation = stack.aircall.get("/_sandbox/customer/conversation",
                                     params={"phone": CUSTOMER}).json()["messages"]
    assert [(m["direction"], m["type"]) for m in conversation] == [("inbound", "text")]
    assert stack.aircall.get("/_sandbox/customer/inbox",
                             params={"phone": CUSTOMER}).json()["messages"] == []
