"""What the inbound slice needs from the composition root (issue 13 item 1).

Aircall's webhook stored, the message published in HubSpot, its file fetched: the
database, the clock, the settings (webhook limits, media budget), HubSpot's portal API with
its tokens, and the HTTP client that downloads a file.

How the composition root satisfies it: adapter_ports.py.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import (
    Configured,
    Http,
    HubSpotPortals,
    StoredCredentials,
)


class InboundDeps(StoredCredentials, Configured, Http, HubSpotPortals, Protocol):
    """Every capability the slice's functions use."""
