"""The sandbox clock: real time plus an adjustable offset.

Every instant the sandbox records or compares (message times, token and staging-token
expiry, rate-limit windows, webhook timestamps) comes from here, so a test or a demo can
jump ahead without waiting.
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
    """HubSpot's ISO form: UTC, millisecond precision, `Z` ("2025-06-01T10:15:00.000Z")."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date-time; naive values are taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
