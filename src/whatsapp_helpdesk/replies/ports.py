"""What the replies slice needs from the composition root (issue 13 item 1).

An agent's reply checked and sent through Aircall, its status told to HubSpot: the
database, the clock, Aircall's API and HubSpot's portal API with their tokens.
`bootstrap.Services` satisfies it: the slice never imports bootstrap.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import AircallApi, HubSpotApi, StoredCredentials


class RepliesDeps(StoredCredentials, HubSpotApi, AircallApi, Protocol):
    """Every capability the slice's functions use."""
