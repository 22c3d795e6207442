"""Access to an installation's tokens: decrypt, refresh ahead of expiry, flag re-auth (R8)."""

from __future__ import annotations

from datetime import timedelta

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.errors import AuthRevoked

# HubSpot: "401 is not a valid indicator that a new token must be retrieved" — refresh
# proactively from expires_in (reference §6). Five minutes ahead leaves room for retries.
REFRESH_AHEAD = timedelta(minutes=5)


def mark_reauth_required(services: Services, installation_id: int, reason: str) -> None:
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is not None:
            installation.reauth_required = reason
            installation.updated_at = services.clock.now()


async def hubspot_access_token(
    services: Services, installation_id: int, *, force_refresh: bool = False
) -> str:
    with services.sessions() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or not installation.hubspot_refresh_token_enc:
            raise AuthRevoked("HubSpot is not authorised for this installation.")
        access = installation.hubspot_access_token_enc
        expires_at = installation.hubspot_token_expires_at
        refresh_token = services.cipher.decrypt(installation.hubspot_refresh_token_enc)
    now = services.clock.now()
    if access and expires_at and expires_at - now > REFRESH_AHEAD and not force_refresh:
        return services.cipher.decrypt(access)
    try:
        tokens = await services.hubspot_oauth().refresh(refresh_token)
    except AuthRevoked as exc:
        mark_reauth_required(
            services, installation_id,
            f"HubSpot refused to refresh the access token ({exc.message}). Reconnect HubSpot.",
        )
        raise
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        assert installation is not None
        installation.hubspot_access_token_enc = services.cipher.encrypt(tokens.access_token)
        installation.hubspot_refresh_token_enc = services.cipher.encrypt(tokens.refresh_token)
        installation.hubspot_token_expires_at = tokens.expires_at
        installation.updated_at = services.clock.now()
    return tokens.access_token


def aircall_access_token(services: Services, installation_id: int) -> str:
    with services.sessions() as session:
        installation = session.get(Installation, installation_id)
        if installation is None or not installation.aircall_access_token_enc:
            raise AuthRevoked("Aircall is not authorised for this installation.")
        return services.cipher.decrypt(installation.aircall_access_token_enc)
