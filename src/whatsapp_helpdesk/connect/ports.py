"""What the connect slice needs from the composition root (issue 13 item 1).

Install, pop-up, channel accounts, re-authorisation and the numbers list: the database,
the clock, the settings (URLs, pacing shares), both providers' APIs and OAuth, and the
stored tokens.
`bootstrap.Services` satisfies it: the slice never imports bootstrap.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import AircallApi, Configured, HubSpotApi, StoredCredentials


class ConnectDeps(StoredCredentials, Configured, HubSpotApi, AircallApi, Protocol):
    """Every capability the slice's functions use."""
