"""May this agent reply go out on WhatsApp? (R6, R8, R24, R25)

Each check is its own pure function returning a `Refused` with words an agent understands,
or None; `check_outbound_reply` runs them in the order an agent needs the answers: first
whether the channel can send at all, then whether WhatsApp allows a free reply now, then
whether the content can be carried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from whatsapp_helpdesk.domain.content import PlainText, Refused, check_reply
from whatsapp_helpdesk.domain.eligibility import CONVERSATION_SCOPES
from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE, window_is_open

CHANNEL_DISCONNECTED_MESSAGE = (
    "This WhatsApp number is no longer connected to the help desk, so the reply was not "
    "sent. Reconnect the number from the integration's dashboard, then send it again."
)
CHANNEL_NOT_AUTHORISED_MESSAGE = (
    "The WhatsApp channel account is no longer authorised in HubSpot, so the reply was not "
    "sent. Re-authorise the channel in HubSpot's channel settings, then send it again."
)
SCOPES_MISSING_MESSAGE = (
    "The integration no longer holds HubSpot's conversation permissions, so the reply was "
    "not sent. An admin must re-authorise HubSpot from the integration's dashboard."
)


@dataclass(frozen=True)
class ChannelFacts:
    """What we know of the channel account the reply came on."""

    connected: bool  # our row exists and was not disconnected (R6)
    authorized: bool  # HubSpot has not de-authorised it (CHANNEL_ACCOUNT_UPDATED)


@dataclass(frozen=True)
class ReplyFacts:
    channel: ChannelFacts
    granted_scopes: frozenset[str]
    last_customer_message_at: datetime | None  # provider timestamp (R24)
    text: str | None
    rich_text: str | None
    attachment_count: int


def channel_usable(channel: ChannelFacts) -> Refused | None:
    """R6: a disconnected or de-authorised channel carries no traffic."""
    if not channel.connected:
        return Refused(CHANNEL_DISCONNECTED_MESSAGE)
    if not channel.authorized:
        return Refused(CHANNEL_NOT_AUTHORISED_MESSAGE)
    return None


def scopes_granted(granted: Iterable[str]) -> Refused | None:
    """R8: without the custom-channel scopes we may not act on the channel."""
    if not frozenset(granted) >= CONVERSATION_SCOPES:
        return Refused(SCOPES_MISSING_MESSAGE)
    return None


def window_open(last_customer_message_at: datetime | None, now: datetime) -> Refused | None:
    """R24: free-form replies only within 24 h of the customer's last message."""
    if not window_is_open(last_customer_message_at, now):
        return Refused(WINDOW_CLOSED_MESSAGE)
    return None


def check_outbound_reply(facts: ReplyFacts, now: datetime) -> PlainText | Refused:
    """The WhatsApp text to send, or the first reason it must not be sent."""
    for refusal in (
        channel_usable(facts.channel),
        scopes_granted(facts.granted_scopes),
        window_open(facts.last_customer_message_at, now),
    ):
        if refusal is not None:
            return refusal
    # R25: plain text only; simple rich text becomes WhatsApp markup, the rest is refused.
    return check_reply(
        text=facts.text, rich_text=facts.rich_text, attachment_count=facts.attachment_count
    )
