"""In-process harness for the sandbox HubSpot tests (httpx.ASGITransport, no network).

Every exchange on `hub.http` that targets a HubSpot API path is checked against HubSpot's
OpenAPI files (`tests/openapi_hubspot.py`) by an httpx response hook. Tests that send a
deliberately invalid request wrap it in `hub.unchecked_request()` (the response is still
checked). Webhooks go to a `WebhookRecorder` through an `httpx.MockTransport`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_hubspot import check_request, check_response, spec_file_for

from whatsapp_helpdesk.sandbox.hubspot import create_app

BASE_URL = "http://hubspot.sandbox.test"
CLIENT_ID = "sandbox-hubspot-client-id"
CLIENT_SECRET = "sandbox-hubspot-client-secret"
DEVELOPER_KEY = {"hapikey": "sandbox-developer-api-key", "appId": "1001"}
WEBHOOK_URL = "http://bridge.test/hubspot/custom-channel/webhook?source=hubspot"
CONNECT_URL = "http://bridge.test/hubspot/connect"
REDIRECT_URI = "http://bridge.test/oauth/hubspot/callback"
ALL_SCOPES = (
    "conversations.read conversations.write conversations.custom_channels.read "
    "conversations.custom_channels.write crm.objects.contacts.read crm.objects.contacts.write "
    "tickets"
)
BUSINESS_NUMBER = "+33123456789"
JANE_PHONE = "+33612345678"
CAPABILITIES: dict[str, Any] = {
    "deliveryIdentifierTypes": ["HS_PHONE_NUMBER"],
    "threadingModel": "INTEGRATION_THREAD_ID",
    "richText": [],
    "allowInlineImages": False,
    "allowOutgoingMessages": True,
    "allowConversationStart": False,
    "allowMultipleRecipients": False,
    "outgoingAttachmentTypes": [],
}


def expected_signature_v3(*, method: str, url: str, body: bytes, timestamp: str) -> str:
    """HubSpot v3 signature computed here, independently of the sandbox (reference §5)."""
    message = f"{method}{url}".encode() + body + timestamp.encode()
    digest = hmac.new(CLIENT_SECRET.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass
class ReceivedWebhook:
    url: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.raw)
        return value


@dataclass
class WebhookRecorder:
    """Plays the integration's webhook endpoint; answers can be scripted."""

    received: list[ReceivedWebhook] = field(default_factory=list)
    plan: deque[int] = field(default_factory=deque)

    def answer(self, status: int, *, times: int = 1) -> None:
        self.plan.extend([status] * times)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.received.append(
            ReceivedWebhook(str(request.url), dict(request.headers), request.content)
        )
        status = self.plan.popleft() if self.plan else 204
        return httpx.Response(status)

    def bodies(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [r.body for r in self.received if event_type in (None, r.body["type"])]


class Hub:
    """The sandbox under test plus helpers that play the integration and HubSpot users."""

    def __init__(self, app: FastAPI, http: httpx.AsyncClient, webhooks: WebhookRecorder) -> None:
        self.app = app
        self.sandbox = app.state.sandbox
        self.http = http
        self.webhooks = webhooks
        self.check_requests = True

    @contextmanager
    def unchecked_request(self) -> Iterator[None]:
        """The next requests break HubSpot's schema on purpose; responses are still checked."""
        self.check_requests = False
        try:
            yield
        finally:
            self.check_requests = True

    async def drain(self) -> None:
        await self.sandbox.drain()

    # --- OAuth -------------------------------------------------------------------------------

    async def authorize(self, *, scope: str = ALL_SCOPES, portal_id: int = 4242) -> str:
        response = await self.http.get(
            "/oauth/authorize",
            params={"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": scope,
                    "state": "st-1", "portal_id": str(portal_id)},
        )
        assert response.status_code == 302, response.text
        return str(httpx.URL(response.headers["location"]).params["code"])

    async def exchange(self, code: str) -> dict[str, Any]:
        response = await self.http.post(
            "/oauth/v1/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                  "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def token(self, *, portal_id: int = 4242, scope: str = ALL_SCOPES) -> str:
        tokens = await self.exchange(await self.authorize(scope=scope, portal_id=portal_id))
        return str(tokens["access_token"])

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    # --- channel setup -----------------------------------------------------------------------

    async def create_channel(self, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "WhatsApp with Aircall",
            "webhookUrl": WEBHOOK_URL,
            "channelAccountConnectionRedirectUrl": CONNECT_URL,
            "channelDescription": "Reply to WhatsApp conversations from HubSpot",
            "channelLogoUrl": "http://bridge.test/logo.png",
            "capabilities": dict(CAPABILITIES),
            **overrides,
        }
        body = {k: v for k, v in body.items() if v is not None}  # None: leave the key out
        response = await self.http.post(
            "/conversations/v3/custom-channels", params=DEVELOPER_KEY, json=body
        )
        assert response.status_code == 201, response.text
        channel: dict[str, Any] = response.json()
        return channel

    async def start_connection(self, channel_id: str, *, portal_id: int = 4242) -> dict[str, Any]:
        response = await self.http.post(
            f"/_sandbox/portals/{portal_id}/channel-connections",
            json={"channelId": channel_id, "userId": 1 if portal_id == 4242 else 3},
        )
        assert response.status_code == 201, response.text
        started: dict[str, Any] = response.json()
        return started

    async def patch_staging_token(
        self, channel_id: str, account_token: str, token: str, *, number: str = BUSINESS_NUMBER
    ) -> httpx.Response:
        return await self.http.patch(
            f"/conversations/v3/custom-channels/{channel_id}/channel-account-staging-tokens/"
            f"{account_token}",
            headers=self.bearer(token),
            json={"accountName": f"WhatsApp {number}",
                  "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": number}},
        )

    async def create_account(
        self, channel_id: str, token: str, *, number: str = BUSINESS_NUMBER, inbox_id: str = "5001"
    ) -> dict[str, Any]:
        response = await self.http.post(
            f"/conversations/v3/custom-channels/{channel_id}/channel-accounts",
            headers=self.bearer(token),
            json={"inboxId": inbox_id, "name": f"WhatsApp {number}", "authorized": True,
                  "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": number}},
        )
        assert response.status_code == 201, response.text
        account: dict[str, Any] = response.json()
        return account

    async def setup(self, **channel_overrides: Any) -> tuple[str, str, str]:
        """(token, channel id, channel account id) ready for messages."""
        token = await self.token()
        channel = await self.create_channel(**channel_overrides)
        account = await self.create_account(channel["id"], token)
        return token, str(channel["id"]), str(account["id"])

    # --- messages -----------------------------------------------------------------------------

    @staticmethod
    def message_egg(
        account_id: str,
        text: str = "Hi, my order hasn't arrived",
        *,
        sender: str = JANE_PHONE,
        sender_name: str | None = "Jane Doe",
        thread: str | None = "conv-1",
        idempotency_id: str | None = None,
        timestamp: str = "2025-06-01T10:15:00Z",
        direction: str = "INCOMING",
    ) -> dict[str, Any]:
        customer: dict[str, Any] = {
            "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": sender}
        }
        if sender_name:
            customer["name"] = sender_name
        business = {"deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": BUSINESS_NUMBER}}
        incoming = direction == "INCOMING"
        egg: dict[str, Any] = {
            "channelAccountId": account_id,
            "messageDirection": direction,
            "text": text,
            "timestamp": timestamp,
            "senders": [customer if incoming else business],
            "recipients": [business if incoming else customer],
            "attachments": [],
        }
        if thread is not None:
            egg["integrationThreadId"] = thread
        if idempotency_id is not None:
            egg["integrationIdempotencyId"] = idempotency_id
        return egg

    async def publish(
        self, token: str, channel_id: str, egg: dict[str, Any]
    ) -> httpx.Response:
        return await self.http.post(
            f"/conversations/v3/custom-channels/{channel_id}/messages",
            headers=self.bearer(token),
            json=egg,
        )

    async def tickets(self, portal_id: int = 4242) -> list[dict[str, Any]]:
        response = await self.http.get(f"/_sandbox/portals/{portal_id}/tickets")
        assert response.status_code == 200, response.text
        tickets: list[dict[str, Any]] = response.json()["tickets"]
        return tickets

    async def reply(
        self, thread_id: str, text: str = "Sorry about that", **extra: Any
    ) -> dict[str, Any]:
        response = await self.http.post(
            f"/_sandbox/portals/4242/threads/{thread_id}/replies", json={"text": text, **extra}
        )
        assert response.status_code == 201, response.text
        message: dict[str, Any] = response.json()
        return message

    async def advance(self, seconds: float) -> None:
        response = await self.http.post("/_sandbox/clock", json={"advance_seconds": seconds})
        assert response.status_code == 200, response.text


def _is_api_path(path: str) -> bool:
    if path.startswith(("/_sandbox", "/help-desk")) or path in ("/", "/oauth/authorize"):
        return False
    try:
        spec_file_for(path)
    except AssertionError:
        return False
    return True


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@functools.cache
def _the_app() -> FastAPI:
    """One app per test process, put back to its seed by each test's `hub`: FastAPI builds an
    app's routes on its first requests (most of a fresh app's cost, for the dated routes)."""
    return create_app(public_base_url=BASE_URL)


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    app = _the_app()
    app.state.sandbox.reset()  # records, configuration, faults, clock, background tasks
    recorder = WebhookRecorder()
    app.state.sandbox.webhook_transport = httpx.MockTransport(recorder.handle)
    app.state.sandbox.config.webhook_retry_schedule = [0.01, 0.01]
    holder: dict[str, Hub] = {}

    async def check(response: httpx.Response) -> None:
        if not _is_api_path(response.request.url.path):
            return
        await response.aread()
        if holder["hub"].check_requests:
            check_request(response.request)
        check_response(response)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, event_hooks={"response": [check]}
    ) as http:
        holder["hub"] = Hub(app, http, recorder)
        yield holder["hub"]
        await app.state.sandbox.aclose()
