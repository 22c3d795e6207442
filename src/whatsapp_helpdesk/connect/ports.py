"""What the connect slice needs from the composition root (issue 13 item 1).

Install, pop-up, channel accounts, re-authorisation and the numbers list: the database,
the clock, the settings (URLs, pacing shares), both providers' APIs and OAuth, and the
stored tokens.

How the composition root satisfies it: adapter_ports.py.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import (
    AircallApp,
    AircallCompanies,
    Configured,
    HubSpotApp,
    HubSpotChannel,
    HubSpotPortals,
    StoredCredentials,
)


class ConnectDeps(
    StoredCredentials, Configured, HubSpotPortals, HubSpotChannel, HubSpotApp,
    AircallCompanies, AircallApp, Protocol,
):
    """Every capability the slice's functions use."""
