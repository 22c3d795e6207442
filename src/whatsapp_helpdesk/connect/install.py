"""Installations: the two OAuth grants, the Aircall webhook, number sync, channel (R1, R7).

An installation is one HubSpot portal joined to one Aircall company. HubSpot is
authorised first (it names the portal); Aircall second, which joins the company to it.
Aircall's callback stores the grant and the webhook and queues the read of the company's
numbers (connect/numbers_refresh.py); it never waits for them (issue 17 item 7).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from sqlalchemy import select

from whatsapp_helpdesk.adapter_ports import CHANNEL_ID_KEY
from whatsapp_helpdesk.aircall import AIRCALL_EVENTS, CreatedWebhook, token_digest
from whatsapp_helpdesk.connect.numbers_refresh import request_refresh
from whatsapp_helpdesk.connect.ports import ConnectDeps
from whatsapp_helpdesk.connect.reauth import requeue_auth_revoked
from whatsapp_helpdesk.db.models import Installation, ServiceState
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.hubspot import (
    WHATSAPP_CHANNEL_CAPABILITIES,
    ChannelSpec,
    TokenInfo,
    TokenSet,
)

log = structlog.get_logger(__name__)

CHANNEL_NAME = "WhatsApp with Aircall"


def _new_installation(now: datetime) -> Installation:
    return Installation(hubspot_scopes="", aircall_scopes="", created_at=now, updated_at=now)


async def complete_hubspot_oauth(
    services: ConnectDeps, *, code: str, redirect_uri: str, installation_id: int | None = None
) -> int:
    """Store the HubSpot grant; returns the installation it belongs to."""
    oauth = services.hubspot_oauth()
    tokens = await oauth.exchange_code(code, redirect_uri)
    info = await oauth.token_info(tokens.access_token)
    # The database work runs in threads: this is awaited on the web app's event loop.
    return await asyncio.to_thread(_store_hubspot_grant, services, tokens, info,
                                   installation_id)


def _store_hubspot_grant(services: ConnectDeps, tokens: TokenSet, info: TokenInfo,
                         installation_id: int | None) -> int:
    now = services.clock.now()
    with services.sessions.begin() as session:
        installation = None
        if installation_id is not None:
            installation = session.get(Installation, installation_id)
            if installation is not None and installation.hubspot_portal_id not in (
                None, info.hub_id
            ):
                # Authorised another portal than the session's installation: never move an
                # installation (and its data) onto a different portal (R10).
                installation = None
        if installation is None:
            installation = session.scalars(
                select(Installation)
                .where(Installation.hubspot_portal_id == info.hub_id)
                .order_by(Installation.id)
            ).first()
        if installation is None:
            installation = _new_installation(now)
            session.add(installation)
        installation.hubspot_portal_id = info.hub_id
        installation.hubspot_access_token_enc = services.cipher.encrypt(tokens.access_token)
        installation.hubspot_refresh_token_enc = services.cipher.encrypt(tokens.refresh_token)
        installation.hubspot_token_expires_at = tokens.expires_at
        installation.hubspot_scopes = " ".join(sorted(info.scopes))
        installation.reauth_required = None
        installation.updated_at = now
        session.flush()
        # What failed while the grant was revoked goes again, in order (issue 11 item 4).
        requeue_auth_revoked(session, installation.id, now)
        return installation.id


@dataclass(frozen=True)
class AircallGrant:
    """What Aircall's authorisation yielded, before it is applied to an installation."""

    access_token: str = field(repr=False)
    scope: str
    company_id: str | None
    company_name: str
    numbers_count: int | None = None  # as Aircall counts them now; sizes the first read


class CompanyChange(Exception):
    """The grant is for another Aircall company than the installation's: an admin must
    confirm (issue 12, item 7). Carries the grant, to apply once confirmed."""

    def __init__(self, grant: AircallGrant, old_company_id: str, old_company_name: str):
        super().__init__("another Aircall company")
        self.grant = grant
        self.old_company_id = old_company_id
        self.old_company_name = old_company_name


@dataclass(frozen=True)
class AircallApplied:
    """What applying a grant did, to tell the admin."""

    old_company_name: str | None = None  # set when the company changed
    old_webhook_removed: bool = True
    old_webhook_problem: str | None = None


async def exchange_aircall_code(services: ConnectDeps, *, code: str,
                                redirect_uri: str) -> AircallGrant:
    token = await services.aircall_oauth().exchange_code(code, redirect_uri)
    client = services.aircall(token.access_token)
    integration = await client.get_integration()
    company = await client.get_company()
    return AircallGrant(
        access_token=token.access_token, scope=token.scope or "public_api",
        company_id=str(integration.company_id) if integration.company_id is not None else None,
        company_name=company.name, numbers_count=company.numbers_count,
    )


async def complete_aircall_oauth(
    services: ConnectDeps, *, code: str, redirect_uri: str, installation_id: int,
    confirm_company_change: bool = False,
) -> AircallApplied:
    """Store the Aircall grant, subscribe our webhook, and queue the read of the company's
    numbers. Raises CompanyChange when the grant is for another company, unless confirmed."""
    grant = await exchange_aircall_code(services, code=code, redirect_uri=redirect_uri)
    return await apply_aircall_grant(services, grant, installation_id=installation_id,
                                     confirm_company_change=confirm_company_change)


