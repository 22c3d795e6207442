"""The connection pop-up's work (R2–R5): complete HubSpot's staging token with a number.

Nothing is half-done (R4): our channel-account row is written only after HubSpot
accepted the number, and a HubSpot refusal leaves our state untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import ChannelAccount, Installation, Number
from whatsapp_helpdesk.domain.eligibility import (
    InstallationFacts,
    NumberFacts,
    company_whatsapp_from_numbers,
    missing_conditions,
)
from whatsapp_helpdesk.errors import Permanent
from whatsapp_helpdesk.flows.credentials import hubspot_access_token


@dataclass(frozen=True)
class Candidate:
    number_id: int
    name: str
    e164: str
    missing: list[str]


def candidates(services: Services, installation_id: int) -> list[Candidate]:
    """Every number of the installation with the R3 conditions it misses."""
    with services.sessions() as session:
        installation = session.get(Installation, installation_id)
        assert installation is not None
        numbers = list(
            session.scalars(
                select(Number).where(Number.installation_id == installation_id).order_by(Number.id)
            )
        )
        facts = InstallationFacts(
            company_whatsapp_enabled=company_whatsapp_from_numbers(
                installation.company_whatsapp_override, (n.whatsapp_enabled for n in numbers)
            ),
            granted_scopes=frozenset(installation.hubspot_scopes.split()),
        )
        return [
            Candidate(
                n.id, n.name, n.e164,
                missing_conditions(
                    NumberFacts(n.whatsapp_enabled, n.connected_to_hubspot, n.helpdesk_enabled),
                    facts,
                ),
            )
            for n in numbers
        ]


async def connect_number(
    services: Services, *, installation_id: int, number_id: int, account_token: str
) -> ChannelAccount:
    channel_id = services.channel_id()
    if not channel_id:
        raise Permanent("The custom channel is not registered yet.")
    eligible = {c.number_id: c for c in candidates(services, installation_id) if not c.missing}
    candidate = eligible.get(number_id)
    if candidate is None:
        raise Permanent("This number can't be connected (see the conditions on the page).")
    portal = services.hubspot_portal(await hubspot_access_token(services, installation_id))
    name = f"WhatsApp {candidate.name}".strip()
    staging = await portal.complete_staging_token(
        channel_id, account_token=account_token, account_name=name,
        delivery_identifier_e164=candidate.e164,
    )
    # HubSpot creates the account from the token; its id comes from a lookup by number
    # (the CHANNEL_ACCOUNT_CREATED webhook carries it too and is handled idempotently).
    accounts = await portal.list_channel_accounts(
        channel_id, delivery_identifier_e164=candidate.e164
    )
    live = [a for a in accounts if not a.archived]
    now = services.clock.now()
    with services.sessions.begin() as session:
        row = session.scalar(
            select(ChannelAccount).where(
                ChannelAccount.number_id == number_id, ChannelAccount.disconnected_at.is_(None)
            )
        )
        if row is None:
            row = ChannelAccount(
                installation_id=installation_id, number_id=number_id,
                hubspot_channel_id=channel_id, delivery_identifier=candidate.e164,
                connected_at=now,
            )
            session.add(row)
        row.hubspot_channel_account_id = live[0].id if live else None
        row.hubspot_inbox_id = staging.inbox_id or (live[0].inbox_id if live else None)
        row.account_token = account_token
        row.name = name
        row.authorized = True
        session.flush()
        session.expunge(row)
        return row
