"""HubSpot's channel-account events (reference hubspot §4.1; R4, R6).

- CHANNEL_ACCOUNT_CREATED: an admin connected a number through the pop-up. The connect
  flow already looks the account up by number; the event only fills in the HubSpot id
  when that lookup came back empty, matched by delivery identifier (our number, E.164).
  Idempotent: the same event twice changes nothing the second time.
- CHANNEL_ACCOUNT_UPDATED with `authorized: false` or `archived: true`: HubSpot stopped the
  channel. Its traffic stops and the number is free to be connected again (R6).

Both run inside the webhook's transaction (inbound/hubspot_delivery.py) and return
(outcome, detail) for the delivery log.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.connect.ports import ConnectDeps
from whatsapp_helpdesk.db.lookups import channel_account_by_hubspot_id
from whatsapp_helpdesk.db.models import ChannelAccount
from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, to_e164
from whatsapp_helpdesk.hubspot import ChannelAccountEvent

log = structlog.get_logger(__name__)


def on_channel_account_created(
    services: ConnectDeps, session: Session, installation_id: int, event: ChannelAccountEvent,
    now: datetime,
) -> tuple[str, str | None]:
    known = channel_account_by_hubspot_id(session, installation_id, event.channel_account_id)
    if known is not None:
        return ("already_known", None)
    try:
        number_e164 = to_e164(event.delivery_identifier_e164 or "")
    except InvalidPhoneNumber:
        return ("no_delivery_identifier", "the event names no phone number to match")
    row = session.scalars(
        select(ChannelAccount).where(
            ChannelAccount.installation_id == installation_id,
            ChannelAccount.delivery_identifier == number_e164,
            ChannelAccount.disconnected_at.is_(None),
        )
    ).first()
    if row is None:
        # The connect flow writes its row after HubSpot answered; it finds the id itself.
        return ("no_matching_number", None)
    if row.hubspot_channel_account_id not in (None, "", event.channel_account_id):
        return ("number_has_another_account", row.hubspot_channel_account_id)
    row.hubspot_channel_account_id = event.channel_account_id
    if event.inbox_id and not row.hubspot_inbox_id:
        row.hubspot_inbox_id = event.inbox_id
    log.info("channel_account.recorded", channel_account_id=event.channel_account_id)
    return ("recorded", None)


def on_channel_account_updated(
    services: ConnectDeps, session: Session, installation_id: int, event: ChannelAccountEvent,
    now: datetime,
) -> tuple[str, str | None]:
    row = channel_account_by_hubspot_id(session, installation_id, event.channel_account_id)
    if row is None:
        return ("unknown_channel_account", None)
    stopped = event.authorized is False or event.archived is True
    if not stopped:
        return ("no_change", None)
    if row.disconnected_at is not None:
        return ("already_disconnected", None)
    # R6: stop its traffic (replies are refused, inbound is no longer published) and free
    # the number (the live-number unique index only counts rows without disconnected_at).
    row.authorized = False
    row.disconnected_at = now
    reason = "archived" if event.archived else "deauthorized"
    log.info("channel_account.disconnected", channel_account_id=event.channel_account_id,
             reason=reason)
    return ("disconnected", reason)

