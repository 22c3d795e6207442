"""What the dashboard slice needs from the composition root (issue 13 item 1).

The admin's pages and actions: the database, the clock, HubSpot's portal API and the
registered custom channel (a channel account disconnected from the dashboard), with its
tokens.

How the composition root satisfies it: adapter_ports.py.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import (
    HubSpotChannel,
    HubSpotPortals,
    StoredCredentials,
)


class DashboardDeps(StoredCredentials, HubSpotPortals, HubSpotChannel, Protocol):
    """Every capability the slice's functions use."""
