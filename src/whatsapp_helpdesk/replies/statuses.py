"""What becomes of an agent's reply after it left: Aircall's echoes and statuses, and the
`report_status` job that tells HubSpot (R15, R23).

- `message.sent` for one of our sends is recognised by the Aircall id we recorded, or —
  when it arrives before we could record it (the send's answer is still on its way, or
  the worker died in between) — by its conversation and text, and the id is adopted
  (docs/decisions/0002-no-duplicate-whatsapp-sends.md). It is never published to HubSpot.
- `message.status_updated` moves the reply forward, never back (`domain/statuses.py`).
- Every move that changes what HubSpot shows enqueues one `report_status` entry, in the
  same transaction; entries of one reply are worked in order (ordering key per reply), so
  HubSpot sees SENT before READ even when the PATCH of SENT had to be retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.aircall import (
    InvalidAircallPayload,
    MessageEvent,
    parse_envelope,
    parse_event,
)
from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Conversation, Message, Number, WebhookEvent
from whatsapp_helpdesk.domain import statuses
from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, to_e164
from whatsapp_helpdesk.errors import Permanent
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.replies.ports import RepliesDeps

log = structlog.get_logger(__name__)


# Aircall gives no reason with a failed status (reference aircall §E1): say what we know.
PROVIDER_FAILED_MESSAGE = (
    "WhatsApp could not deliver this reply to the customer (Aircall reported it as failed)."
)

# Outcomes recorded on Aircall webhook events that may be the echo of a send we could not
# record yet; `find_stored_echo` searches them.
UNMATCHED_SENT = "sent_outside_helpdesk"
UNMATCHED_STATUS = "status_for_unknown_message"


# --- Moving a reply forward ------------------------------------------------------------------


def advance_outbound(
    session: Session,
    message: Message,
    new_status: str,
    *,
    now: datetime,
    reason: str | None = None,
    channel_id: str | None = None,
) -> bool:
    """Move an outbound message to `new_status` if that is forward (R23), and queue the
    HubSpot report when HubSpot's view changes. Returns whether it moved."""
    old_status = message.status
    if not statuses.may_advance(old_status, new_status):
        return False
    message.status = new_status
    if new_status == statuses.FAILED:
        message.failure_reason = reason or PROVIDER_FAILED_MESSAGE
    news = statuses.news_for_hubspot(old_status, new_status)
    if news is not None and message.hubspot_message_id:
        enqueue_report(
            session, installation_id=message.installation_id, message_id=message.id,
            hubspot_message_id=message.hubspot_message_id, status=news,
            error=message.failure_reason if news == "FAILED" else None,
            channel_id=channel_id, now=now,
        )
    log.info("reply.status", message_id=message.id, old=old_status, new=new_status,
             reported=news)
    return True


def enqueue_report(
    session: Session,
    *,
    installation_id: int,
    hubspot_message_id: str,
    status: statuses.HubSpotStatus,
    now: datetime,
    message_id: int | None = None,
    error: str | None = None,
    channel_id: str | None = None,
) -> None:
    jobs.enqueue(
        session,
        payloads.ReportStatus(hubspot_message_id=hubspot_message_id, status=status, error=error,
                              channel_id=channel_id),
        installation_id=installation_id,
        now=now,
        message_id=message_id,
        ordering_key=f"status:{hubspot_message_id}"[:64],
        ordering_at=now,
    )


# --- Aircall events (called from inbound/ingest.py, inside the delivery's transaction) ---------


def on_message_sent(
    session: Session, installation_id: int, event: MessageEvent, now: datetime
) -> tuple[str, str | None]:
    """`message.sent`: our own reply echoed back (never published, R15), or an agent
    writing from Aircall's own app (kept, not published)."""
    ours = _by_aircall_id(session, installation_id, event.message.id) or adopt_echo(
        session, installation_id, event
    )
    if ours is None:
        # Looked up again: adopting waited on the row lock of a worker that may just have
        # recorded this very id.
        ours = _by_aircall_id(session, installation_id, event.message.id)
    if ours is None:
        return (UNMATCHED_SENT, None)
    if ours.direction == "outbound":
        # Aircall accepted it: SENT, if the worker has not said so already (R23).
        advance_outbound(session, ours, statuses.SENT, now=now)
        # Imported here: replies/reengagement.py builds on this module.
        from whatsapp_helpdesk.replies.reengagement import ensure_note

        ensure_note(session, ours, None, now)  # R52: its ticket note, if it went as one
    return ("echo_of_our_reply", None)


def on_status_updated(
    session: Session, installation_id: int, event: MessageEvent, now: datetime
) -> tuple[str, str | None]:
    """`message.status_updated`: sent / delivered / read / failed, in any order (R23)."""
    raw_status = event.message.status
    new_status = statuses.from_aircall(raw_status)
    ours = _by_aircall_id(session, installation_id, event.message.id)
    if ours is None and new_status is not None:
        # A status of a send whose answer we have not recorded yet: Aircall has it.
        ours = adopt_echo(session, installation_id, event)
    if ours is None:
        return (UNMATCHED_STATUS, raw_status)
    if ours.direction != "outbound" or new_status is None:
        return ("status_kept", raw_status)
    moved = advance_outbound(session, ours, new_status, now=now)
    return ("status_applied" if moved else "status_not_newer", raw_status)


