"""The connection pop-up's work (R2–R5): complete HubSpot's staging token with a number.

Nothing is half-done (R4): our channel-account row is written only after HubSpot accepted
the number, so a HubSpot refusal (R5's three errors, or anything else) leaves our state
exactly as it was. Once HubSpot accepted, the number *is* connected: the row is written at
once, and the HubSpot id of the new account is looked up afterwards (the
CHANNEL_ACCOUNT_CREATED webhook fills it in too, whichever comes first).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.connect.ports import ConnectDeps
from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.db.lookups import number_facts
from whatsapp_helpdesk.db.models import ChannelAccount, Installation, Number
from whatsapp_helpdesk.domain.eligibility import (
    InstallationFacts,
    MissingInWords,
    company_whatsapp_from_numbers,
    missing_conditions,
)
from whatsapp_helpdesk.errors import DeliveryError, Permanent
from whatsapp_helpdesk.hubspot import HubSpotPortalClient

log = structlog.get_logger(__name__)


class NotConnectable(Permanent):
    """The pop-up was asked for something it must refuse before calling HubSpot."""


@dataclass(frozen=True)
class Candidate(MissingInWords):
    """A number of the installation as the pop-up sees it."""

    number_id: int
    name: str
    e164: str
    digits: str
    missing: list[str]  # keys of eligibility.MISSING; empty = eligible (R3)
    live_account_name: str | None = None  # already the help desk's channel under this name
    whatsapp_status: str | None = None  # Aircall's status of the number's WhatsApp line

    @property
    def eligible(self) -> bool:
        return not self.missing

    @property
    def connected(self) -> bool:
        """Already a channel account of the help desk: the pop-up shows it, not offers it."""
        return self.live_account_name is not None


def installation_facts(installation: Installation, numbers: list[Number]) -> InstallationFacts:
    return InstallationFacts(
        company_whatsapp_enabled=company_whatsapp_from_numbers(
            installation.company_whatsapp_override, (n.whatsapp_enabled for n in numbers)
        ),
        granted_scopes=frozenset((installation.hubspot_scopes or "").split()),
    )


def live_accounts_by_number(session: Session, installation_id: int) -> dict[int, ChannelAccount]:
    """The live (not disconnected) channel account of each number that has one."""
    rows = session.scalars(
        select(ChannelAccount).where(
            ChannelAccount.installation_id == installation_id,
            ChannelAccount.disconnected_at.is_(None),
        )
    )
    return {row.number_id: row for row in rows}


def candidates(services: ConnectDeps, installation_id: int) -> list[Candidate]:
    """Every number of the installation with the R3 conditions it misses."""
    with services.sessions() as session:
        installation = session.get(Installation, installation_id)
        if installation is None:
            return []
        numbers = list(
            session.scalars(
                select(Number).where(Number.installation_id == installation_id,
                                     Number.removed_at.is_(None)).order_by(Number.id)
            )
        )
        facts = installation_facts(installation, numbers)
        live = live_accounts_by_number(session, installation_id)
        return [
            Candidate(
                number_id=n.id, name=n.name, e164=n.e164, digits=n.digits or n.e164,
                missing=missing_conditions(number_facts(n), facts),
                live_account_name=live[n.id].name if n.id in live else None,
                whatsapp_status=n.whatsapp_status,
            )
            for n in numbers
        ]


def installation_for_portal(
    services: ConnectDeps, portal_id: str, *, prefer: int | None = None
) -> int | None:
    """The installation of a HubSpot portal. A portal joined to several Aircall companies
    has several; the signed-in one (`prefer`) wins when it is one of them."""
    with services.sessions() as session:
        ids = list(
            session.scalars(
                select(Installation.id)
                .where(Installation.hubspot_portal_id == str(portal_id))
                .order_by(Installation.id)
            )
        )
    if prefer in ids:
        return prefer
    return ids[0] if ids else None


def account_name(candidate: Candidate) -> str:
    """How the channel account is named in HubSpot's channel list."""
    label = candidate.name or candidate.digits
    return f"WhatsApp · {label}"[:200]


