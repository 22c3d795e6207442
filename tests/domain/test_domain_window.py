"""WhatsApp's customer-service window (R24): open for *less than* 24 h after the customer's
last message, measured from that message's provider timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.domain.window import (
    CUSTOMER_SERVICE_WINDOW,
    WINDOW_CLOSED_MESSAGE,
    window_is_open,
)

CUSTOMER_WROTE_AT = datetime(2026, 2, 10, 8, 30, tzinfo=UTC)


def _clock_after(**delta: float) -> ManualClock:
    clock = ManualClock(CUSTOMER_WROTE_AT)
    clock.advance(**delta)
    return clock


def test_R24_window_is_24_hours() -> None:
    assert timedelta(hours=24) == CUSTOMER_SERVICE_WINDOW


def test_R24_window_open_right_after_the_customer_wrote() -> None:
    assert window_is_open(CUSTOMER_WROTE_AT, _clock_after(seconds=0).now())


def test_R24_window_open_at_23h59m59s() -> None:
    now = _clock_after(hours=23, minutes=59, seconds=59).now()

    assert window_is_open(CUSTOMER_WROTE_AT, now)


def test_R24_window_closed_at_24h_exactly() -> None:
    now = _clock_after(hours=24).now()

    assert not window_is_open(CUSTOMER_WROTE_AT, now)


def test_R24_window_closed_at_24h_and_1s() -> None:
    now = _clock_after(hours=24, seconds=1).now()

    assert not window_is_open(CUSTOMER_WROTE_AT, now)


def test_R24_window_closed_when_the_customer_never_wrote() -> None:
    # Only the customer opens the window; our own messages never do.
    assert not window_is_open(None, _clock_after(seconds=1).now())


def test_R24_window_open_when_provider_timestamp_is_slightly_ahead_of_our_clock() -> None:
    # Clock skew between Aircall and us must not close a window the customer just opened.
    now = CUSTOMER_WROTE_AT - timedelta(seconds=5)

    assert window_is_open(CUSTOMER_WROTE_AT, now)


def test_R24_window_closed_message_says_why_and_what_to_do() -> None:
    assert "24 hours" in WINDOW_CLOSED_MESSAGE
    assert "customer must write first" in WINDOW_CLOSED_MESSAGE
