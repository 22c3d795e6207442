"""The sandbox clock: real time plus an adjustable offset.

Every instant an emulator records or compares comes from its clock, so a test or a demo can
jump ahead without waiting (`POST /_sandbox/clock`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class SandboxClock:
    """UTC wall clock shifted by `offset_seconds`."""

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self.offset_seconds = offset_seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset_seconds)

    def unix(self) -> float:
        return self.now().timestamp()

    def unix_ms(self) -> int:
        return int(self.unix() * 1000)

    def advance(self, seconds: float) -> None:
        self.offset_seconds += seconds

    def set_offset(self, seconds: float) -> None:
        self.offset_seconds = seconds


def to_iso(moment: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix ("2024-07-30T07:29:21.000Z"): the form both
    Aircall and HubSpot write."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
