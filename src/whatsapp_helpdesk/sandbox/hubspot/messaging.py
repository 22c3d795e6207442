"""Messages, threads and help-desk tickets.

Publishing (`POST .../custom-channels/{channelId}/messages`) threads a message by the
channel's model (reference §1.5): INTEGRATION_THREAD_ID → (channel account, integration
thread id); DELIVERY_IDENTIFIER → (channel account, customer identifier) while that thread
is OPEN. A new thread in a HELP_DESK inbox opens one ticket, associated with the thread's
contact and never with a company (R31). Agent replies become OUTGOING messages announced to
the integration with OUTGOING_CHANNEL_MESSAGE_CREATED (reference §4.2).
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from whatsapp_helpdesk.sandbox.hubspot import constants, crm, errors
from whatsapp_helpdesk.sandbox.hubspot.clock import parse_iso
from whatsapp_helpdesk.sandbox.hubspot.connections import channel_and_account
from whatsapp_helpdesk.sandbox.hubspot.phone import check_delivery_identifier
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.serializers import message_json
from whatsapp_helpdesk.sandbox.hubspot.state import (
    Channel,
    ChannelAccount,
    Contact,
    DeliveryIdentifier,
    Direction,
    Message,
    MessageStatus,
    Participant,
    Thread,
)
from whatsapp_helpdesk.sandbox.hubspot.webhooks import event_envelope

ATTACHMENT_TYPES = frozenset({
    "FILE", "LOCATION", "CONTACT", "UNSUPPORTED_CONTENT", "MESSAGE_HEADER", "QUICK_REPLIES",
    "SOCIAL_MEDIA_METADATA",
})


class DeliveryIdentifierIn(BaseModel):
    type: str
    value: str


class ParticipantIn(BaseModel):
    deliveryIdentifier: DeliveryIdentifierIn
    name: str | None = None
    senderActorId: str | None = None


class PreResolvedContactIn(BaseModel):
    contactVid: int
    contactPropertiesLeadingToMatch: list[str] = Field(default_factory=list)


class PreResolvedContactsIn(BaseModel):
    contacts: list[PreResolvedContactIn]


class MessageEgg(BaseModel):
    """`ChannelIntegrationMessageEgg`.

    The spec marks recipients / timestamp / attachments required, but HubSpot accepts
    messages without them in production (reference §3.1), so the sandbox does too.
    """

    text: str
    richText: str | None = None
    channelAccountId: str
    messageDirection: Direction
    senders: list[ParticipantIn] = Field(min_length=1)
    recipients: list[ParticipantIn] = Field(default_factory=list)
    timestamp: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    integrationThreadId: str | None = None
    integrationIdempotencyId: str | None = None
    inReplyToId: str | None = None
    associateWithContactId: int | None = None
    preResolvedContacts: PreResolvedContactsIn | None = None


@dataclass(frozen=True)
class Published:
    message: Message
    created: bool  # False: an earlier message with the same integrationIdempotencyId


def publish(sandbox: Sandbox, *, portal_id: int, channel_id: str, egg: MessageEgg) -> Published:
    channel, account = channel_and_account(sandbox, portal_id, channel_id, egg.channelAccountId)
    if not account.active:
        raise errors.validation_error(
            f"Channel account {account.id} is not active (archived or not authorized)"
        )
    if egg.integrationIdempotencyId:
        # Keyed per portal as well: the channel is shared by every portal of the app.
        earlier = _by_idempotency_id(sandbox, portal_id, channel.id, egg.integrationIdempotencyId)
        if earlier is not None:
            return Published(message=earlier, created=False)
    for participant in [*egg.senders, *egg.recipients]:
        identifier = participant.deliveryIdentifier
        check_delivery_identifier(identifier.type, identifier.value)
    moment = _message_time(sandbox, egg.timestamp)
    customer = _customer(egg)
    thread = _thread_for(sandbox, channel, account, egg, customer)
    message = _record_integration_message(sandbox, thread, egg, moment)
    return Published(message=message, created=True)


def _by_idempotency_id(
    sandbox: Sandbox, portal_id: int, channel_id: str, idempotency_id: str
) -> Message | None:
    return next(
        (m for m in sandbox.state.messages.values()
         if m.portal_id == portal_id and m.channel_id == channel_id
         and m.integration_idempotency_id == idempotency_id),
        None,
    )


def _message_time(sandbox: Sandbox, timestamp: str | None) -> datetime:
    if timestamp is None:
        return sandbox.clock.now()
    try:
        return parse_iso(timestamp)
    except ValueError as exc:
        raise errors.validation_error(f"Invalid timestamp {timestamp!r}") from exc


def _customer(egg: MessageEgg) -> ParticipantIn:
    """The customer side of the conversation: sender of INCOMING, recipient of OUTGOING."""
    if egg.messageDirection == "INCOMING":
        return egg.senders[0]
    if not egg.recipients:
        raise errors.validation_error("OUTGOING messages need at least one recipient")
    return egg.recipients[0]


def _thread_for(
    sandbox: Sandbox,
    channel: Channel,
    account: ChannelAccount,
    egg: MessageEgg,
    customer: ParticipantIn,
) -> Thread:
    threads = [
        t for t in sandbox.state.threads.values()
        if t.portal_id == account.portal_id and t.channel_account_id == account.id
    ]
    if channel.threading_model == constants.THREADING_INTEGRATION_THREAD_ID:
        if not egg.integrationThreadId:
            raise errors.validation_error(
                "integrationThreadId is required on channels using INTEGRATION_THREAD_ID "
                "threading"
            )
        found = next(
            (t for t in threads if t.integration_thread_id == egg.integrationThreadId), None
        )
        if found is not None:
            reopen(sandbox, found)
            return found
    else:
        found = next(
            (t for t in threads if t.status == "OPEN"
             and t.customer.value == customer.deliveryIdentifier.value),
            None,
        )
        if found is not None:
            return found
    return _new_thread(sandbox, account, egg, customer)


def _new_thread(
    sandbox: Sandbox, account: ChannelAccount, egg: MessageEgg, customer: ParticipantIn
) -> Thread:
    state = sandbox.state
    contact, created_now = _resolve_contact(sandbox, account.portal_id, egg, customer)
    associated = contact is not None and (
        not created_now or sandbox.config.associate_new_contacts
    )
    thread = Thread(
        id=state.thread_ids.next(),
        portal_id=account.portal_id,
        inbox_id=account.inbox_id,
        channel_id=account.channel_id,
        channel_account_id=account.id,
        customer=DeliveryIdentifier(
            customer.deliveryIdentifier.type, customer.deliveryIdentifier.value
        ),
        customer_name=customer.name,
        visitor_id=state.visitor_ids.next(),
        created_at=sandbox.clock.now(),
        contact_id=contact.id if associated and contact is not None else None,
        integration_thread_id=egg.integrationThreadId,
    )
    state.threads[thread.id] = thread
    inbox = state.portals[account.portal_id].inbox(account.inbox_id)
    if inbox is not None and inbox.type == "HELP_DESK":
        _open_help_desk_ticket(sandbox, thread, egg.text, contact if associated else None)
    return thread


def _resolve_contact(
    sandbox: Sandbox, portal_id: int, egg: MessageEgg, customer: ParticipantIn
) -> tuple[Contact | None, bool]:
    """(contact, created by this message). R30: matched on the sender's phone, else created."""
    state = sandbox.state
    forced = egg.associateWithContactId
    if forced is None and egg.preResolvedContacts and egg.preResolvedContacts.contacts:
        forced = egg.preResolvedContacts.contacts[0].contactVid
    if forced is not None:
        return crm.portal_contact(state, portal_id, str(forced)), False
    identifier = customer.deliveryIdentifier
    if identifier.type == "HS_PHONE_NUMBER":
        found = crm.find_contact_by_phone(state, portal_id, identifier.value)
        new_properties = {"phone": identifier.value}
    elif identifier.type == "HS_EMAIL_ADDRESS":
        found = crm.find_contact_by_email(state, portal_id, identifier.value)
        new_properties = {"email": identifier.value}
    else:
        return None, False
    if found is not None:
        return found, False
    properties = {**new_properties, **crm.split_name(customer.name)}
    return crm.create_contact(sandbox, portal_id, properties), True


