"""Native ticketing (R35, R36): Aircall activity on a number becomes a HubSpot CRM ticket.

The classic Aircall–HubSpot behaviour, for numbers connected to HubSpot that are *not* the
help desk's WhatsApp channel: a missed call, a voicemail or an inbound SMS creates a CRM
ticket through HubSpot's tickets API. For a number that is a help-desk channel, HubSpot's
help desk rules replace it: no native ticket, whatever the number's setting says (R36).

The webhook handler only decides and queues (inside the delivery's transaction, so the
decision is kept with the event); the worker creates the ticket, re-checking the rule, so a
number that became a help-desk channel in between still gets none.

Creating a CRM ticket has no idempotency key at HubSpot. Each ticket's content carries a
reference word unique to its Aircall activity, and a retry (a worker killed between
HubSpot's answer and our commit, an answer lost on the wire) first searches for it, so it
finds the ticket an earlier attempt made instead of making a second one. HubSpot's search
trails writes by seconds: a retry sooner than that could still duplicate, which a lease
(60 s) never is, and a backoff rarely. The same Aircall event delivered twice is stopped
before it is queued (the webhook log's unique key).
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.aircall import CallEvent, MessageEvent
from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import (
    ACTIVITY_LABELS,
    MISSED_CALL,
    SMS,
    VOICEMAIL,
)
from whatsapp_helpdesk.db.models import ChannelAccount, Number
from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, to_e164
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.native_tickets.ports import NativeTicketsDeps

# HubSpot requires a pipeline stage on ticket creation. Every portal has the default
# support pipeline "0" whose first stage ("New") has id "1" [INF: HubSpot's documented
# defaults; a portal that renamed its pipelines still keeps these internal ids].
TICKET_PIPELINE: Final = "0"
TICKET_STAGE_NEW: Final = "1"

# The outcomes recorded on the webhook log (and shown on the dashboard) for each decision.
QUEUED: Final = "native_ticket_queued"
HELPDESK_RULES_APPLY: Final = "helpdesk_rules_apply"
NOT_CONNECTED: Final = "not_connected_to_hubspot"
SWITCHED_OFF: Final = "native_ticketing_off"


def native_ticketing_applies(
    *, connected_to_hubspot: bool, native_ticketing: bool, helpdesk_channel: bool
) -> bool:
    """R35 and R36 as one rule: on, connected, and not a help-desk WhatsApp channel."""
    return connected_to_hubspot and native_ticketing and not helpdesk_channel


def refusal(
    *, connected_to_hubspot: bool, native_ticketing: bool, helpdesk_channel: bool
) -> str | None:
    """Why no native ticket is made (an outcome word), or None when one is."""
    if helpdesk_channel:
        return HELPDESK_RULES_APPLY  # R36 wins over the number's own setting
    if not connected_to_hubspot:
        return NOT_CONNECTED
    if not native_ticketing:
        return SWITCHED_OFF
    return None


@dataclass(frozen=True)
class Activity:
    """One thing that happened on a number and may deserve a ticket (the job's payload)."""

    kind: str  # MISSED_CALL, VOICEMAIL or SMS
    reference: str  # Aircall's call id or message id
    customer: str  # the customer's number as Aircall shows it
    customer_e164: str | None
    customer_name: str | None
    at: str  # ISO 8601, the provider's time
    text: str = ""  # the SMS body
    voicemail_url: str | None = None


def activity_from_call(event: CallEvent, received_at: datetime) -> Activity | None:
    """A missed call or a voicemail; any other call is not a ticket.

    A call that ends in a voicemail sends both `call.voicemail_left` and `call.ended`
    (in no particular order): the voicemail event makes the ticket, the `call.ended` that
    carries the voicemail is left alone, so one call makes one ticket.
    """
    call = event.call
    if event.event == "call.voicemail_left":
        kind = VOICEMAIL
    elif event.event == "call.ended" and call.is_missed and not call.has_voicemail:
        kind = MISSED_CALL
    else:
        return None
    if call.direction not in (None, "inbound"):
        return None
    when = call.ended_at or call.started_at or received_at
    return Activity(
        kind=kind, reference=str(call.id), customer=call.raw_digits or "unknown number",
        customer_e164=_e164_or_none(call.raw_digits),
        customer_name=call.contact.full_name if call.contact else None,
        at=when.isoformat(), voicemail_url=call.voicemail,
    )


def activity_from_sms(event: MessageEvent, received_at: datetime) -> Activity:
    message = event.message
    when = message.provider_time or received_at
    return Activity(
        kind=SMS, reference=message.id, customer=message.external_number or "unknown number",
        customer_e164=_e164_or_none(message.external_number),
        customer_name=message.contact.full_name if message.contact else None,
        at=when.isoformat(), text=(message.body or "").strip(),
    )


def _e164_or_none(raw: str | None) -> str | None:
    try:
        return to_e164(raw or "")
    except InvalidPhoneNumber:
        return None


def is_helpdesk_channel(session: Session, number_id: int) -> bool:
    return session.scalar(
        select(ChannelAccount.id).where(
            ChannelAccount.number_id == number_id, ChannelAccount.disconnected_at.is_(None)
        ).limit(1)
    ) is not None


# --- Webhook side (inside the delivery's transaction) -----------------------------------------


def on_call_event(
    session: Session, installation_id: int, event: CallEvent, now: datetime
) -> tuple[str, str | None]:
    activity = activity_from_call(event, now)
    if activity is None:
        return ("ignored", "not a missed call or a voicemail")
    assert event.call.number is not None  # the payload validator requires it
    return queue(session, installation_id, event.call.number.id, activity, now)


def on_sms(
    session: Session, installation_id: int, event: MessageEvent, now: datetime
) -> tuple[str, str | None]:
    return queue(session, installation_id, event.number_id, activity_from_sms(event, now), now)


def queue(
    session: Session, installation_id: int, aircall_number_id: int, activity: Activity,
    now: datetime,
) -> tuple[str, str | None]:
    """Queue a ticket if the number's settings call for one; returns (outcome, detail)."""
    number = session.scalar(
        select(Number).where(
            Number.installation_id == installation_id,
            Number.aircall_number_id == str(aircall_number_id),
        )
    )
    if number is None:
        return ("unknown_number", f"Aircall number {aircall_number_id} is not known here")
    why_not = refusal(
        connected_to_hubspot=number.connected_to_hubspot,
        native_ticketing=number.native_ticketing,
        helpdesk_channel=is_helpdesk_channel(session, number.id),
    )
    if why_not is not None:
        return (why_not, activity.kind)
    jobs.enqueue(
        session, payloads.NativeTicket(number_id=number.id, **asdict(activity)),
        installation_id=installation_id, now=now,
    )
    return (QUEUED, activity.kind)


# --- Worker side ----------------------------------------------------------------------------


def ticket_properties(activity: Activity, number_label: str) -> dict[str, str]:
    """The CRM ticket, in the words an agent reads in HubSpot."""
    who = activity.customer_name or activity.customer
    label = ACTIVITY_LABELS.get(activity.kind, activity.kind)
    subject = f"{label} from {who} on {number_label}"
    lines = [f"{label} from {activity.customer} on {number_label} at {activity.at}."]
    if activity.text:
        lines.append(f"Message: {activity.text}")
    if activity.voicemail_url:
        lines.append(f"Voicemail recording: {activity.voicemail_url}")
    lines.append(f"Aircall reference: {reference_token(activity)}")
    return {
        "subject": subject[:250],
        "content": "\n".join(lines),
        "hs_pipeline": TICKET_PIPELINE,
        "hs_pipeline_stage": TICKET_STAGE_NEW,
    }


def reference_token(activity: Activity) -> str:
    """One word, unique to the activity, that a retry searches for (letters and digits only,
    so HubSpot's search tokenizer keeps it whole)."""
    digest = hashlib.sha256(f"{activity.kind}:{activity.reference}".encode()).hexdigest()
    return f"aircallref{digest[:24]}"


def activity_from_payload(payload: payloads.NativeTicket) -> Activity:
    return Activity(**payload.model_dump(include=set(Activity.__dataclass_fields__)))


async def create_native_ticket(
    services: NativeTicketsDeps, entry: outbox.Claimed, payload: payloads.NativeTicket
) -> str:
    """Worker job: one CRM ticket for one activity; a short word for the delivery log."""
    activity = activity_from_payload(payload)

    def number_label_and_refusal() -> tuple[str, str | None]:
        """(the number's label, why no ticket): read in a thread, off the worker's loop."""
        with services.sessions() as session:
            number = session.get(Number, payload.number_id)
            if number is None or number.installation_id != entry.installation_id:
                return "", "number gone"
            why_not = refusal(
                connected_to_hubspot=number.connected_to_hubspot,
                native_ticketing=number.native_ticketing,
                helpdesk_channel=is_helpdesk_channel(session, number.id),
            )
            return number.name or number.digits, why_not

    number_label, why_not = await asyncio.to_thread(number_label_and_refusal)
    if why_not is not None:
        # Settings changed since the event was queued; R36 holds at all times.
        return f"skipped: {why_not}"
    portal = services.hubspot_portal(await hubspot_access_token(services, entry.installation_id),
                                     installation_id=entry.installation_id)
    # Every attempt looks first (not only retries: an admin's retry from the dashboard
    # starts the count again); native tickets are rare, one search each is cheap.
    made = await portal.find_ticket_with_token(reference_token(activity))
    if made is not None:
        return f"ticket {made.id} (made by an earlier attempt)"
    contact = (
        await portal.search_contact_by_phone(activity.customer_e164)
        if activity.customer_e164 else None
    )
    ticket = await portal.create_ticket(
        ticket_properties(activity, number_label), contact_id=contact.id if contact else None
    )
    return f"ticket {ticket.id}"
