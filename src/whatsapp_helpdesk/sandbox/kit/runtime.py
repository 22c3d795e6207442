"""The base of each emulator's live `Sandbox`: where it is served, its clock, its state,
its background tasks, the reset back to the seed, and snapshots to come back to."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from whatsapp_helpdesk.sandbox.kit.background import BackgroundTasks
from whatsapp_helpdesk.sandbox.kit.clock import SandboxClock
from whatsapp_helpdesk.sandbox.kit.state import EmulatorState

ConfigT = TypeVar("ConfigT")
StateT = TypeVar("StateT", bound=EmulatorState[Any])

# Snapshots are kept in memory until the sandbox stops; beyond this many the oldest goes.
MAX_SNAPSHOTS = 32


class SnapshotBusy(Exception):
    """Webhook deliveries are in flight: they are not part of what a snapshot keeps."""


@dataclass(frozen=True)
class Snapshot(Generic[StateT]):
    state: StateT
    clock_offset_seconds: float
    extras: Any = None


class SandboxRuntime(BackgroundTasks, Generic[ConfigT, StateT]):
    """One emulated provider, kept on `app.state.sandbox`; `seed` gives its fresh state,
    whose `config` is a `ConfigT`."""

    def __init__(self, public_base_url: str, demo_home_url: str | None = None) -> None:
        super().__init__()
        self.base_url = public_base_url.rstrip("/")
        # The page the screens link back to (the service's sandbox home under `serve`).
        self.demo_home_url = demo_home_url
        self.clock = SandboxClock()
        self.state: StateT = self.seed()
        self._snapshots: dict[str, Snapshot[StateT]] = {}
        self._snapshot_ids = itertools.count(1)

    @property
    def config(self) -> ConfigT:
        config: ConfigT = self.state.config
        return config

    def seed(self) -> StateT:
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the seed: state (records, configuration, faults), clock, background work.
        Snapshots stay."""
        self.cancel_background_tasks()
        self.clock = SandboxClock()
        self.state = self.seed()

    def snapshot(self) -> str:
        """Keep a copy of the state (records, configuration, faults) and of the clock's
        offset under a new id, for `restore` (a sandbox extension: a test suite installs an
        app once and starts each test from there). Refused while webhook deliveries are in
        flight (`SnapshotBusy`): a restore could not resume them."""
        if self._tasks:
            raise SnapshotBusy(f"{len(self._tasks)} webhook deliveries in flight")
        snapshot_id = str(next(self._snapshot_ids))
        self._snapshots[snapshot_id] = Snapshot(
            copy.deepcopy(self.state), self.clock.offset_seconds,
            copy.deepcopy(self._snapshot_extras()))
        while len(self._snapshots) > MAX_SNAPSHOTS:
            del self._snapshots[next(iter(self._snapshots))]
        return snapshot_id

    def restore(self, snapshot_id: str) -> None:
        """Back to a snapshot, as a reset goes back to the seed: background work cancelled,
        then a copy of the snapshot's state and its clock offset (the clock runs on from
        now). The snapshot stays, to restore again. KeyError for an unknown id."""
        snapshot = self._snapshots[snapshot_id]
        self.reset()
        self.clock = SandboxClock(snapshot.clock_offset_seconds)
        self.state = copy.deepcopy(snapshot.state)
        self._restore_extras(copy.deepcopy(snapshot.extras))

    def _snapshot_extras(self) -> Any:
        """What else than `state` an emulator keeps in a snapshot (none by default)."""
        return None

    def _restore_extras(self, extras: Any) -> None:
        """Put back what `_snapshot_extras` kept (after `reset` has cleared it)."""