def _open_help_desk_ticket(
    sandbox: Sandbox, thread: Thread, first_text: str, contact: Contact | None
) -> None:
    channel = sandbox.state.channels[thread.channel_id]
    who = contact.display_name if contact is not None else (
        thread.customer_name or thread.customer.value
    )
    ticket = crm.create_ticket(
        sandbox,
        thread.portal_id,
        {
            "subject": ticket_subject(channel.name, who),
            "content": first_text,
            "hs_pipeline": constants.HELP_DESK_PIPELINE,
            "hs_pipeline_stage": constants.STAGE_NEW,
        },
        contact_ids=[contact.id] if contact is not None else [],
        thread_id=thread.id,
    )
    thread.ticket_id = ticket.id


def ticket_subject(channel_name: str, who: str) -> str:
    """"WhatsApp conversation with Jane Doe" for the WhatsApp channel."""
    label = "WhatsApp" if "whatsapp" in channel_name.lower() else channel_name
    return f"{label} conversation with {who}"


def _record_integration_message(
    sandbox: Sandbox, thread: Thread, egg: MessageEgg, moment: datetime
) -> Message:
    integrator = f"I-{constants.APP_ID}"
    incoming = egg.messageDirection == "INCOMING"
    senders = [
        Participant(
            delivery_identifier=_identifier(p),
            actor_id=thread.contact_actor_id if incoming else (p.senderActorId or integrator),
            name=p.name,
        )
        for p in egg.senders
    ]
    recipients = [
        Participant(
            delivery_identifier=_identifier(p),
            actor_id=None if incoming else thread.contact_actor_id,
            name=p.name,
        )
        for p in egg.recipients
    ]
    message = _store_message(
        sandbox,
        thread,
        direction=egg.messageDirection,
        text=egg.text,
        rich_text=egg.richText,
        attachments=[_attachment(a) for a in egg.attachments],
        created_at=moment,
        created_by=senders[0].actor_id or integrator,
        senders=senders,
        recipients=recipients,
        client_type="INTEGRATION",
        status=MessageStatus("RECEIVED" if incoming else "SENT"),
    )
    message.in_reply_to_id = egg.inReplyToId
    message.integration_idempotency_id = egg.integrationIdempotencyId
    return message


