"""Outgoing webhooks to a channel's `webhookUrl`, with retries and a delivery log.

Body: one JSON object per request (custom-channel events are never batched, reference
§4.1). Headers: `X-HubSpot-Signature-v3`, `X-HubSpot-Request-Timestamp` (ms, sandbox clock),
the legacy `X-HubSpot-Signature` + `-Version: v2`, `Content-Type: application/json`.
A delivery fails when the answer is not 2xx or takes longer than the timeout; it is retried
after each delay of `webhook_retry_schedule` ([UNK] HubSpot's real policy, §10.6), then
marked failed. Every attempt is kept (`GET /_sandbox/webhook-deliveries`).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Coroutine
from typing import Any, Protocol

import httpx

from whatsapp_helpdesk.sandbox.hubspot import constants
from whatsapp_helpdesk.sandbox.hubspot.clock import SandboxClock, to_iso
from whatsapp_helpdesk.sandbox.hubspot.config import SandboxConfig
from whatsapp_helpdesk.sandbox.hubspot.signatures import signature_v2, signature_v3
from whatsapp_helpdesk.sandbox.hubspot.state import (
    Channel,
    DeliveryAttempt,
    SandboxState,
    WebhookDelivery,
)


class Sandbox(Protocol):
    """What deliveries need of the live sandbox (`runtime.Sandbox`, which owns the
    dispatcher): named here so this module does not import the runtime back."""

    clock: SandboxClock
    state: SandboxState
    webhook_transport: httpx.AsyncBaseTransport | None

    @property
    def config(self) -> SandboxConfig: ...

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None: ...


def event_envelope(
    sandbox: Sandbox, event_type: str, portal_id: int, channel_id: str
) -> dict[str, Any]:
    """Fields every custom-channel event carries.

    [INF] `portalId` and `channelId` as strings and `eventTimestamp` as ISO-8601 follow the
    one captured OUTGOING_CHANNEL_MESSAGE_CREATED payload (reference §4.2); the
    CHANNEL_ACCOUNT_* events reuse the same envelope (changelog: "same payload").
    """
    return {
        "type": event_type,
        "portalId": str(portal_id),
        "channelId": channel_id,
        "eventId": str(uuid.uuid4()),
        "eventTimestamp": to_iso(sandbox.clock.now()),
    }


class WebhookDispatcher:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def emit(self, channel: Channel, portal_id: int, payload: dict[str, Any]) -> WebhookDelivery:
        """Record the event and deliver it in the background."""
        state = self.sandbox.state
        delivery = WebhookDelivery(
            id=state.delivery_ids.next(),
            event_type=str(payload["type"]),
            portal_id=portal_id,
            channel_id=channel.id,
            url=channel.webhook_url,
            payload=payload,
            created_at=self.sandbox.clock.now(),
        )
        state.deliveries.append(delivery)
        if not delivery.url:
            delivery.state = "skipped"  # the channel has no webhookUrl yet (reference §1.2)
            return delivery
        self.sandbox.spawn(self._deliver_with_retries(delivery))
        return delivery

    def replay(self, delivery: WebhookDelivery) -> None:
        """Send a logged event again (fresh timestamp and signature, same body)."""
        delivery.state = "pending"
        self.sandbox.spawn(self._deliver_with_retries(delivery))

    async def _deliver_with_retries(self, delivery: WebhookDelivery) -> None:
        delays = list(self.sandbox.config.webhook_retry_schedule)
        while True:
            if await self._attempt(delivery):
                delivery.state = "delivered"
                return
            if not delays:
                delivery.state = "failed"
                return
            await asyncio.sleep(delays.pop(0))

    async def _attempt(self, delivery: WebhookDelivery) -> bool:
        assert delivery.url is not None
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = signed_headers(self.sandbox, delivery.url, body)
        delivery.last_request_headers = headers
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            async with httpx.AsyncClient(
                transport=self.sandbox.webhook_transport,
                timeout=self.sandbox.config.webhook_timeout_seconds,
            ) as client:
                response = await client.post(delivery.url, content=body, headers=headers)
            status_code = response.status_code
        except Exception as exc:  # noqa: BLE001 — any failure (bad URL too) is a failed attempt
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        delivery.attempts.append(
            DeliveryAttempt(
                number=len(delivery.attempts) + 1,
                at=self.sandbox.clock.now(),
                status_code=status_code,
                error=error,
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        )
        return status_code is not None and 200 <= status_code < 300


def signed_headers(sandbox: Sandbox, url: str, body: bytes) -> dict[str, str]:
    timestamp_ms = sandbox.clock.unix_ms()
    secret = constants.CLIENT_SECRET
    return {
        "Content-Type": "application/json",
        "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) (sandbox)",
        "X-HubSpot-Request-Timestamp": str(timestamp_ms),
        "X-HubSpot-Signature-v3": signature_v3(
            client_secret=secret, method="POST", url=url, body=body, timestamp_ms=timestamp_ms
        ),
        "X-HubSpot-Signature": signature_v2(
            client_secret=secret, method="POST", url=url, body=body
        ),
        "X-HubSpot-Signature-Version": "v2",
    }


def delivery_json(delivery: WebhookDelivery, *, include_payload: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": delivery.id,
        "eventType": delivery.event_type,
        "portalId": delivery.portal_id,
        "channelId": delivery.channel_id,
        "url": delivery.url,
        "state": delivery.state,
        "createdAt": to_iso(delivery.created_at),
        "attempts": [
            {
                "number": a.number,
                "at": to_iso(a.at),
                "statusCode": a.status_code,
                "error": a.error,
                "durationMs": a.duration_ms,
            }
            for a in delivery.attempts
        ],
    }
    if include_payload:
        body["payload"] = delivery.payload
        body["requestHeaders"] = delivery.last_request_headers
    return body
