"""WhatsApp's customer-service window (R24, reference §B1).

Free-form replies may be sent while less than 24 h have passed since the customer's last
message, measured from that message's provider timestamp (not from when we stored it:
a webhook retried for hours must not stretch the window). Our own messages never
refresh it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)

WINDOW_CLOSED_MESSAGE = (
    "WhatsApp only allows free replies within 24 hours of the customer's last message; "
    "the customer must write first."
)


def window_is_open(last_customer_message_at: datetime | None, now: datetime) -> bool:
    if last_customer_message_at is None:
        return False
    return now - last_customer_message_at < CUSTOMER_SERVICE_WINDOW
