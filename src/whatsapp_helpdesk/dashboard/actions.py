"""The integration dashboard's actions (R6–R10, R35, R36): settings, the company's
WhatsApp answer, retrying a delivery, disconnecting a number, refreshing the numbers. The
pages' reads are dashboard/reads.py, and the same rule of isolation holds here (R10): each
function acts only on the signed-in installation's rows, another's are "not found".
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.dashboard.ports import DashboardDeps
from whatsapp_helpdesk.dashboard.reads import (
    CHANNEL_SETTINGS,
    NOT_RETRYABLE,
    SETTINGS,
    NotFound,
    _installation,
)
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Message,
    Number,
    OutboxEntry,
)
from whatsapp_helpdesk.errors import AuthRevoked, DeliveryError

log = structlog.get_logger(__name__)


class ActionRefused(Exception):
    """A dashboard action that must not happen; the message says why, in words."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message



# --- Actions --------------------------------------------------------------------------------


def _owned_number(session: Session, installation_id: int, number_id: int) -> Number:
    number = session.get(Number, number_id)
    if number is None or number.installation_id != installation_id:
        raise NotFound("number")
    return number


def set_setting(
    services: DashboardDeps, installation_id: int, number_id: int, setting: str, on: bool
) -> str:
    """Switch R3 (d) / (e) or native ticketing for one number; returns what was done."""
    if setting not in SETTINGS:
        raise ActionRefused("Unknown setting.")
    with services.sessions.begin() as session:
        number = _owned_number(session, installation_id, number_id)
        if setting in CHANNEL_SETTINGS and not on and _live_account(session, number.id):
            raise ActionRefused(
                f"{number.name or number.digits} is the Help Desk's WhatsApp channel. "
                "Disconnect the channel first, then switch this off."
            )
        setattr(number, setting, on)
        label = number.name or number.digits
    return f"{SETTINGS[setting]} is now {'on' if on else 'off'} for {label}."


def set_company_whatsapp(services: DashboardDeps, installation_id: int, value: bool | None) -> str:
    """R3 (b) has no Aircall API: an admin may state it (None = derive from the numbers)."""
    with services.sessions.begin() as session:
        installation = _installation(session, installation_id)
        installation.company_whatsapp_override = value
        installation.updated_at = services.clock.now()
    if value is None:
        return "WhatsApp for the Aircall company is now derived from its numbers."
    return f"The Aircall company is now stated {'to have' if value else 'not to have'} WhatsApp."


def _live_account(session: Session, number_id: int) -> ChannelAccount | None:
    return session.scalar(
        select(ChannelAccount).where(
            ChannelAccount.number_id == number_id, ChannelAccount.disconnected_at.is_(None)
        )
    )


def retry_delivery(services: DashboardDeps, installation_id: int, outbox_id: int) -> str:
    """Run a failed delivery again from scratch (R9, R44)."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        entry = session.get(OutboxEntry, outbox_id)
        if entry is None or entry.installation_id != installation_id:
            raise NotFound("delivery")
        if entry.kind in NOT_RETRYABLE:
            raise ActionRefused("A failed reply is resent by the agent from the ticket in HubSpot.")
        if not outbox.requeue(session, entry_id=outbox_id, installation_id=installation_id,
                              now=now):
            raise ActionRefused("This delivery is not failed any more.")
        message = session.get(Message, entry.message_id) if entry.message_id else None
        if message is not None and message.direction == "inbound" and message.status == "failed":
            message.status = "pending"
            message.failure_reason = None
    return "The delivery will be tried again in a moment."


async def disconnect_number(services: DashboardDeps, installation_id: int, number_id: int) -> str:
    """R6: HubSpot de-authorises the channel account, then its traffic stops here and the
    number is free to be connected again. If HubSpot cannot be told, nothing changes (the
    number would otherwise stay taken at HubSpot while looking free here)."""
    # The database work runs in threads: this is awaited on the web app's event loop.
    account_id, channel_id, e164, label = await asyncio.to_thread(
        _account_to_disconnect, services, installation_id, number_id)
    try:
        portal = services.hubspot_portal(await hubspot_access_token(services, installation_id))
        # The id is unknown when HubSpot's lookup and its webhook both failed at connection
        # time: the live accounts of the number at HubSpot are the ones to de-authorise.
        account_ids = [account_id] if account_id else [
            a.id for a in await portal.list_channel_accounts(
                channel_id, delivery_identifier_e164=e164)
            if a.authorized and not a.archived
        ]
        for hubspot_id in account_ids:
            await portal.update_channel_account(channel_id, hubspot_id, authorized=False)
    except AuthRevoked as exc:
        raise ActionRefused(f"{exc.message} Then disconnect again.") from exc
    except DeliveryError as exc:
        if exc.status_code != 404:  # gone at HubSpot already: nothing to tell it
            raise ActionRefused(
                f"HubSpot could not be told, so nothing was changed: {exc.message}"
            ) from exc
    await asyncio.to_thread(_mark_disconnected, services, number_id)
    log.info("dashboard.disconnected", installation_id=installation_id, number_id=number_id)
    return f"{label} is disconnected from the Help Desk."


def _account_to_disconnect(
    services: DashboardDeps, installation_id: int, number_id: int
) -> tuple[str | None, str, str, str]:
    """(HubSpot account id, channel id, E.164, label) of the number's live account."""
    with services.sessions() as session:
        number = _owned_number(session, installation_id, number_id)
        account = _live_account(session, number.id)
        if account is None:
            raise ActionRefused(f"{number.name or number.digits} is not a Help Desk channel.")
        return (account.hubspot_channel_account_id, account.hubspot_channel_id,
                account.delivery_identifier, number.name or number.digits)


def _mark_disconnected(services: DashboardDeps, number_id: int) -> None:
    now = services.clock.now()
    with services.sessions.begin() as session:
        account = _live_account(session, number_id)
        if account is not None:
            account.authorized = False
            account.disconnected_at = now
