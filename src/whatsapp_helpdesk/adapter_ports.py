"""What the use cases need from the outside world, by capability (issue 13 item 1).

Each slice names the capabilities it uses in its own `ports.py` (e.g. `inbound/ports.py`
`InboundDeps`) and its functions take that Protocol, never the composition root's
`bootstrap.Services`; `Services` satisfies every one of them structurally (mypy --strict
checks it where web, worker and CLI pass it in), and a test may pass any smaller object that
has what a function asks for. The slices never import bootstrap (import contract
`slices-take-ports-not-the-composition-root`). (`ports.py` at the top of the package is
about TCP ports.)

Members are read-only properties: a use case reads its adapters, never replaces them.
"""

from __future__ import annotations

from typing import Protocol

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.aircall import AircallClient, AircallOAuth
from whatsapp_helpdesk.db.crypto import TokenCipher
from whatsapp_helpdesk.domain.clock import Clock
from whatsapp_helpdesk.hubspot import HubSpotDeveloperClient, HubSpotOAuth, HubSpotPortalClient
from whatsapp_helpdesk.pacing import OpeningBurst
from whatsapp_helpdesk.settings import Settings

# The service-state row holding the custom channel's id once the app registered it (read by
# `HubSpotApi.channel_id` when HUBSPOT_CHANNEL_ID is unset; written by connect/install.py).
CHANNEL_ID_KEY = "hubspot_channel_id"


class Database(Protocol):
    """The bridge's own database: transactions (`sessions`) and, for a read that must not
    wait on a writer, the engine."""

    @property
    def engine(self) -> Engine: ...

    @property
    def sessions(self) -> sessionmaker[Session]: ...


class Clocked(Protocol):
    """The time the rules run on (the sandbox's clock can be moved; tests use a manual one)."""

    @property
    def clock(self) -> Clock: ...


class Configured(Protocol):
    @property
    def settings(self) -> Settings: ...


class Http(Protocol):
    """The shared HTTP client, for a plain GET (a file from Aircall's store)."""

    @property
    def http(self) -> httpx.AsyncClient: ...


class StoredCredentials(Database, Clocked, Protocol):
    """What `credentials.py` needs to hand out a valid token: the stored, encrypted tokens
    and HubSpot's OAuth endpoint to refresh them."""

    @property
    def cipher(self) -> TokenCipher: ...

    def hubspot_oauth(self) -> HubSpotOAuth: ...


class HubSpotPortals(Protocol):
    """HubSpot's API as one portal (its access token); `installation_id` paces the calls
    under that portal's rate limit (R44)."""

    def hubspot_portal(
        self, access_token: str, *, installation_id: int | None = None
    ) -> HubSpotPortalClient: ...


class HubSpotChannel(Protocol):
    """The custom channel the app registered (None before it is)."""

    def channel_id(self) -> str | None: ...


class HubSpotApp(Protocol):
    """HubSpot's API as the app: its developer key (the channel, webhooks) and OAuth."""

    def hubspot_developer(self) -> HubSpotDeveloperClient: ...

    def hubspot_oauth(self) -> HubSpotOAuth: ...


class AircallCompanies(Protocol):
    """Aircall's public API as one company (its token); `installation_id` paces the calls,
    `budget_share` keeps a long background job to that share of the company's limit,
    `opening_burst` lets its first calls go at once when the company's bucket was idle."""

    def aircall(
        self, access_token: str, *, installation_id: int | None = None,
        budget_share: float | None = None, opening_burst: OpeningBurst | None = None,
    ) -> AircallClient: ...


class AircallApp(Protocol):
    """Aircall's OAuth endpoint (the install's code exchange)."""

    def aircall_oauth(self) -> AircallOAuth: ...
