"""Worker job: publish one stored customer message into HubSpot (R11, R12, R20, R30).

The ticket is chosen here, in the worker, where the outbox guarantees one message of a
conversation at a time in provider-timestamp order (R15); the choice is committed before
HubSpot is called, so a retry reuses it and never mints a second thread.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from whatsapp_helpdesk.adapter_ports import CHANNEL_ID_KEY
from whatsapp_helpdesk.credentials import (
    StoredHubSpotTokens,
    hubspot_access_token,
    stored_hubspot_tokens,
)
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Message,
    Number,
    ServiceState,
    Ticket,
)
from whatsapp_helpdesk.domain.tickets import (
    Activity,
    JoinTicket,
    PlacedMessage,
    choose_ticket,
    nearest_activity,
)
from whatsapp_helpdesk.errors import Permanent
from whatsapp_helpdesk.hubspot import FileAttachment, PublishedMessage
from whatsapp_helpdesk.inbound.ports import InboundDeps

MESSAGES = cast(Table, Message.__table__)
TICKETS = cast(Table, Ticket.__table__)
CONVERSATIONS = cast(Table, Conversation.__table__)
NUMBERS = cast(Table, Number.__table__)
ACCOUNTS = cast(Table, ChannelAccount.__table__)

# The job's statements, built once with bound parameters, in Core on the tables: the ORM's
# identity map and unit of work, and building each statement again, were most of the
# worker's CPU per publication (bench/end_to_end.py, docs/performance.md).
_m = MESSAGES.c
_customer = MESSAGES.alias("customer")
# Each neighbour comes with the customer's latest message at or before it: the facts the
# activity rule (domain/tickets.py) needs, read in the neighbours' own query.
_LAST_CUSTOMER_MESSAGE_AT = (
    select(func.max(_customer.c.sent_at))
    .where(_customer.c.conversation_id == _m.conversation_id,
           _customer.c.direction == "inbound",
           _customer.c.sent_at <= _m.sent_at)
    .scalar_subquery()
)
_NEIGHBOUR_COLUMNS = (_m.sent_at, _m.ticket_id, _m.direction, _m.status,
                      _LAST_CUSTOMER_MESSAGE_AT.label("last_customer_message_at"))
_PLACED_NEIGHBOURS = select(*_NEIGHBOUR_COLUMNS).where(
    _m.conversation_id == bindparam("conversation_id"),
    _m.ticket_id.is_not(None),
    _m.id != bindparam("message_id"),
)
_BEFORE = (_PLACED_NEIGHBOURS.where(_m.sent_at <= bindparam("sent_at"))
           .order_by(_m.sent_at.desc(), _m.id.desc()))
_AFTER = (_PLACED_NEIGHBOURS.where(_m.sent_at > bindparam("sent_at"))
          .order_by(_m.sent_at, _m.id))
_LOAD = (
    select(_m.id, _m.status, _m.installation_id, _m.conversation_id, _m.ticket_id, _m.text,
           _m.sender_name, _m.sent_at, _m.provider_message_id, _m.media_file_id,
           _m.media_usage_type, _m.media_file_name, CONVERSATIONS.c.customer_e164,
           CONVERSATIONS.c.customer_name, NUMBERS.c.e164.label("number_e164"),
           ACCOUNTS.c.hubspot_channel_account_id)
    .select_from(
        MESSAGES.join(CONVERSATIONS, CONVERSATIONS.c.id == _m.conversation_id)
        .join(NUMBERS, NUMBERS.c.id == CONVERSATIONS.c.number_id)
        .outerjoin(ACCOUNTS, and_(ACCOUNTS.c.number_id == NUMBERS.c.id,
                                  ACCOUNTS.c.disconnected_at.is_(None))))
    .where(_m.id == bindparam("message_id"))
    .limit(1)
)
_SKIP = (update(MESSAGES).where(_m.id == bindparam("message_id"))
         .values(status="skipped", failure_reason=bindparam("reason")))
_SET_TICKET = (update(MESSAGES).where(_m.id == bindparam("message_id"))
               .values(ticket_id=bindparam("ticket_id")))
_THREAD_ID = select(TICKETS.c.integration_thread_id).where(
    TICKETS.c.id == bindparam("ticket_id"))
_NEW_TICKET = insert(TICKETS).returning(TICKETS.c.id)
_CHANNEL_ID = select(ServiceState.value).where(ServiceState.key == CHANNEL_ID_KEY)


# Replies that are not activity are rare; past this many in a row, the customer's message
# is treated as having no neighbour on that side (a new ticket rather than a wrong one).
NEIGHBOURS_LOOKED_AT = 50


def _nearest_activity(connection: Connection, candidates: Select[Any],
                      parameters: dict[str, Any]) -> Activity | None:
    """The first candidate that counts as activity (domain/tickets.py), each with its facts,
    all read in one query."""
    rows = connection.execute(candidates.limit(NEIGHBOURS_LOOKED_AT), parameters)
    return nearest_activity(
        PlacedMessage(
            ticket_id=row.ticket_id, inbound=row.direction == "inbound",
            failed=row.status == "failed", sent_at=row.sent_at,
            last_customer_message_at=row.last_customer_message_at,
        )
        for row in rows
        if row.ticket_id is not None  # the candidates are placed messages only
    )


def _ticket_of(connection: Connection, *, message_id: int, conversation_id: int,
               sent_at: datetime, ticket_id: int | None, inactivity: timedelta) -> int:
    """The message's ticket by the inactivity rule (R12, R20), set on the message; a new
    ticket when the rule says so."""
    if ticket_id is not None:
        return ticket_id
    where = {"conversation_id": conversation_id, "message_id": message_id, "sent_at": sent_at}
    decision = choose_ticket(
        sent_at, before=_nearest_activity(connection, _BEFORE, where),
        after=_nearest_activity(connection, _AFTER, where), inactivity=inactivity,
    )
    if isinstance(decision, JoinTicket):
        ticket_id = decision.ticket_id
    else:
        ticket_id = connection.execute(_NEW_TICKET, {
            "conversation_id": conversation_id,
            "integration_thread_id": f"wa-{conversation_id}-{uuid.uuid4().hex[:12]}",
            "started_at": sent_at,
        }).scalar_one()
    connection.execute(_SET_TICKET, {"message_id": message_id, "ticket_id": ticket_id})
    return ticket_id


def assign_ticket(session: Session, message: Message, *, inactivity: timedelta) -> Ticket:
    """Place the message in a ticket by the inactivity rule (R12, R20)."""
    session.flush()  # the ORM's pending changes, seen by the statements below
    ticket_id = _ticket_of(session.connection(), message_id=message.id,
                           conversation_id=message.conversation_id, sent_at=message.sent_at,
                           ticket_id=message.ticket_id, inactivity=inactivity)
    # Set through Core above: the ORM object is told without writing it again.
    set_committed_value(message, "ticket_id", ticket_id)
    ticket = session.get(Ticket, ticket_id)
    assert ticket is not None
    return ticket


@dataclass(frozen=True)
class _Placed:
    """A message placed in its ticket, with what HubSpot must be told."""

    request: dict[str, Any]
    installation_id: int
    ticket_id: int
    tokens: StoredHubSpotTokens  # read in the same transaction: one fewer per publication
    channel_id: str


def _place(services: InboundDeps, message_id: int) -> _Placed | str | None:
    """The database half before HubSpot: the ticket chosen and committed (so a retry reuses
    it), or a word saying why there is nothing to publish, or None when the custom channel
    is not registered yet. One transaction."""
    with services.engine.begin() as connection:
        # As Services.channel_id() reads it, on this transaction's connection.
        channel_id = (services.settings.hubspot_channel_id
                      or connection.execute(_CHANNEL_ID).scalar())
        if not channel_id:
            return None
        row = connection.execute(_LOAD, {"message_id": message_id}).first()
        if row is None:
            return "message gone"
        if row.status == "published":
            return "already published"
        if not row.hubspot_channel_account_id:
            connection.execute(_SKIP, {
                "message_id": message_id,
                "reason": "The number was disconnected from the help desk."})
            return "skipped: number disconnected"
        ticket_id = _ticket_of(
            connection, message_id=row.id, conversation_id=row.conversation_id,
            sent_at=row.sent_at, ticket_id=row.ticket_id,
            inactivity=timedelta(seconds=services.settings.ticket_inactivity_seconds),
        )
        thread_id = connection.execute(_THREAD_ID, {"ticket_id": ticket_id}).scalar_one()
        tokens = stored_hubspot_tokens(services, connection, row.installation_id)
        return _Placed(
            request=dict(
                channel_account_id=row.hubspot_channel_account_id,
                text=row.text,
                sender_e164=row.customer_e164,
                sender_name=row.sender_name or row.customer_name,
                recipient_e164=row.number_e164,
                timestamp=row.sent_at,
                idempotency_id=row.provider_message_id,
                integration_thread_id=thread_id,
                attachments=_attachments(row),
            ),
            installation_id=row.installation_id,
            ticket_id=ticket_id,
            tokens=tokens,
            channel_id=channel_id,
        )


def _attachments(message: Row[Any, *tuple[Any, ...]]) -> tuple[FileAttachment, ...]:
    """The file fetched and uploaded ahead of the publish (inbound/media.py, R51)."""
    if message.media_file_id is None:
        return ()
    return (FileAttachment(file_id=message.media_file_id,
                           usage_type=message.media_usage_type or "OTHER",
                           name=message.media_file_name),)


# Built once; Core on the tables, not the ORM's unit of work (bench/end_to_end.py).
_MARK_PUBLISHED = (
    update(MESSAGES).where(MESSAGES.c.id == bindparam("message_id"))
    .values(status="published", failure_reason=None,
            hubspot_message_id=bindparam("hubspot_message_id"))
)
_FIRST_THREAD_ID = (
    update(TICKETS).where(TICKETS.c.id == bindparam("ticket_id"),
                          or_(TICKETS.c.hubspot_thread_id.is_(None),
                              TICKETS.c.hubspot_thread_id == ""))
    .values(hubspot_thread_id=bindparam("thread_id"))
)


def _record_published(message_id: int, ticket_id: int, published: PublishedMessage,
                      connection: Connection) -> None:
    connection.execute(_MARK_PUBLISHED, {"message_id": message_id,
                                         "hubspot_message_id": published.message_id})
    if published.conversations_thread_id:
        connection.execute(_FIRST_THREAD_ID, {
            "ticket_id": ticket_id, "thread_id": published.conversations_thread_id})


def _in_own_transaction(services: InboundDeps, step: outbox.CompletionStep) -> None:
    with services.engine.begin() as connection:
        step(connection)


async def publish_inbound(services: InboundDeps, message_id: int) -> str:
    """Returns a short word for the delivery log; raises the error tree on failure.

    The database work runs in a thread: on the event loop it would hold up the worker's
    other slots while PostgreSQL answers (bench/worker_processes.py measured a third of the
    time)."""
    placed = await asyncio.to_thread(_place, services, message_id)
    if placed is None:
        raise Permanent("The HubSpot custom channel is not registered yet "
                        "(run `whatsapp-helpdesk hubspot register-channel`).")
    if isinstance(placed, str):
        return placed
    channel_id = placed.channel_id
    token = await hubspot_access_token(services, placed.installation_id, stored=placed.tokens)
    portal = services.hubspot_portal(token, installation_id=placed.installation_id)
    published = await portal.publish_message(
        channel_id, direction="INCOMING", **placed.request
    )
    record = functools.partial(_record_published, message_id, placed.ticket_id, published)
    # In the worker, recorded in the transaction that marks the entry done (a retry after a
    # crash in between publishes again with the same idempotency id: HubSpot keeps one).
    if not outbox.with_completion(record):
        await asyncio.to_thread(_in_own_transaction, services, record)
    return "published"
