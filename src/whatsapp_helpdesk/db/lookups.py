"""Queries more than one slice needs (issue 13 item 1: a slice does not import another for
them)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.db.models import ChannelAccount, Number
from whatsapp_helpdesk.domain.eligibility import NumberFacts


def channel_account_by_hubspot_id(
    session: Session, installation_id: int, hubspot_channel_account_id: str
) -> ChannelAccount | None:
    """Our row for HubSpot's channel account; a live row before a disconnected one."""
    return session.scalars(
        select(ChannelAccount)
        .where(
            ChannelAccount.installation_id == installation_id,
            ChannelAccount.hubspot_channel_account_id == hubspot_channel_account_id,
        )
        .order_by(ChannelAccount.disconnected_at.is_not(None), ChannelAccount.id.desc())
    ).first()


def number_facts(number: Number) -> NumberFacts:
    """The number's side of eligibility (R3): read by connect's pop-up and the dashboard."""
    return NumberFacts(number.whatsapp_enabled, number.connected_to_hubspot,
                       number.helpdesk_enabled)
