"""Worker job: publish one stored customer message into HubSpot (R11, R12, R20, R30).

The ticket is chosen here, in the worker, where the outbox guarantees one message of a
conversation at a time in provider-timestamp order (R15); the choice is committed before
HubSpot is called, so a retry reuses it and never mints a second thread.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.db.models import ChannelAccount, Conversation, Message, Number, Ticket
from whatsapp_helpdesk.domain.tickets import (
    Activity,
    JoinTicket,
    PlacedMessage,
    choose_ticket,
    nearest_activity,
)
from whatsapp_helpdesk.errors import Permanent
from whatsapp_helpdesk.hubspot import FileAttachment, PublishedMessage

# Replies that are not activity are rare; past this many in a row, the customer's message
# is treated as having no neighbour on that side (a new ticket rather than a wrong one).
NEIGHBOURS_LOOKED_AT = 50


def _nearest_activity(session: Session, candidates: Select[Message]) -> Activity | None:
    """The first candidate that counts as activity (domain/tickets.py), its facts read in
    one query: each candidate with the customer's latest message at or before it."""
    customer = aliased(Message)
    last_customer_message = (
        select(func.max(customer.sent_at))
        .where(customer.conversation_id == Message.conversation_id,
               customer.direction == "inbound",
               customer.sent_at <= Message.sent_at)
        .scalar_subquery()
    )
    rows = session.execute(
        candidates.add_columns(last_customer_message).limit(NEIGHBOURS_LOOKED_AT)
    ).all()
    return nearest_activity(
        PlacedMessage(
            ticket_id=row.ticket_id, inbound=row.direction == "inbound",
            failed=row.status == "failed", sent_at=row.sent_at,
            last_customer_message_at=last_at,
        )
        for row, last_at in rows
        if row.ticket_id is not None  # `candidates` holds placed messages only
    )


def _neighbours(session: Session, message: Message) -> tuple[Activity | None, Activity | None]:
    placed = select(Message).where(
        Message.conversation_id == message.conversation_id,
        Message.ticket_id.is_not(None),
        Message.id != message.id,
    )
    return (
        _nearest_activity(session, placed.where(Message.sent_at <= message.sent_at)
                          .order_by(Message.sent_at.desc(), Message.id.desc())),
        _nearest_activity(session, placed.where(Message.sent_at > message.sent_at)
                          .order_by(Message.sent_at, Message.id)),
    )


def assign_ticket(session: Session, message: Message, *, inactivity: timedelta) -> Ticket:
    """Place the message in a ticket by the inactivity rule (R12, R20)."""
    if message.ticket_id is not None:
        ticket = session.get(Ticket, message.ticket_id)
        assert ticket is not None
        return ticket
    before, after = _neighbours(session, message)
    decision = choose_ticket(message.sent_at, before=before, after=after, inactivity=inactivity)
    if isinstance(decision, JoinTicket):
        ticket = session.get(Ticket, decision.ticket_id)
        assert ticket is not None
    else:
        ticket = Ticket(
            conversation_id=message.conversation_id,
            integration_thread_id=f"wa-{message.conversation_id}-{uuid.uuid4().hex[:12]}",
            started_at=message.sent_at,
        )
        session.add(ticket)
        session.flush()
    message.ticket_id = ticket.id
    return ticket


@dataclass(frozen=True)
class _Placed:
    """A message placed in its ticket, with what HubSpot must be told."""

    request: dict[str, Any]
    installation_id: int
    ticket_id: int


def _place(services: Services, message_id: int) -> _Placed | str:
    """The database half before HubSpot: the ticket chosen and committed (so a retry reuses
    it), or a word saying why there is nothing to publish."""
    with services.sessions.begin() as session:
        message = session.get(Message, message_id)
        if message is None:
            return "message gone"
        if message.status == "published":
            return "already published"
        conversation = session.get(Conversation, message.conversation_id)
        assert conversation is not None
        number = session.get(Number, conversation.number_id)
        assert number is not None
        account = session.scalar(
            select(ChannelAccount).where(
                ChannelAccount.number_id == number.id, ChannelAccount.disconnected_at.is_(None)
            )
        )
        if account is None or not account.hubspot_channel_account_id:
            message.status = "skipped"
            message.failure_reason = "The number was disconnected from the help desk."
            return "skipped: number disconnected"
        ticket = assign_ticket(
            session, message,
            inactivity=timedelta(seconds=services.settings.ticket_inactivity_seconds),
        )
        return _Placed(
            request=dict(
                channel_account_id=account.hubspot_channel_account_id,
                text=message.text,
                sender_e164=conversation.customer_e164,
                sender_name=message.sender_name or conversation.customer_name,
                recipient_e164=number.e164,
                timestamp=message.sent_at,
                idempotency_id=message.provider_message_id,
                integration_thread_id=ticket.integration_thread_id,
                attachments=_attachments(message),
            ),
            installation_id=message.installation_id,
            ticket_id=ticket.id,
        )


def _attachments(message: Message) -> tuple[FileAttachment, ...]:
    """The file fetched and uploaded ahead of the publish (inbound/media.py, R51)."""
    if message.media_file_id is None:
        return ()
    return (FileAttachment(file_id=message.media_file_id,
                           usage_type=message.media_usage_type or "OTHER",
                           name=message.media_file_name),)


def _record_published(
    services: Services, message_id: int, ticket_id: int, published: PublishedMessage
) -> None:
    with services.sessions.begin() as session:
        message = session.get(Message, message_id)
        ticket = session.get(Ticket, ticket_id)
        assert message is not None and ticket is not None
        message.status = "published"
        message.failure_reason = None
        message.hubspot_message_id = published.message_id
        if published.conversations_thread_id and not ticket.hubspot_thread_id:
            ticket.hubspot_thread_id = published.conversations_thread_id


async def publish_inbound(services: Services, message_id: int) -> str:
    """Returns a short word for the delivery log; raises the error tree on failure.

    The database work runs in a thread: on the event loop it would hold up the worker's
    other slots while PostgreSQL answers (bench/worker_processes.py measured a third of the
    time)."""
    channel_id = await asyncio.to_thread(services.channel_id)
    if not channel_id:
        raise Permanent("The HubSpot custom channel is not registered yet "
                        "(run `whatsapp-helpdesk hubspot register-channel`).")
    placed = await asyncio.to_thread(_place, services, message_id)
    if isinstance(placed, str):
        return placed
    token = await hubspot_access_token(services, placed.installation_id)
    portal = services.hubspot_portal(token, installation_id=placed.installation_id)
    published = await portal.publish_message(
        channel_id, direction="INCOMING", **placed.request
    )
    await asyncio.to_thread(_record_published, services, message_id, placed.ticket_id, published)
    return "published"
