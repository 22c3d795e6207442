"""The ticket rule (R12, R20): the service, not HubSpot, decides when a ticket starts.

A conversation (business number, customer number) is cut into tickets by inactivity:
a message joins the ticket of the activity just before it when that activity is less
than `inactivity` old; otherwise it starts a new ticket. "Activity" is a message exchanged
in either direction (a reply that failed, or was written outside WhatsApp's window, is not:
`counts_as_activity`), placed in time by the provider's timestamp (R15), so the rule gives the
same answer whatever order Aircall delivered the messages in.

Edge: exactly `inactivity` (24:00:00) of silence starts a new ticket; 23:59:59 does not.
This matches the customer-service window, which is open for *less than* 24 h (R24).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from whatsapp_helpdesk.domain.window import window_is_open


@dataclass(frozen=True)
class Activity:
    at: datetime  # provider timestamp (R15)
    ticket_id: int


@dataclass(frozen=True)
class JoinTicket:
    ticket_id: int


@dataclass(frozen=True)
class StartTicket:
    pass


TicketDecision = JoinTicket | StartTicket


def choose_ticket(
    message_at: datetime,
    *,
    before: Activity | None,
    after: Activity | None,
    inactivity: timedelta,
) -> TicketDecision:
    """Decide the ticket of a message from its neighbours in the conversation's timeline.

    `before` is the latest activity at or before the message, `after` the earliest one
    after it (non-None only when a later message was placed first: a late delivery).
    """
    if before is not None and message_at - before.at < inactivity:
        return JoinTicket(before.ticket_id)
    # A late-delivered first message of a burst joins the ticket its successors opened
    # rather than opening a second ticket for the same burst (R15).
    if after is not None and after.at - message_at < inactivity:
        return JoinTicket(after.ticket_id)
    return StartTicket()


@dataclass(frozen=True)
class PlacedMessage:
    """What the activity rule needs of a message already placed in a ticket."""

    ticket_id: int
    inbound: bool  # the customer's message, not an agent's reply
    failed: bool  # a reply refused by us or lost at Aircall
    sent_at: datetime  # provider timestamp (R15)
    # The customer's latest message at or before `sent_at`: what opened WhatsApp's window
    # for a reply (None when the customer had not written yet).
    last_customer_message_at: datetime | None


def counts_as_activity(message: PlacedMessage) -> bool:
    """Activity is a message exchanged (R20). A customer's message always is. A reply is
    not when it failed, nor when it was written outside WhatsApp's window: that one is
    refused whenever the worker gets to it, so it is decided from the timestamps alone, and
    the ticket rule gives the same answer whether the customer's next message is placed
    before or after the refusal."""
    if message.inbound:
        return True
    if message.failed:
        return False
    return window_is_open(message.last_customer_message_at, message.sent_at)


def nearest_activity(candidates: Iterable[PlacedMessage]) -> Activity | None:
    """The first of `candidates` (nearest first) that counts as activity, if any."""
    for message in candidates:
        if counts_as_activity(message):
            return Activity(message.sent_at, message.ticket_id)
    return None
