"""Authenticated requests for the security suite: the Aircall webhook's real token (read
from the sandbox Aircall, which created it) and HubSpot's v3 signature (computed here,
independently of the bridge)."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
from harness.stack import CUSTOMER, PORTAL, Stack

from whatsapp_helpdesk.settings import SANDBOX_HUBSPOT_CLIENT_SECRET

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def aircall_token(stack: Stack, company_id: int = 1) -> str:
    """The token Aircall puts in every delivery of our live webhook."""
    hooks = stack.aircall.get("/_sandbox/webhooks").json()["webhooks"]
    [token] = [h["token"] for h in hooks if h["company_id"] == company_id and h["active"]
               and h["url"].endswith("/webhooks/aircall") and not h["retired"]]
    return str(token)


def aircall_fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / "aircall" / f"{name}.json").read_text()))


def message_received(stack: Stack, **data: Any) -> dict[str, Any]:
    """A valid WhatsApp message.received with the live token; `data` overrides fields."""
    body = copy.deepcopy(aircall_fixture("message_received__whatsapp_text"))
    body["token"] = aircall_token(stack)
    body["data"].update(data)
    return body


def post_aircall(stack: Stack, body: dict[str, Any] | bytes) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stack.bridge.post("/webhooks/aircall", content=raw,
                             headers={"content-type": "application/json"})


def hubspot_headers(stack: Stack, raw: bytes) -> dict[str, str]:
    url = f"{stack.settings.public_url}/webhooks/hubspot"
    # The bridge's clock may run ahead of the wall clock (sandbox clock): sign with its time.
    stamp = str(int(stack.services.clock.now().timestamp() * 1000))
    signature = base64.b64encode(hmac.new(
        SANDBOX_HUBSPOT_CLIENT_SECRET.encode(), b"POST" + url.encode() + raw + stamp.encode(),
        hashlib.sha256).digest()).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp,
            "Content-Type": "application/json"}


def post_hubspot(stack: Stack, body: Any) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return stack.bridge.post("/webhooks/hubspot", content=raw, headers=hubspot_headers(stack, raw))


def wait_for(condition: Any, *, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def conversation_started(stack: Stack, text: str = "Hello, where is my order?") -> str:
    """The number connected, the customer writes; the HubSpot thread of the new ticket."""
    stack.connect()
    wait_for(lambda: not stack.hubspot.get("/_sandbox/webhook-deliveries", params={
        "state": "pending"}).json()["deliveries"])
    stack.customer_says(text)
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    return str(ticket["threadId"])


def agent_replies(stack: Stack, thread_id: str, text: str = "We are on it!") -> None:
    """An agent's reply from the sandbox HubSpot, worked until the phone has it."""
    answer = stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/threads/{thread_id}/replies",
                                json={"text": text})
    assert answer.status_code == 201, answer.text

    def on_the_phone() -> bool:
        stack.drain()
        stack.wait_deliveries()
        inbox = stack.aircall.get("/_sandbox/customer/inbox",
                                  params={"phone": CUSTOMER}).json()["messages"]
        return any(m.get("text") == text or m.get("body") == text for m in inbox)

    wait_for(on_the_phone, timeout=20)
