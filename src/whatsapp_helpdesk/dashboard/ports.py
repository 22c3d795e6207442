"""What the dashboard slice needs from the composition root (issue 13 item 1).

The admin's pages and actions: the database, the clock, and HubSpot's portal API (a
channel account disconnected from the dashboard) with its tokens.
`bootstrap.Services` satisfies it: the slice never imports bootstrap.
"""

from __future__ import annotations

from typing import Protocol

from whatsapp_helpdesk.adapter_ports import HubSpotApi, StoredCredentials


class DashboardDeps(StoredCredentials, HubSpotApi, Protocol):
    """Every capability the slice's functions use."""
