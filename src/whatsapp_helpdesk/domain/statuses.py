"""The life of an agent's reply, and what HubSpot is told about it (R23).

    pending → sending → sent → delivered → read
        └────────┴────────┴──→ failed            (terminal)

A status only ever moves forward: Aircall delivers `message.status_updated` in any order
and more than once (reference aircall §A8.5), and a late "sent" must not undo "read".
`failed` is terminal and is reachable only before the customer's phone confirmed the
message (after "delivered" a failure report is stale news, not a failure).

HubSpot knows three of these (reference hubspot §4.3): SENT, READ and FAILED. "delivered"
has no HubSpot counterpart and stays SENT there.
"""

from __future__ import annotations

from typing import Final, Literal

OutboundStatus = Literal["pending", "sending", "sent", "delivered", "read", "failed"]
HubSpotStatus = Literal["SENT", "READ", "FAILED"]

PENDING: Final = "pending"
SENDING: Final = "sending"
SENT: Final = "sent"
DELIVERED: Final = "delivered"
READ: Final = "read"
FAILED: Final = "failed"

_FORWARD_ORDER: Final[tuple[OutboundStatus, ...]] = (PENDING, SENDING, SENT, DELIVERED, READ)
# Before the phone confirmed it, Meta (through Aircall) may still refuse the message.
_MAY_STILL_FAIL: Final = frozenset({PENDING, SENDING, SENT})

_HUBSPOT: Final[dict[str, HubSpotStatus]] = {
    SENT: "SENT", DELIVERED: "SENT", READ: "READ", FAILED: "FAILED",
}

# Aircall's WhatsApp status strings (§A7, §E1: the full list is unknown). Known words are
# mapped; anything else is treated as "nothing new" (non-terminal), never as a failure.
_FROM_AIRCALL: Final[dict[str, OutboundStatus]] = {
    "sent": SENT,
    "delivered": DELIVERED,
    "read": READ,
    "failed": FAILED,
    "undelivered": FAILED,
    "error": FAILED,
}


def may_advance(current: str, new: str) -> bool:
    """True when `new` is a step forward from `current` (R23: never backwards)."""
    if current in (FAILED, new):
        return False
    if new == FAILED:
        return current in _MAY_STILL_FAIL
    if new not in _FORWARD_ORDER or current not in _FORWARD_ORDER:
        return False
    return _FORWARD_ORDER.index(new) > _FORWARD_ORDER.index(current)


def hubspot_status(status: str) -> HubSpotStatus | None:
    """What HubSpot shows for our status; None while the reply is not out yet."""
    return _HUBSPOT.get(status)


def news_for_hubspot(old: str, new: str) -> HubSpotStatus | None:
    """The status to PATCH into HubSpot when a reply moves from `old` to `new`, or None
    when HubSpot's view does not change (e.g. sent → delivered)."""
    before, after = hubspot_status(old), hubspot_status(new)
    return after if after is not None and after != before else None


def from_aircall(status: str | None) -> OutboundStatus | None:
    """Our status for an Aircall `message.status_updated` status, or None if it says
    nothing we act on."""
    return _FROM_AIRCALL.get((status or "").strip().lower())
