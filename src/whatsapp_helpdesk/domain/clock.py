"""The clock port. Rules never call `datetime.now()`; they are handed a clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, and the edges of the 24 h rules)."""

    def __init__(self, start: datetime | None = None):
        self._now = start or datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, **delta: float) -> datetime:
        self._now += timedelta(**delta)
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment


class OffsetClock:
    """System time plus an offset read from elsewhere (the sandbox's "jump the clock").

    Only ever built in sandbox mode: a service configured for the real HubSpot and
    Aircall has no way to move its clock (issue 6).
    """

    def __init__(self, offset_seconds: Callable[[], float]):
        self._offset_seconds = offset_seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self._offset_seconds())
