"""What the native tickets slice needs from the composition root (issue 13 item 1).

Missed calls, voicemails and SMS as CRM tickets, a contact's company: the database,
the clock and HubSpot's portal API with its tokens.

How the composition root satisfies it: adapter_ports.py.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import (
    HubSpotPortals,
    StoredCredentials,
)


class NativeTicketsDeps(StoredCredentials, HubSpotPortals, Protocol):
    """Every capability the slice's functions use."""