def _identifier(participant: ParticipantIn) -> DeliveryIdentifier:
    return DeliveryIdentifier(participant.deliveryIdentifier.type,
                              participant.deliveryIdentifier.value)


def _attachment(raw: dict[str, Any]) -> dict[str, Any]:
    kind = raw.get("type")
    if kind not in ATTACHMENT_TYPES:
        raise errors.validation_error(f"Unknown attachment type {kind!r}")
    if kind == "FILE":
        if not raw.get("fileId"):
            raise errors.validation_error("FILE attachments need a fileId")
        return {"fileUsageType": "OTHER", **raw, "fileId": str(raw["fileId"])}
    return dict(raw)


def _store_message(
    sandbox: Sandbox,
    thread: Thread,
    *,
    direction: Direction,
    text: str,
    rich_text: str | None,
    attachments: list[dict[str, Any]],
    created_at: datetime,
    created_by: str,
    senders: list[Participant],
    recipients: list[Participant],
    client_type: Literal["HUBSPOT", "INTEGRATION"],
    status: MessageStatus | None,
) -> Message:
    message = Message(
        id=uuid.uuid4().hex,
        portal_id=thread.portal_id,
        thread_id=thread.id,
        channel_id=thread.channel_id,
        channel_account_id=thread.channel_account_id,
        direction=direction,
        text=text,
        rich_text=rich_text,
        attachments=attachments,
        created_at=created_at,
        created_by=created_by,
        senders=senders,
        recipients=recipients,
        client_type=client_type,
        status=status,
        sequence=sandbox.state.message_sequence.take(),
    )
    sandbox.state.messages[message.id] = message
    return message


# --- threads ----------------------------------------------------------------------------------


def portal_thread(sandbox: Sandbox, portal_id: int, thread_id: str) -> Thread:
    thread = sandbox.state.threads.get(thread_id)
    if thread is None or thread.portal_id != portal_id:
        raise errors.not_found(f"Thread {thread_id} not found")
    return thread


def close(sandbox: Sandbox, thread: Thread) -> None:
    """Close the thread and its ticket (the agent resolves the conversation)."""
    if thread.status == "CLOSED":
        return
    thread.status = "CLOSED"
    thread.closed_at = sandbox.clock.now()
    _set_ticket_stage(sandbox, thread, constants.STAGE_CLOSED)


def reopen(sandbox: Sandbox, thread: Thread) -> None:
    """[INF] A new message on a closed INTEGRATION_THREAD_ID thread reopens it and its ticket."""
    if thread.status == "OPEN":
        return
    thread.status = "OPEN"
    thread.closed_at = None
    _set_ticket_stage(sandbox, thread, constants.STAGE_NEW)


def _set_ticket_stage(sandbox: Sandbox, thread: Thread, stage: str) -> None:
    ticket = sandbox.state.tickets.get(thread.ticket_id or "")
    if ticket is not None:
        crm.update_properties(sandbox, ticket, {"hs_pipeline_stage": stage})


# --- agent replies and delivery status ------------------------------------------------------


class ReplyAttachmentIn(BaseModel):
    type: Literal["FILE"] = "FILE"
    name: str
    url: str
    fileUsageType: Literal["AUDIO", "IMAGE", "OTHER", "STICKER", "VOICE_RECORDING"] = "OTHER"
    fileId: str | None = None


