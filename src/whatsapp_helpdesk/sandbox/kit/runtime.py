"""The base of each emulator's live `Sandbox`: where it is served, its clock, its state,
its background tasks, and the reset back to the seed."""

from __future__ import annotations

from typing import Generic, TypeVar

from whatsapp_helpdesk.sandbox.kit.background import BackgroundTasks
from whatsapp_helpdesk.sandbox.kit.clock import SandboxClock

StateT = TypeVar("StateT")


class SandboxRuntime(BackgroundTasks, Generic[StateT]):
    """One emulated provider, kept on `app.state.sandbox`; `seed` gives its fresh state."""

    def __init__(self, public_base_url: str, demo_home_url: str | None = None) -> None:
        super().__init__()
        self.base_url = public_base_url.rstrip("/")
        # The page the screens link back to (the service's sandbox home under `serve`).
        self.demo_home_url = demo_home_url
        self.clock = SandboxClock()
        self.state: StateT = self.seed()

    def seed(self) -> StateT:
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the seed: state (records, configuration, faults), clock, background work."""
        self.cancel_background_tasks()
        self.clock = SandboxClock()
        self.state = self.seed()
