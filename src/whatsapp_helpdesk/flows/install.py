"""Installations: the two OAuth grants, the Aircall webhook, number sync, channel (R1, R7).

An installation is one HubSpot portal joined to one Aircall company. HubSpot is
authorised first (it names the portal); Aircall second, which joins the company to it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import select

from whatsapp_helpdesk.aircall import token_digest
from whatsapp_helpdesk.bootstrap import CHANNEL_ID_KEY, Services
from whatsapp_helpdesk.db.models import Installation, Number, ServiceState
from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, to_e164
from whatsapp_helpdesk.flows.credentials import aircall_access_token
from whatsapp_helpdesk.flows.reauth import requeue_auth_revoked
from whatsapp_helpdesk.hubspot import WHATSAPP_CHANNEL_CAPABILITIES, ChannelSpec

CHANNEL_NAME = "WhatsApp with Aircall"
AIRCALL_EVENTS = (
    "message.received",
    "message.sent",
    "message.status_updated",
    "call.ended",
    "call.voicemail_left",
    "number.created",
    "number.deleted",
    "number.opened",
    "number.closed",
    "integration.deleted",
)


def _new_installation(now: datetime) -> Installation:
    return Installation(hubspot_scopes="", aircall_scopes="", created_at=now, updated_at=now)


async def complete_hubspot_oauth(
    services: Services, *, code: str, redirect_uri: str, installation_id: int | None = None
) -> int:
    """Store the HubSpot grant; returns the installation it belongs to."""
    oauth = services.hubspot_oauth()
    tokens = await oauth.exchange_code(code, redirect_uri)
    info = await oauth.token_info(tokens.access_token)
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


async def complete_aircall_oauth(
    services: Services, *, code: str, redirect_uri: str, installation_id: int
) -> None:
    """Store the Aircall grant, subscribe our webhook, and read the company's numbers."""
    token = await services.aircall_oauth().exchange_code(code, redirect_uri)
    client = services.aircall(token.access_token)
    integration = await client.get_integration()
    company = await client.get_company()
    webhook = await client.create_webhook(
        f"{services.settings.public_url}/webhooks/aircall", AIRCALL_EVENTS, "whatsapp-helpdesk"
    )
    now = services.clock.now()
    with services.sessions.begin() as session:
        installation = session.get(Installation, installation_id)
        if installation is None:
            raise LookupError("installation not found")
        old_webhook = installation.aircall_webhook_id
        installation.aircall_company_id = (
            str(integration.company_id) if integration.company_id is not None else None
        )
        installation.aircall_company_name = company.name
        installation.aircall_access_token_enc = services.cipher.encrypt(token.access_token)
        installation.aircall_scopes = token.scope or "public_api"
        installation.aircall_webhook_id = webhook.webhook_id
        installation.aircall_webhook_token_hash = token_digest(webhook.token)
        installation.updated_at = now
    if old_webhook and old_webhook != webhook.webhook_id:
        await client.delete_webhook(old_webhook)
    await sync_numbers(services, installation_id)


async def sync_numbers(services: Services, installation_id: int) -> None:
    """Refresh each number's capabilities from Aircall (R7); our own switches are kept."""
    client = services.aircall(aircall_access_token(services, installation_id))
    numbers = await client.list_numbers()
    whatsapp, sms = await asyncio.gather(
        asyncio.gather(*(client.get_whatsapp_status(n.id) for n in numbers)),
        asyncio.gather(*(client.get_sms_registration(n.id) for n in numbers)),
    )
    now = services.clock.now()
    with services.sessions.begin() as session:
        existing = {
            n.aircall_number_id: n
            for n in session.scalars(
                select(Number).where(Number.installation_id == installation_id)
            )
        }
        for number, wa, sms_reg in zip(numbers, whatsapp, sms, strict=True):
            row = existing.get(str(number.id))
            if row is None:
                row = Number(
                    installation_id=installation_id,
                    aircall_number_id=str(number.id),
                    connected_to_hubspot=False,
                    helpdesk_enabled=False,
                    native_ticketing=False,
                )
                session.add(row)
            row.name = number.name
            row.digits = number.digits
            try:
                row.e164 = to_e164(number.digits)
            except InvalidPhoneNumber:
                row.e164 = ""
            row.country = number.country
            row.calls_enabled = True  # every Aircall number takes calls
            row.sms_enabled = sms_reg is not None
            # A WhatsApp line counts when Aircall can send on it (reference §A5).
            row.whatsapp_enabled = wa is not None and wa.can_send_message
            row.whatsapp_status = wa.status if wa is not None else None
            row.synced_at = now


async def register_channel(services: Services) -> str:
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
    known = services.channel_id()
    channels = await developer.list_channels()
    match = next((c for c in channels if known and c.id == known), None) or next(
        (c for c in channels if c.name == CHANNEL_NAME), None
    )
    channel = (
        await developer.update_channel(match.id, spec)
        if match
        else await developer.create_channel(spec)
    )
    with services.sessions.begin() as session:
        row = session.get(ServiceState, CHANNEL_ID_KEY)
        if row is None:
            session.add(ServiceState(key=CHANNEL_ID_KEY, value=channel.id))
        else:
            row.value = channel.id
    return channel.id
