"""The base of each emulator's `SandboxState`: what every emulator remembers besides its
own records, its configuration and the injected faults (`kit.faults`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from whatsapp_helpdesk.sandbox.kit.faults import Fault

ConfigT = TypeVar("ConfigT")


@dataclass(kw_only=True)
class EmulatorState(Generic[ConfigT]):
    """Replaced wholesale on reset; a snapshot deep-copies it."""

    config: ConfigT
    faults: list[Fault] = field(default_factory=list)


class IdSequence:
    """Monotonic ids from `start`. A plain number rather than an `itertools.count`, whose
    copying Python 3.12 deprecates and 3.14 removes (a snapshot deep-copies the state)."""

    def __init__(self, start: int) -> None:
        self._next = start

    def take(self) -> int:
        self._next += 1
        return self._next - 1

    def next(self) -> str:
        """The next id as a numeric string (HubSpot's ids)."""
        return str(self.take())