async def connect_number(
    services: ConnectDeps, *, installation_id: int, number_id: int, account_token: str
) -> ChannelAccount:
    """Connect one eligible number through HubSpot's staging token (R4).

    Raises `NotConnectable` before HubSpot is called, `StagingTokenError` (R5) or another
    `DeliveryError` when HubSpot refuses — in every such case nothing was written.
    """
    # The database work runs in threads: this is awaited on the web app's event loop.
    channel_id = await asyncio.to_thread(services.channel_id)
    if not channel_id:
        raise NotConnectable(
            "The WhatsApp with Aircall channel is not registered in HubSpot yet "
            "(run `whatsapp-helpdesk hubspot register-channel`)."
        )
    listed = await asyncio.to_thread(candidates, services, installation_id)
    candidate = next((c for c in listed if c.number_id == number_id), None)
    if candidate is None or not candidate.eligible:
        raise NotConnectable("This number can't be connected (see the conditions on the page).")
    portal = services.hubspot_portal(await hubspot_access_token(services, installation_id))
    name = account_name(candidate)
    staging = await portal.complete_staging_token(
        channel_id, account_token=account_token, account_name=name,
        delivery_identifier_e164=candidate.e164,
    )
    row = await asyncio.to_thread(
        _record_connection, services, installation_id=installation_id, candidate=candidate,
        channel_id=channel_id, account_token=account_token, name=name,
        inbox_id=staging.inbox_id or None,
    )
    await _fill_in_account_id(services, portal, row, channel_id)
    return row


def _record_connection(
    services: ConnectDeps, *, installation_id: int, candidate: Candidate, channel_id: str,
    account_token: str, name: str, inbox_id: str | None,
) -> ChannelAccount:
    now = services.clock.now()
    with services.sessions.begin() as session:
        # HubSpot just accepted the number, so no live account holds it there: a row of
        # ours that still says otherwise missed the archiving event; it is history now.
        for stale in session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.number_id == candidate.number_id,
                ChannelAccount.disconnected_at.is_(None),
            )
        ):
            stale.disconnected_at = now
            stale.authorized = False
        session.flush()
        row = ChannelAccount(
            installation_id=installation_id, number_id=candidate.number_id,
            hubspot_channel_id=channel_id, hubspot_inbox_id=inbox_id,
            account_token=account_token, name=name, delivery_identifier=candidate.e164,
            authorized=True, connected_at=now,
        )
        session.add(row)
        session.flush()
        session.expunge(row)
    log.info("connect.number_connected", installation_id=installation_id,
             number_id=candidate.number_id)
    return row


async def _fill_in_account_id(
    services: ConnectDeps, portal: HubSpotPortalClient, row: ChannelAccount, channel_id: str
) -> None:
    """Best effort: the CHANNEL_ACCOUNT_CREATED webhook records the id as well."""
    try:
        accounts = await portal.list_channel_accounts(
            channel_id, delivery_identifier_e164=row.delivery_identifier
        )
    except DeliveryError as exc:
        log.warning("connect.account_lookup_failed", error=exc.message)
        return
    # A number disconnected earlier keeps its old, de-authorised account at HubSpot: the
    # new one is the live account with the highest id.
    live = [a for a in accounts if a.authorized and not a.archived]
    if not live:
        return
    newest = max(live, key=lambda a: (len(a.id), a.id))
    await asyncio.to_thread(_store_account_id, services, row, newest.id, newest.inbox_id)


def _store_account_id(
    services: ConnectDeps, row: ChannelAccount, account_id: str, inbox_id: str | None
) -> None:
    with services.sessions.begin() as session:
        stored = session.get(ChannelAccount, row.id)
        if stored is not None and not stored.hubspot_channel_account_id:
            stored.hubspot_channel_account_id = account_id
            stored.hubspot_inbox_id = stored.hubspot_inbox_id or inbox_id or None
        if stored is not None:
            row.hubspot_channel_account_id = stored.hubspot_channel_account_id
            row.hubspot_inbox_id = stored.hubspot_inbox_id
