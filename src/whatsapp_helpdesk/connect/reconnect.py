"""Reconnecting a number the admin disconnected (issue 15 item 2, R6).

Disconnecting de-authorises the number's HubSpot channel account (`authorized: false`).
HubSpot lets the same account be authorised again (PATCH `authorized: true`, reference §2.1),
so reconnecting re-uses it: its threads, and so the customer's ticket, carry on. A new
account (HubSpot's *Connect a channel*) would open new threads, hence new tickets. When
HubSpot no longer has the account (archived, deleted), it cannot be re-used, and the
confirmation page says, before anything is done, that connecting again starts new tickets.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.connect.popup import candidates
from whatsapp_helpdesk.connect.ports import ConnectDeps
from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.db.models import ChannelAccount, Number
from whatsapp_helpdesk.errors import AuthRevoked, DeliveryError

log = structlog.get_logger(__name__)

NEW_TICKETS: str = (
    "HubSpot no longer has the channel account this number used, so it can't be re-used: "
    "connecting the number again creates a new one, and its customers' next messages start "
    "new tickets (earlier conversations stay in their tickets). Connect it from HubSpot: "
    "Settings › Help Desk › Channels › Connect a channel › WhatsApp with Aircall."
)


class NotReconnectable(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ReconnectPlan:
    label: str
    reusable: bool  # HubSpot still has the account: re-authorising it keeps the tickets
    account_name: str
    why_not: str | None = None


def previous_account(session: Session, number_id: int) -> ChannelAccount | None:
    """The number's last channel account, when the number has no live one now."""
    rows = list(session.scalars(
        select(ChannelAccount).where(ChannelAccount.number_id == number_id)
        .order_by(ChannelAccount.id.desc())
    ))
    if not rows or rows[0].disconnected_at is None or not rows[0].hubspot_channel_account_id:
        return None
    return rows[0]


def reconnectable_numbers(session: Session, installation_id: int) -> set[int]:
    """Numbers disconnected from a channel account we may try to re-use."""
    numbers = session.scalars(select(Number.id).where(Number.installation_id == installation_id))
    return {n for n in numbers if previous_account(session, n) is not None}


def _owned(session: Session, installation_id: int, number_id: int) -> tuple[Number,
                                                                           ChannelAccount]:
    number = session.get(Number, number_id)
    if number is None or number.installation_id != installation_id:
        raise LookupError("number")
    account = previous_account(session, number_id)
    if account is None:
        raise NotReconnectable(
            f"{number.name or number.digits} has no earlier Help Desk channel to reconnect.")
    session.expunge(account)
    return number, account


async def plan_reconnect(services: ConnectDeps, installation_id: int, number_id: int
                         ) -> ReconnectPlan:
    """What reconnecting would do, asked of HubSpot before the admin confirms."""
    # The database work runs in threads: this is awaited on the web app's event loop.
    label, account = await asyncio.to_thread(_label_and_account, services, installation_id,
                                             number_id)
    assert account.hubspot_channel_account_id is not None
    portal = services.hubspot_portal(await hubspot_access_token(services, installation_id))
    try:
        remote = await portal.get_channel_account(account.hubspot_channel_id,
                                                  account.hubspot_channel_account_id)
    except DeliveryError as exc:
        if exc.status_code == 404:
            return ReconnectPlan(label, False, account.name, NEW_TICKETS)
        raise NotReconnectable(f"HubSpot could not be asked: {exc.message}") from exc
    if remote.archived:
        return ReconnectPlan(label, False, account.name, NEW_TICKETS)
    return ReconnectPlan(label, True, account.name)


async def reconnect_number(services: ConnectDeps, installation_id: int, number_id: int) -> str:
    """Authorise the number's earlier channel account again and make it live here."""
    label, account = await asyncio.to_thread(_label_and_account, services, installation_id,
                                             number_id)
    listed = await asyncio.to_thread(candidates, services, installation_id)
    candidate = next((c for c in listed if c.number_id == number_id), None)
    if candidate is None or not candidate.eligible:
        raise NotReconnectable(
            f"{label} can't be a Help Desk channel now: "
            + "; ".join(candidate.missing_texts if candidate else []) + ".")
    assert account.hubspot_channel_account_id is not None
    try:
        portal = services.hubspot_portal(await hubspot_access_token(services, installation_id))
        await portal.update_channel_account(account.hubspot_channel_id,
                                            account.hubspot_channel_account_id, authorized=True)
    except AuthRevoked as exc:
        raise NotReconnectable(f"{exc.message} Then reconnect again.") from exc
    except DeliveryError as exc:
        if exc.status_code == 404:
            raise NotReconnectable(NEW_TICKETS) from exc
        raise NotReconnectable(
            f"HubSpot did not authorise the channel again, so nothing was changed: "
            f"{exc.message}") from exc
    await asyncio.to_thread(_mark_reconnected, services, account.id, number_id)
    log.info("dashboard.reconnected", installation_id=installation_id, number_id=number_id)
    return f"{label} is connected again to the Help Desk, on the same channel account."


def _label_and_account(services: ConnectDeps, installation_id: int, number_id: int
                       ) -> tuple[str, ChannelAccount]:
    with services.sessions() as session:
        number, account = _owned(session, installation_id, number_id)
        return number.name or number.digits, account


def _mark_reconnected(services: ConnectDeps, account_id: int, number_id: int) -> None:
    now = services.clock.now()
    with services.sessions.begin() as session:
        row = session.get(ChannelAccount, account_id)
        if row is not None and previous_account(session, number_id) is row:
            row.disconnected_at = None
            row.authorized = True
            row.connected_at = now
