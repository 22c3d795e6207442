"""What the native tickets slice needs from the composition root (issue 13 item 1).

Missed calls, voicemails and SMS as CRM tickets, a contact's company: the database,
the clock and HubSpot's portal API with its tokens.

`bootstrap.Services` satisfies it (mypy --strict checks that where the web, the worker and
the CLI pass it in); the slice never imports bootstrap (import contract
`slices-take-ports-not-the-composition-root`).
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import (
    HubSpotPortals,
    StoredCredentials,
)


class NativeTicketsDeps(StoredCredentials, HubSpotPortals, Protocol):
    """Every capability the slice's functions use."""
