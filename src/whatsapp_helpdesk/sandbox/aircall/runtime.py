"""The live sandbox: state, clock, background tasks and the outgoing HTTP client."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from whatsapp_helpdesk.sandbox.aircall.config import SandboxConfig
from whatsapp_helpdesk.sandbox.aircall.deliveries import WebhookDispatcher
from whatsapp_helpdesk.sandbox.aircall.seed import seeded_state
from whatsapp_helpdesk.sandbox.aircall.serializers import TimestampFormat
from whatsapp_helpdesk.sandbox.aircall.state import SandboxState
from whatsapp_helpdesk.sandbox.kit.runtime import SandboxRuntime


class Sandbox(SandboxRuntime[SandboxConfig, SandboxState]):
    """One emulated Aircall, kept on `app.state.sandbox`."""

    def __init__(self, public_base_url: str, clock_followers: Sequence[str] = (),
                 demo_home_url: str | None = None) -> None:
        super().__init__(public_base_url, demo_home_url)
        # Other clocks the phone's "jump the clock" always moves too (besides its page's
        # `also_notify`); part of how the sandbox was started, so a reset keeps them.
        self.clock_followers = list(clock_followers)
        self.dispatcher = WebhookDispatcher(self)
        self._http: httpx.AsyncClient | None = None

    def seed(self) -> SandboxState:
        return seeded_state()

    def reset(self) -> None:
        """Back to the seed: state, configuration, clock, faults, pending deliveries."""
        super().reset()
        self.dispatcher.clear()

    def _snapshot_extras(self) -> object:
        # The delivery log is the dispatcher's, not the state's: a snapshot keeps it too.
        return list(self.dispatcher.log)

    def _restore_extras(self, extras: object) -> None:
        assert isinstance(extras, list)
        self.dispatcher.log.extend(extras)

    def next_timestamp_format(self, *, for_webhook: bool) -> TimestampFormat:
        """`alternate` flips between ms and ISO at each webhook event; responses stay in ms."""
        chosen = self.config.timestamp_format
        if chosen != "alternate":
            return chosen
        if not for_webhook:
            return "ms"
        self.state.timestamp_format_flip = not self.state.timestamp_format_flip
        return "ms" if self.state.timestamp_format_flip else "iso"

    def http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        await super().aclose()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
