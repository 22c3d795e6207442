"""Access to an installation's tokens: decrypt, refresh ahead of expiry, flag re-auth (R8)."""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, bindparam, select

from whatsapp_helpdesk.adapter_ports import StoredCredentials
from whatsapp_helpdesk.db.crypto import TokenCipher
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.db.session import READ_ONLY
from whatsapp_helpdesk.errors import AuthRevoked
from whatsapp_helpdesk.hubspot.oauth import TokenSet

# HubSpot: "401 is not a valid indicator that a new token must be retrieved" — refresh
# proactively from expires_in (reference §6). Five minutes ahead leaves room for retries.
REFRESH_AHEAD = timedelta(minutes=5)


def mark_reauth_required(services: StoredCredentials, installation_id: int, reason: str) -> None:
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is not None:
            installation.reauth_required = reason
            installation.updated_at = services.clock.now()


@dataclass(frozen=True)
class StoredHubSpotTokens:
    access: str | None  # decrypted
    expires_at: datetime | None
    refresh_enc: str  # decrypted only when a refresh needs it


INSTALLATIONS = Installation.__table__

# Built once: the worker reads an installation's tokens for every publication.
_HUBSPOT_TOKENS = select(
    INSTALLATIONS.c.hubspot_access_token_enc, INSTALLATIONS.c.hubspot_token_expires_at,
    INSTALLATIONS.c.hubspot_refresh_token_enc,
).where(INSTALLATIONS.c.id == bindparam("installation_id"))
_AIRCALL_TOKEN = select(INSTALLATIONS.c.aircall_access_token_enc).where(
    INSTALLATIONS.c.id == bindparam("installation_id"))


@functools.lru_cache(maxsize=1024)
def _decrypt(cipher: TokenCipher, ciphertext: str) -> str:
    """Decrypting a token (Fernet: HMAC check, AES) on every publication was a good share
    of the worker's CPU; the stored ciphertext is still read every time. The cache is keyed
    on that ciphertext, so a token that changed (refreshed, re-authorised, re-encrypted by
    `rotate-keys`) is decrypted afresh: it can never answer with an old token. Fernet makes
    a new ciphertext on every encryption (random IV), so two tokens never share a key."""
    return cipher.decrypt(ciphertext)


def stored_hubspot_tokens(
    services: StoredCredentials, connection: Connection, installation_id: int
) -> StoredHubSpotTokens:
    """The installation's HubSpot tokens, read in the caller's transaction."""
    row = connection.execute(_HUBSPOT_TOKENS, {"installation_id": installation_id}).first()
    if row is None:
        raise AuthRevoked("HubSpot is not authorised for this installation.")
    return hubspot_tokens_of(services, row.hubspot_access_token_enc,
                             row.hubspot_token_expires_at, row.hubspot_refresh_token_enc)


def hubspot_tokens_of(services: StoredCredentials, access_enc: str | None,
                      expires_at: datetime | None, refresh_enc: str | None
                      ) -> StoredHubSpotTokens:
    """The tokens of an installation's row as a caller read them in a statement of its own
    (the publish job reads them with the message)."""
    if not refresh_enc:
        raise AuthRevoked("HubSpot is not authorised for this installation.")
    return StoredHubSpotTokens(
        access=_decrypt(services.cipher, access_enc) if access_enc else None,
        expires_at=expires_at,
        refresh_enc=refresh_enc,
    )


def _read_only(services: StoredCredentials) -> Connection:
    # A plain read: on SQLite it does not queue for the write lock (db/session.py).
    return services.engine.connect().execution_options(**{READ_ONLY: True})


def _stored_hubspot_tokens(
    services: StoredCredentials, installation_id: int
) -> StoredHubSpotTokens:
    with _read_only(services) as connection:
        return stored_hubspot_tokens(services, connection, installation_id)


def _store_hubspot_tokens(
    services: StoredCredentials, installation_id: int, tokens: TokenSet
) -> None:
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        assert installation is not None
        installation.hubspot_access_token_enc = services.cipher.encrypt(tokens.access_token)
        installation.hubspot_refresh_token_enc = services.cipher.encrypt(tokens.refresh_token)
        installation.hubspot_token_expires_at = tokens.expires_at
        installation.updated_at = services.clock.now()


async def hubspot_access_token(
    services: StoredCredentials, installation_id: int, *, force_refresh: bool = False,
    stored: StoredHubSpotTokens | None = None,
) -> str:
    """A valid access token, refreshed ahead of expiry. The database work runs in a thread,
    off the worker's event loop (its other slots go on meanwhile). `stored`: the tokens as
    the caller just read them in its own transaction (the publish job), saving a read."""
    if stored is None:
        stored = await asyncio.to_thread(_stored_hubspot_tokens, services, installation_id)
    now = services.clock.now()
    if (stored.access and stored.expires_at and stored.expires_at - now > REFRESH_AHEAD
            and not force_refresh):
        return stored.access
    try:
        tokens = await services.hubspot_oauth().refresh(
            _decrypt(services.cipher, stored.refresh_enc))
    except AuthRevoked as exc:
        await asyncio.to_thread(
            mark_reauth_required, services, installation_id,
            f"HubSpot refused to refresh the access token ({exc.message}). Reconnect HubSpot.",
        )
        raise
    await asyncio.to_thread(_store_hubspot_tokens, services, installation_id, tokens)
    return tokens.access_token


def aircall_access_token(services: StoredCredentials, installation_id: int) -> str:
    with _read_only(services) as connection:
        encrypted = connection.execute(
            _AIRCALL_TOKEN, {"installation_id": installation_id}).scalar()
    if not encrypted:
        raise AuthRevoked("Aircall is not authorised for this installation.")
    return _decrypt(services.cipher, encrypted)
