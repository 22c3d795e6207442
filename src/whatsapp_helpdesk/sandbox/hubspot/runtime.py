"""The live sandbox: state, clock, background webhook tasks."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx

from whatsapp_helpdesk.sandbox.hubspot.clock import SandboxClock
from whatsapp_helpdesk.sandbox.hubspot.config import SandboxConfig
from whatsapp_helpdesk.sandbox.hubspot.seed import seeded_state
from whatsapp_helpdesk.sandbox.hubspot.state import SandboxState
from whatsapp_helpdesk.sandbox.hubspot.webhooks import WebhookDispatcher


class Sandbox:
    """One emulated HubSpot, kept on `app.state.sandbox`.

    `webhook_transport` may be replaced (e.g. by `httpx.ASGITransport(receiver_app)`) so
    tests can deliver webhooks without a network; None means real HTTP.
    """

    def __init__(self, public_base_url: str, demo_home_url: str | None = None) -> None:
        self.base_url = public_base_url.rstrip("/")
        # The page the screens link back to (the service's sandbox home under `serve`).
        self.demo_home_url = demo_home_url
        self.clock = SandboxClock()
        self.state: SandboxState = seeded_state(self.clock.now())
        self.webhooks = WebhookDispatcher(self)
        self.webhook_transport: httpx.AsyncBaseTransport | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run on the serving loop in the background; `reset` cancels it."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until no background delivery is running (tests use it)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def reset(self) -> None:
        """Back to the seed: records, configuration, clock, faults, pending deliveries."""
        self.cancel_background_tasks()
        self.clock = SandboxClock()
        self.state = seeded_state(self.clock.now())

    def cancel_background_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        self.cancel_background_tasks()
        await asyncio.gather(*tasks, return_exceptions=True)
