"""HubSpot's per-portal burst limit for public apps: a rolling window (reference §7).

Every API call authenticated for a portal counts; a call over the limit is refused with 429
and is not counted. All times come from the sandbox clock, so advancing it empties windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whatsapp_helpdesk.sandbox.hubspot import constants
from whatsapp_helpdesk.sandbox.hubspot.errors import HubSpotApiError, correlation_id

POLICY_NAME = "TEN_SECONDLY_ROLLING"


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    interval_ms: int = constants.RATE_LIMIT_INTERVAL_MS

    def headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Max": str(self.limit),
            "X-HubSpot-RateLimit-Remaining": str(self.remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.interval_ms),
        }


def take(times: list[float], *, now: float, limit: int,
         interval_ms: int = constants.RATE_LIMIT_INTERVAL_MS) -> RateDecision:
    """Count one request at `now` in the window `times` (mutated) if the limit allows.
    `interval_ms` is HubSpot's 10 s unless a test shortens it (`POST /_sandbox/config`)."""
    window_seconds = interval_ms / 1000
    times[:] = [t for t in times if now - t < window_seconds]
    if len(times) >= limit:
        return RateDecision(allowed=False, limit=limit, remaining=0, interval_ms=interval_ms)
    times.append(now)
    return RateDecision(allowed=True, limit=limit, remaining=limit - len(times),
                        interval_ms=interval_ms)


def rate_limited_body(portal_id: int | None) -> dict[str, Any]:
    """The 429 body HubSpot sends (captured shape, reference §7). It has no `category`."""
    return {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": POLICY_NAME,
        "groupName": f"publicapi:oauth:{constants.APP_ID}:{portal_id or 0}",
    }


def rate_limited(decision: RateDecision, portal_id: int | None) -> HubSpotApiError:
    return HubSpotApiError(429, rate_limited_body(portal_id), headers=decision.headers())
