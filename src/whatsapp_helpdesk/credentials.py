"""Access to an installation's tokens: decrypt, refresh ahead of expiry, flag re-auth (R8)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.errors import AuthRevoked
from whatsapp_helpdesk.hubspot.oauth import TokenSet

# HubSpot: "401 is not a valid indicator that a new token must be retrieved" — refresh
# proactively from expires_in (reference §6). Five minutes ahead leaves room for retries.
REFRESH_AHEAD = timedelta(minutes=5)


def mark_reauth_required(services: Services, installation_id: int, reason: str) -> None:
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is not None:
            installation.reauth_required = reason
            installation.updated_at = services.clock.now()


@dataclass(frozen=True)
class _StoredHubSpotTokens:
    access: str | None
    expires_at: datetime | None
    refresh: str


def _stored_hubspot_tokens(services: Services, installation_id: int) -> _StoredHubSpotTokens:
    with services.sessions() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or not installation.hubspot_refresh_token_enc:
            raise AuthRevoked("HubSpot is not authorised for this installation.")
        access = installation.hubspot_access_token_enc
        return _StoredHubSpotTokens(
            access=services.cipher.decrypt(access) if access else None,
            expires_at=installation.hubspot_token_expires_at,
            refresh=services.cipher.decrypt(installation.hubspot_refresh_token_enc),
        )


def _store_hubspot_tokens(services: Services, installation_id: int, tokens: TokenSet) -> None:
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        assert installation is not None
        installation.hubspot_access_token_enc = services.cipher.encrypt(tokens.access_token)
        installation.hubspot_refresh_token_enc = services.cipher.encrypt(tokens.refresh_token)
        installation.hubspot_token_expires_at = tokens.expires_at
        installation.updated_at = services.clock.now()


async def hubspot_access_token(
    services: Services, installation_id: int, *, force_refresh: bool = False
) -> str:
    """A valid access token, refreshed ahead of expiry. The database work runs in a thread,
    off the worker's event loop (its other slots go on meanwhile)."""
    stored = await asyncio.to_thread(_stored_hubspot_tokens, services, installation_id)
    now = services.clock.now()
    if (stored.access and stored.expires_at and stored.expires_at - now > REFRESH_AHEAD
            and not force_refresh):
        return stored.access
    try:
        tokens = await services.hubspot_oauth().refresh(stored.refresh)
    except AuthRevoked as exc:
        await asyncio.to_thread(
            mark_reauth_required, services, installation_id,
            f"HubSpot refused to refresh the access token ({exc.message}). Reconnect HubSpot.",
        )
        raise
    await asyncio.to_thread(_store_hubspot_tokens, services, installation_id, tokens)
    return tokens.access_token


def aircall_access_token(services: Services, installation_id: int) -> str:
    with services.sessions() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or not installation.aircall_access_token_enc:
            raise AuthRevoked("Aircall is not authorised for this installation.")
        return services.cipher.decrypt(installation.aircall_access_token_enc)
