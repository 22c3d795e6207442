"""Per-company request budget (§A3): fixed one-minute windows on the sandbox clock (the
window is a sandbox setting, `rate_limit_window_seconds`, to run paced tests in seconds)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.state import RateWindow, SandboxState


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # UNIX seconds (the unit most clients assume, §A3)

    def headers(self) -> dict[str, str]:
        limit_h, remaining_h, reset_h = constants.RATE_LIMIT_HEADERS
        return {
            limit_h: str(self.limit),
            remaining_h: str(self.remaining),
            reset_h: str(self.reset_at),
        }


def consume(state: SandboxState, company_id: int, now: float) -> RateDecision:
    """Count one request of `company_id`; refuse it once the minute's budget is spent."""
    limit = state.config.rate_limit_per_minute
    length = state.config.rate_limit_window_seconds
    window = state.rate_windows.get(company_id)
    if window is None or now >= window.started_at + length:
        window = RateWindow(started_at=now)
        state.rate_windows[company_id] = window
    reset_at = math.ceil(window.started_at + length)
    if window.count >= limit:
        return RateDecision(False, limit, 0, reset_at)
    window.count += 1
    return RateDecision(True, limit, limit - window.count, reset_at)


def exhausted(limit: int, now: float) -> RateDecision:
    """What an injected `rate_limit` fault answers."""
    return RateDecision(False, limit, 0, math.ceil(now + constants.RATE_LIMIT_WINDOW_SECONDS))


def too_many_requests_body(decision: RateDecision) -> dict[str, str]:
    return {
        "error": constants.RATE_LIMIT_ERROR,
        "troubleshoot": (
            f"Rate limit of {decision.limit} requests per minute reached for this company; "
            f"retry after {decision.reset_at} (X-AircallApi-Reset, UNIX seconds)."
        ),
    }
