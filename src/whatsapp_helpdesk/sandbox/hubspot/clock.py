"""The sandbox HubSpot's clock (the kit's `SandboxClock`) and HubSpot's time forms.

Every instant the sandbox records or compares (message times, token and staging-token
expiry, rate-limit windows, webhook timestamps) comes from the clock, so a test or a demo
can jump ahead without waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime

from whatsapp_helpdesk.sandbox.kit.clock import SandboxClock, to_iso

__all__ = ["SandboxClock", "from_unix", "parse_iso", "to_iso"]


def from_unix(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date-time; naive values are taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
