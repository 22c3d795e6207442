"""The sandbox clock: real time plus an adjustable offset.

Every time the sandbox reads or writes (message timestamps, the 24 h window, webhook
envelopes, the 12 h retry horizon, rate-limit windows) comes from here, so a demo or a test
can jump a day ahead without waiting.
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

    def advance(self, seconds: float) -> None:
        self.offset_seconds += seconds

    def set_offset(self, seconds: float) -> None:
        self.offset_seconds = seconds


def to_unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def to_unix_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def to_iso(moment: datetime) -> str:
    """Aircall's ISO form: millisecond precision, `Z` suffix ("2024-07-30T07:29:21.000Z")."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