class AgentReplyIn(BaseModel):
    """Body of `POST /_sandbox/portals/{portalId}/threads/{threadId}/replies`."""

    text: str = ""
    richText: str | None = None
    attachments: list[ReplyAttachmentIn] = Field(default_factory=list)
    channelAccountId: str | None = None
    agentId: int = 1


def agent_reply(
    sandbox: Sandbox, *, portal_id: int, thread_id: str, reply: AgentReplyIn
) -> Message:
    """An agent answers in the ticket (R21): record the message, tell the integration."""
    thread = portal_thread(sandbox, portal_id, thread_id)
    channel, account = channel_and_account(
        sandbox, portal_id, thread.channel_id, reply.channelAccountId or thread.channel_account_id
    )
    if not account.active:
        raise errors.validation_error(f"Channel account {account.id} is disconnected")
    if not channel.allows_outgoing:
        raise errors.validation_error(f"Channel {channel.name} does not allow outgoing messages")
    agent = sandbox.state.portals[portal_id].agent(reply.agentId)
    if agent is None:
        raise errors.validation_error(f"Agent {reply.agentId} not found in portal {portal_id}")
    if not reply.text.strip() and not reply.attachments:
        raise errors.validation_error("A reply needs text or an attachment")
    contact = sandbox.state.contacts.get(thread.contact_id or "")
    message = _store_message(
        sandbox,
        thread,
        direction="OUTGOING",
        text=reply.text,
        rich_text=reply.richText if reply.richText is not None else composer_html(reply.text),
        attachments=[_reply_attachment(a) for a in reply.attachments],
        created_at=sandbox.clock.now(),
        created_by=agent.actor_id,
        senders=[Participant(account.delivery_identifier, agent.actor_id, agent.name)],
        recipients=[Participant(
            thread.customer,
            thread.contact_actor_id,
            contact.display_name if contact is not None else thread.customer_name,
        )],
        client_type="HUBSPOT",
        status=None,  # "sending" until the integration PATCHes SENT / FAILED (reference §4.3)
    )
    message.channel_account_id = account.id
    _announce_outgoing(sandbox, channel, thread, message)
    return message


def composer_html(text: str) -> str:
    """[INF] HubSpot's reply composer always sends HTML too (reference §4.2 example), in the
    shape of HubSpot's rich-text editor: one top-level <div>, each typed line a
    <p style="margin:0;">, an empty line <p …><br></p>. A newline inside one element would
    not be a line break in HTML, so the lines must be elements, as the real composer writes."""
    if not text:
        return ""
    lines = "".join(
        f'<p style="margin:0;">{html.escape(line) if line else "<br>"}</p>'
        for line in text.replace("\r\n", "\n").split("\n")
    )
    return f'<div style="" dir="auto" data-top-level="true">{lines}</div>'


def _reply_attachment(attachment: ReplyAttachmentIn) -> dict[str, Any]:
    """`PublicFile` as it appears on messages and webhooks."""
    return {
        "type": "FILE",
        "fileId": attachment.fileId or str(uuid.uuid4().int % 10**11),
        "fileUsageType": attachment.fileUsageType,
        "name": attachment.name,
        "url": attachment.url,
    }


def _announce_outgoing(
    sandbox: Sandbox, channel: Channel, thread: Thread, message: Message
) -> None:
    """OUTGOING_CHANNEL_MESSAGE_CREATED (reference §4.2): thread ids at top level."""
    payload = {
        **event_envelope(
            sandbox, constants.EVENT_OUTGOING_MESSAGE, thread.portal_id, channel.id
        ),
        "channelIntegrationThreadIds": (
            [thread.integration_thread_id] if thread.integration_thread_id else []
        ),
        "message": message_json(message),
    }
    sandbox.webhooks.emit(channel, thread.portal_id, payload)


def set_status(
    sandbox: Sandbox,
    message: Message,
    *,
    status_type: Literal["SENT", "READ", "FAILED"],
    error_message: str | None,
) -> Message:
    """The integration reports the delivery outcome (R23)."""
    message.status = MessageStatus(
        status_type, error_message if status_type == "FAILED" else None
    )
    message.updated_at = sandbox.clock.now()
    return message


def portal_message(sandbox: Sandbox, portal_id: int, channel_id: str, message_id: str) -> Message:
    message = sandbox.state.messages.get(message_id)
    if message is None or message.portal_id != portal_id or message.channel_id != channel_id:
        raise errors.not_found(f"Message {message_id} not found")
    return message
