"""What the inbound slice needs from the composition root (issue 13 item 1).

Aircall's webhook stored, the message published in HubSpot, its file fetched: the
database, the clock, the settings (webhook limits, media budget), HubSpot's portal API with
its tokens, and the HTTP client that downloads a file.

`bootstrap.Services` satisfies it (mypy --strict checks that where the web, the worker and
the CLI pass it in); the slice never imports bootstrap (import contract
`slices-take-ports-not-the-composition-root`).
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