async def apply_aircall_grant(
    services: ConnectDeps, grant: AircallGrant, *, installation_id: int,
    confirm_company_change: bool = False,
) -> AircallApplied:
    # The database work runs in threads, the HTTP calls between them on the caller's loop:
    # no transaction stays open while Aircall answers.
    old_company, old_name, old_webhook, old_token_enc = await asyncio.to_thread(
        _aircall_state, services, installation_id)
    changing = bool(old_company) and old_company != grant.company_id
    if changing and not confirm_company_change:
        # Never re-point an installation silently (issue 12, item 7).
        raise CompanyChange(grant, str(old_company), old_name)
    applied = AircallApplied(old_company_name=old_name if changing else None)
    if changing and old_webhook:
        # The old company's webhook goes first: otherwise it keeps sending deliveries that
        # now get 401s.
        applied = await _delete_old_webhook(services, installation_id, old_webhook,
                                            old_token_enc, old_name)
    client = services.aircall(grant.access_token)
    webhook = await client.create_webhook(
        f"{services.settings.public_url}/webhooks/aircall", AIRCALL_EVENTS, "whatsapp-helpdesk"
    )
    await asyncio.to_thread(_store_aircall_grant, services, grant, webhook, installation_id)
    if not changing and old_webhook and old_webhook != webhook.webhook_id:
        # After the new one exists, so that no event is missed in between.
        await _delete_old_webhook(services, installation_id, old_webhook, old_token_enc, None)
    if changing:
        log.info("install.aircall_company_changed", installation_id=installation_id,
                 old_company_id=old_company, new_company_id=grant.company_id,
                 old_webhook_removed=applied.old_webhook_removed)
    # Queued, not read here: the admin's browser waits on this, and a company's numbers
    # cost two Aircall calls each (10,001 for 5,000 numbers, at 60 a minute).
    await asyncio.to_thread(request_refresh, services, installation_id, after_install=True,
                            numbers_count=grant.numbers_count)
    return applied


def _aircall_state(services: ConnectDeps, installation_id: int
                   ) -> tuple[str | None, str, str | None, str | None]:
    """(company id, company name, webhook id, encrypted token) of the current grant."""
    with services.sessions() as session:
        installation = session.get(Installation, installation_id)
        if installation is None:
            raise LookupError("installation not found")
        old_company = installation.aircall_company_id
        return (old_company, installation.aircall_company_name or f"company {old_company}",
                installation.aircall_webhook_id, installation.aircall_access_token_enc)


def _store_aircall_grant(services: ConnectDeps, grant: AircallGrant, webhook: CreatedWebhook,
                         installation_id: int) -> None:
    now = services.clock.now()
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None:
            raise LookupError("installation not found")
        installation.aircall_company_id = grant.company_id
        installation.aircall_company_name = grant.company_name
        installation.aircall_access_token_enc = services.cipher.encrypt(grant.access_token)
        installation.aircall_scopes = grant.scope
        installation.aircall_webhook_id = webhook.webhook_id
        installation.aircall_webhook_token_hash = token_digest(webhook.token)
        installation.updated_at = now


async def _delete_old_webhook(services: ConnectDeps, installation_id: int, webhook_id: str,
                              token_enc: str | None, old_name: str | None) -> AircallApplied:
    """Delete a webhook with the token that created it: with OAuth, Aircall shows (and lets
    delete) a webhook only to its own token (reference aircall §A8.1), so the new token
    would get a 404 and the old webhook would stay active."""
    try:
        if not token_enc:
            raise DeliveryError("no token of the old authorisation is stored")
        await services.aircall(services.cipher.decrypt(token_enc)).delete_webhook(webhook_id)
    except (DeliveryError, ValueError) as exc:
        message = exc.message if isinstance(exc, DeliveryError) else str(exc)
        log.warning("install.old_webhook_not_removed", installation_id=installation_id,
                    webhook_id=webhook_id, error=message)
        return AircallApplied(old_company_name=old_name, old_webhook_removed=False,
                              old_webhook_problem=message)
    return AircallApplied(old_company_name=old_name)


async def register_channel(services: ConnectDeps) -> str:
    """Create or update the custom channel "WhatsApp with Aircall" (R1); safe to rerun."""
    developer = services.hubspot_developer()
    base = services.settings.public_url
    spec = ChannelSpec(
        name=CHANNEL_NAME,
        capabilities=WHATSAPP_CHANNEL_CAPABILITIES,
        webhook_url=f"{base}/webhooks/hubspot",
        connection_redirect_url=f"{base}/connect",
        description="Answer WhatsApp messages of your Aircall numbers from the help desk.",
        logo_url=f"{base}/static/logo.svg",
    )
    known = await asyncio.to_thread(services.channel_id)
    channels = await developer.list_channels()
    match = next((c for c in channels if known and c.id == known), None) or next(
        (c for c in channels if c.name == CHANNEL_NAME), None
    )
    channel = (
        await developer.update_channel(match.id, spec)
        if match
        else await developer.create_channel(spec)
    )
    await asyncio.to_thread(_store_channel_id, services, channel.id)
    return channel.id


def _store_channel_id(services: ConnectDeps, channel_id: str) -> None:
    with services.sessions.begin() as session:
        row = session.get(ServiceState, CHANNEL_ID_KEY)
        if row is None:
            session.add(ServiceState(key=CHANNEL_ID_KEY, value=channel_id))
        else:
            row.value = channel_id
