"""How long a failing delivery is retried (R44, issue 11 item 5).

The budget is time, not a count of attempts: temporary errors (5xx, timeouts, dropped
connections) are retried for `DELIVERY_RETRY_HOURS` from the first of them, then the
delivery fails for good. A rate-limit answer (429) is the provider asking us to wait: its
wait is taken as asked and never spends the budget. A reply to a customer also stops when
its next try would come after WhatsApp's customer-service window has closed: it could not
be sent then, and that is the reason given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from whatsapp_helpdesk.domain.window import CUSTOMER_SERVICE_WINDOW, WINDOW_CLOSED_MESSAGE

# Our adapters' temporary errors end with this (http_transport.py, media): true while
# the delivery waits, false once it has failed for good.
_WILL_RETRY = "; will retry."


@dataclass(frozen=True)
class RetryIn:
    delay: timedelta


@dataclass(frozen=True)
class GiveUp:
    reason: str  # the entry's final error: gave_up_reason's, or the window's (R24)


def after_temporary_failure(
    *,
    error: str,
    rate_limited: bool,
    wait: timedelta,
    now: datetime,
    retrying_since: datetime | None,
    budget: timedelta,
    last_customer_message_at: datetime | None = None,
) -> RetryIn | GiveUp:
    """Retry after `wait`, or give up with one clear reason.

    `retrying_since` is when the current run of temporary failures began (None: this is
    the first); `last_customer_message_at` is given for replies only."""
    next_try = now + wait
    if last_customer_message_at is not None and (
        next_try - last_customer_message_at >= CUSTOMER_SERVICE_WINDOW
    ):
        return GiveUp(WINDOW_CLOSED_MESSAGE)
    if not rate_limited and next_try - (retrying_since or now) > budget:
        return GiveUp(gave_up_reason(error, budget))
    return RetryIn(wait)


def gave_up_reason(error: str, budget: timedelta) -> str:
    """The final status: what went wrong, and that we stopped — never "will retry"."""
    cause = error[: -len(_WILL_RETRY)] if error.endswith(_WILL_RETRY) else error.rstrip()
    if not cause.endswith((".", "!", "?")):
        cause += "."
    return f"{cause} Gave up after retrying for {_duration(budget)}."


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours >= 1:
        whole = f"{hours:g}"
        return f"{whole} hour" if whole == "1" else f"{whole} hours"
    minutes = max(1, round(span.total_seconds() / 60))
    return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
