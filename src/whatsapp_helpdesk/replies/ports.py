"""What the replies slice needs from the composition root (issue 13 item 1).

An agent's reply checked and sent through Aircall, its status told to HubSpot: the
database, the clock, Aircall's API for one company, HubSpot's portal API and the
registered custom channel, with their tokens.

How the composition root satisfies it: adapter_ports.py.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import (
    AircallCompanies,
    HubSpotChannel,
    HubSpotPortals,
    StoredCredentials,
)


class RepliesDeps(StoredCredentials, HubSpotPortals, HubSpotChannel, AircallCompanies, Protocol):
    """Every capability the slice's functions use."""
