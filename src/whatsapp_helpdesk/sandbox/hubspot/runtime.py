"""The live sandbox: state, clock, background webhook tasks."""

from __future__ import annotations

import httpx

from whatsapp_helpdesk.sandbox.hubspot.config import SandboxConfig
from whatsapp_helpdesk.sandbox.hubspot.seed import seeded_state
from whatsapp_helpdesk.sandbox.hubspot.state import SandboxState
from whatsapp_helpdesk.sandbox.hubspot.webhooks import WebhookDispatcher
from whatsapp_helpdesk.sandbox.kit.runtime import SandboxRuntime


class Sandbox(SandboxRuntime[SandboxConfig, SandboxState]):
    """One emulated HubSpot, kept on `app.state.sandbox`.

    `webhook_transport` may be replaced (e.g. by `httpx.ASGITransport(receiver_app)`) so
    tests can deliver webhooks without a network; None means real HTTP.
    """

    def __init__(self, public_base_url: str, demo_home_url: str | None = None) -> None:
        super().__init__(public_base_url, demo_home_url)
        self.webhooks = WebhookDispatcher(self)
        self.webhook_transport: httpx.AsyncBaseTransport | None = None

    def seed(self) -> SandboxState:
        return seeded_state(self.clock.now())
