"""The live sandbox: state, clock, background webhook tasks."""

from __future__ import annotations

import httpx

from whatsapp_helpdesk.sandbox.hubspot.clock import SandboxClock
from whatsapp_helpdesk.sandbox.hubspot.config import SandboxConfig
from whatsapp_helpdesk.sandbox.hubspot.seed import seeded_state
from whatsapp_helpdesk.sandbox.hubspot.state import SandboxState
from whatsapp_helpdesk.sandbox.hubspot.webhooks import WebhookDispatcher
from whatsapp_helpdesk.sandbox.kit.background import BackgroundTasks


class Sandbox(BackgroundTasks):
    """One emulated HubSpot, kept on `app.state.sandbox`.

    `webhook_transport` may be replaced (e.g. by `httpx.ASGITransport(receiver_app)`) so
    tests can deliver webhooks without a network; None means real HTTP.
    """

    def __init__(self, public_base_url: str, demo_home_url: str | None = None) -> None:
        super().__init__()
        self.base_url = public_base_url.rstrip("/")
        # The page the screens link back to (the service's sandbox home under `serve`).
        self.demo_home_url = demo_home_url
        self.clock = SandboxClock()
        self.state: SandboxState = seeded_state(self.clock.now())
        self.webhooks = WebhookDispatcher(self)
        self.webhook_transport: httpx.AsyncBaseTransport | None = None

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def reset(self) -> None:
        """Back to the seed: records, configuration, clock, faults, pending deliveries."""
        self.cancel_background_tasks()
        self.clock = SandboxClock()
        self.state = seeded_state(self.clock.now())
