"""Aircall webhook deliveries as the tests of the ingest path post them."""

from __future__ import annotations

import json
import uuid

import httpx

from harness.stack import SUPPORT_FR, Stack


def message_received(token: str, words: str, *, number_id: int = SUPPORT_FR,
                     message_id: str | None = None) -> bytes:
    """A customer's WhatsApp text, as Aircall's `message.received` delivers it."""
    return json.dumps({
        "resource": "message", "event": "message.received", "timestamp": 1_764_000_000,
        "token": token,
        "data": {"id": message_id or uuid.uuid4().hex, "direction": "inbound",
                 "channel": "whatsapp", "status": "received", "type": "text", "body": words,
                 "external_number": "+33612345678", "created_at": 1_764_000_000_000,
                 "number": {"id": number_id, "digits": "+33 1 76 36 06 95"}},
    }).encode()


def post_to_bridge(stack: Stack, body: bytes) -> httpx.Response:
    with httpx.Client(base_url=str(stack.bridge.base_url), timeout=60) as client:
        return client.post("/webhooks/aircall", content=body,
                           headers={"content-type": "application/json"})
