"""Which numbers the connection pop-up may offer (R3): all five conditions must hold.

Each condition is its own function so the page can say, in words, which ones fail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# R3 (c): the HubSpot grant must include the custom-channel scopes (reference §6 and
# aircall-whatsapp.md §C: Aircall has no "conversation" scope of its own).
CONVERSATION_SCOPES = frozenset(
    {"conversations.custom_channels.read", "conversations.custom_channels.write"}
)


@dataclass(frozen=True)
class NumberFacts:
    whatsapp_enabled: bool  # (a)
    connected_to_hubspot: bool  # (d)
    helpdesk_enabled: bool  # (e)


@dataclass(frozen=True)
class InstallationFacts:
    company_whatsapp_enabled: bool  # (b)
    granted_scopes: frozenset[str]  # (c): holds CONVERSATION_SCOPES


class WhatsAppLine(Protocol):
    """What Aircall says of a number's WhatsApp line (its status endpoint, reference §A5)."""

    @property
    def can_send_message(self) -> bool: ...


def whatsapp_line_usable(line: WhatsAppLine | None) -> bool:
    """The fact behind (a), read when numbers are synced: a WhatsApp line counts when
    Aircall can send on it; a line still PENDING or OFFLINE, or none at all, does not."""
    return line is not None and line.can_send_message


def number_whatsapp_enabled(number: NumberFacts) -> bool:
    """(a) The number has a WhatsApp line at Aircall."""
    return number.whatsapp_enabled


def company_whatsapp_enabled(installation: InstallationFacts) -> bool:
    """(b) The Aircall company has WhatsApp."""
    return installation.company_whatsapp_enabled


def conversation_scope_granted(installation: InstallationFacts) -> bool:
    """(c) The service holds HubSpot's custom-channel scopes."""
    return installation.granted_scopes >= CONVERSATION_SCOPES


def connected_to_hubspot(number: NumberFacts) -> bool:
    """(d) The number is connected to the HubSpot integration (dashboard switch)."""
    return number.connected_to_hubspot


def helpdesk_setting_on(number: NumberFacts) -> bool:
    """(e) The Help Desk setting is on for the number (dashboard switch)."""
    return number.helpdesk_enabled


MISSING = {
    "number_whatsapp": "the number is not enabled for WhatsApp at Aircall",
    "company_whatsapp": "the Aircall company does not have WhatsApp enabled (ask your "
    "Aircall admin to activate it; if it is active, say so on the dashboard under “WhatsApp "
    "for this Aircall company”)",
    "conversation_scope": "the service was not granted HubSpot's conversation scopes "
    "(re-authorise HubSpot from the dashboard)",
    "connected_to_hubspot": "the number is not connected to the HubSpot integration "
    "(switch it on in the dashboard)",
    "helpdesk_setting": "the Help Desk setting is off for the number (switch it on in the "
    "dashboard)",
}


def explain(missing: list[str], whatsapp_status: str | None = None) -> list[str]:
    """The missing conditions in words. A WhatsApp line that exists at Aircall but cannot
    send yet (PENDING, OFFLINE…) says so, rather than "not enabled for WhatsApp"."""
    return [
        f"the number's WhatsApp line is not ready at Aircall yet (status {whatsapp_status})"
        if key == "number_whatsapp" and whatsapp_status else MISSING[key]
        for key in missing
    ]


class MissingInWords:
    """A number as a page shows it (the pop-up's candidate, the dashboard's row): the keys of
    MISSING it fails (empty = eligible) and its WhatsApp line's status, and those in words."""

    missing: list[str]
    whatsapp_status: str | None

    @property
    def missing_texts(self) -> list[str]:
        return explain(self.missing, self.whatsapp_status)


def missing_conditions(number: NumberFacts, installation: InstallationFacts) -> list[str]:
    """The keys of MISSING that keep a number out of the pop-up; empty means eligible."""
    checks = [
        ("number_whatsapp", number_whatsapp_enabled(number)),
        ("company_whatsapp", company_whatsapp_enabled(installation)),
        ("conversation_scope", conversation_scope_granted(installation)),
        ("connected_to_hubspot", connected_to_hubspot(number)),
        ("helpdesk_setting", helpdesk_setting_on(number)),
    ]
    return [key for key, ok in checks if not ok]


def company_whatsapp_from_numbers(
    override: bool | None, number_whatsapp_flags: Iterable[bool]
) -> bool:
    """R3 (b) has no Aircall API: an admin's statement wins, else any WhatsApp number
    proves the company has the add-on (a number can't have a WhatsApp line without it)."""
    if override is not None:
        return override
    return any(number_whatsapp_flags)