def _by_aircall_id(session: Session, installation_id: int, aircall_id: str) -> Message | None:
    return session.scalar(
        select(Message).where(
            Message.installation_id == installation_id,
            Message.provider_message_id == aircall_id,
        )
    )


# --- Recognising the echo of a send we could not record ---------------------------------------


def adopt_echo(session: Session, installation_id: int, event: MessageEvent) -> Message | None:
    """The reply being sent that this outbound WhatsApp event is the echo of, with the
    event's Aircall id recorded on it; or None."""
    target = echo_target(session, installation_id, event)
    if target is not None:
        target.provider_message_id = event.message.id
        session.flush()
        log.info("reply.echo_adopted", message_id=target.id)
    return target


def echo_target(session: Session, installation_id: int, event: MessageEvent) -> Message | None:
    """The reply (status `sending`, no Aircall id yet) this event is the echo of, or None.

    Same business line, same customer, same text: Aircall fires `message.sent` for our own
    API sends with the body we sent (reference aircall §E9). The outbox sends one reply of
    a conversation at a time, so at most one reply of the conversation is `sending`.
    """
    message = event.message
    if message.direction != "outbound" or not message.is_whatsapp:
        return None
    candidate = _sending_reply(session, installation_id, event)
    if candidate is None:
        return None
    if candidate.text.strip() == (message.body or "").strip():
        return candidate
    # R52: a reply that went as the number's template is echoed with the template's text,
    # not the reply's; it is the one being sent since its conversation's template went.
    if (message.type or "").lower() == "template" and went_as_template(session, candidate):
        return candidate
    return None


def went_as_template(session: Session, reply: Message) -> bool:
    """Whether this reply is the one the conversation's re-engagement template went for
    (replies/reengagement.py marks the conversation when it sends one)."""
    conversation = session.get(Conversation, reply.conversation_id)
    sent = conversation.template_sent_at if conversation is not None else None
    return sent is not None and sent >= reply.stored_at


def _sending_reply(session: Session, installation_id: int, event: MessageEvent) -> Message | None:
    try:
        customer = to_e164(event.message.external_number or event.message.raw_digits or "")
    except InvalidPhoneNumber:
        return None
    return session.scalar(
        select(Message)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Number, Number.id == Conversation.number_id)
        .where(
            Message.installation_id == installation_id,
            Message.direction == "outbound",
            Message.status == statuses.SENDING,
            Message.provider_message_id.is_(None),
            Number.aircall_number_id == str(event.number_id),
            Conversation.customer_e164 == customer,
        )
        .order_by(Message.id)
        .limit(1)
        # PostgreSQL: wait for a worker recording this reply's id, then see its commit.
        .with_for_update(of=Message)
    )


def find_stored_echo(session: Session, message: Message) -> str | None:
    """Adopt an echo that was stored before it could be matched (e.g. it raced the mark
    `sending`); returns the adopted Aircall id or None. Only events received after the
    reply was stored are considered: an older one cannot be its echo."""
    events: Iterable[WebhookEvent] = session.scalars(
        select(WebhookEvent)
        .where(
            WebhookEvent.source == "aircall",
            WebhookEvent.installation_id == message.installation_id,
            WebhookEvent.event_type.in_(("message.sent", "message.status_updated")),
            WebhookEvent.outcome.in_((UNMATCHED_SENT, UNMATCHED_STATUS)),
            WebhookEvent.received_at >= message.stored_at,
        )
        .order_by(WebhookEvent.id)
    )
    for stored in events:
        try:
            event = parse_event(parse_envelope(stored.payload))
        except InvalidAircallPayload:
            continue
        if not isinstance(event, MessageEvent):
            continue
        if _by_aircall_id(session, message.installation_id, event.message.id) is not None:
            continue  # already the id of another message
        target = echo_target(session, message.installation_id, event)
        if target is not None and target.id == message.id:
            message.provider_message_id = event.message.id
            stored.outcome = "echo_of_our_reply"
            return event.message.id
    return None


# --- The job: tell HubSpot ----------------------------------------------------------------------


async def report_status(
    services: RepliesDeps, entry: outbox.Claimed, payload: payloads.ReportStatus
) -> str:
    """PATCH the reply's status into HubSpot (reference hubspot §4.3)."""
    hubspot_message_id, status = payload.hubspot_message_id, payload.status
    if not hubspot_message_id:
        raise Permanent(f"report_status entry {entry.id} names no HubSpot message")
    # The stored channel is read in a thread, off the worker's event loop.
    channel_id = payload.channel_id or await asyncio.to_thread(services.channel_id)
    if not channel_id:
        raise Permanent("The HubSpot custom channel is not registered yet.")
    token = await hubspot_access_token(services, entry.installation_id)
    portal = services.hubspot_portal(token, installation_id=entry.installation_id)
    await portal.update_message_status(
        channel_id, hubspot_message_id, status, payload.error if status == "FAILED" else None
    )
    return f"HubSpot shows {status}"
