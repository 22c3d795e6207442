"""Worker job: publish one stored customer message into HubSpot (R11, R12, R20, R30).

The ticket is chosen here, in the worker, where the outbox guarantees one message of a
conversation at a time in provider-timestamp order (R15); the choice is committed before
HubSpot is called, so a retry reuses it and never mints a second thread.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import ChannelAccount, Conversation, Message, Number, Ticket
from whatsapp_helpdesk.domain.tickets import Activity, JoinTicket, choose_ticket
from whatsapp_helpdesk.errors import Permanent
from whatsapp_helpdesk.flows.credentials import hubspot_access_token


def _neighbours(session: Session, message: Message) -> tuple[Activity | None, Activity | None]:
    # Activity is a message exchanged (R20): a reply refused before it left (window closed,
    # content refused, channel gone) or failed at Aircall never reached the customer, so it
    # neither keeps a ticket open nor joins the customer's next message to it.
    placed = select(Message.sent_at, Message.ticket_id).where(
        Message.conversation_id == message.conversation_id,
        Message.ticket_id.is_not(None),
        Message.id != message.id,
        (Message.direction == "inbound") | (Message.status != "failed"),
    )
    before = session.execute(
        placed.where(Message.sent_at <= message.sent_at).order_by(Message.sent_at.desc()).limit(1)
    ).first()
    after = session.execute(
        placed.where(Message.sent_at > message.sent_at).order_by(Message.sent_at).limit(1)
    ).first()
    return (
        Activity(before.sent_at, before.ticket_id) if before else None,
        Activity(after.sent_at, after.ticket_id) if after else None,
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


async def publish_inbound(services: Services, message_id: int) -> str:
    """Returns a short word for the delivery log; raises the error tree on failure."""
    channel_id = services.channel_id()
    if not channel_id:
        raise Permanent("The HubSpot custom channel is not registered yet "
                        "(run `whatsapp-helpdesk hubspot register-channel`).")
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
        request = dict(
            channel_account_id=account.hubspot_channel_account_id,
            text=message.text,
            sender_e164=conversation.customer_e164,
            sender_name=message.sender_name or conversation.customer_name,
            recipient_e164=number.e164,
            timestamp=message.sent_at,
            idempotency_id=message.provider_message_id,
            integration_thread_id=ticket.integration_thread_id,
        )
        installation_id = message.installation_id
        ticket_id = ticket.id

    token = await hubspot_access_token(services, installation_id)
    published = await services.hubspot_portal(token).publish_message(
        channel_id, direction="INCOMING", **request  # type: ignore[arg-type]
    )
    with services.sessions.begin() as session:
        message = session.get(Message, message_id)
        ticket = session.get(Ticket, ticket_id)
        assert message is not None and ticket is not None
        message.status = "published"
        message.failure_reason = None
        message.hubspot_message_id = published.message_id
        if published.conversations_thread_id and not ticket.hubspot_thread_id:
            ticket.hubspot_thread_id = published.conversations_thread_id
    return "published"
