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
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from whatsapp_helpdesk.adapter_ports import CHANNEL_ID_KEY
from whatsapp_helpdesk.credentials import (
    StoredHubSpotTokens,
    hubspot_access_token,
    hubspot_tokens_of,
)
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Installation,
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
INSTALLATIONS = cast(Table, Installation.__table__)

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
_NEIGHBOUR_COLUMNS = (_m.id, _m.sent_at, _m.ticket_id, _m.direction, _m.status,
                      _LAST_CUSTOMER_MESSAGE_AT.label("last_customer_message_at"))
_PLACED_NEIGHBOURS = select(*_NEIGHBOUR_COLUMNS).where(
    _m.conversation_id == bindparam("conversation_id"),
    _m.ticket_id.is_not(None),
    _m.id != bindparam("message_id"),
)
# Replies that are not activity are rare; past this many in a row, the customer's message
# is treated as having no neighbour on that side (a new ticket rather than a wrong one).
NEIGHBOURS_LOOKED_AT = 50
_BEFORE = (_PLACED_NEIGHBOURS.where(_m.sent_at <= bindparam("sent_at"))
           .order_by(_m.sent_at.desc(), _m.id.desc()).limit(NEIGHBOURS_LOOKED_AT).subquery())
_AFTER = (_PLACED_NEIGHBOURS.where(_m.sent_at > bindparam("sent_at"))
          .order_by(_m.sent_at, _m.id).limit(NEIGHBOURS_LOOKED_AT).subquery())


def _side(neighbours: Any, after: bool) -> Select[Any]:
    """One side's neighbours, each with its ticket's thread ids (the ticket joined needs
    them: no read of the ticket afterwards)."""
    return (select(*neighbours.c, literal(after).label("after"),
                   TICKETS.c.integration_thread_id, TICKETS.c.hubspot_thread_id)
            .select_from(neighbours.join(TICKETS, TICKETS.c.id == neighbours.c.ticket_id)))


# Both sides in one statement (a statement's round trip and SQLAlchemy's per-statement work
# cost more CPU than the rows, issue 17 item 3); each side ordered again in Python, nearest
# first, as a UNION does not keep its parts' order.
_NEIGHBOURS = union_all(_side(_BEFORE, False), _side(_AFTER, True))
_LOAD = (
    select(_m.id, _m.status, _m.installation_id, _m.conversation_id, _m.ticket_id, _m.text,
           _m.sender_name, _m.sent_at, _m.provider_message_id, _m.media_file_id,
           _m.media_usage_type, _m.media_file_name, CONVERSATIONS.c.customer_e164,
           CONVERSATIONS.c.customer_name, NUMBERS.c.e164.label("number_e164"),
           ACCOUNTS.c.hubspot_channel_account_id,
           # What used to be four more reads in the same transaction: the channel id, the
           # installation's tokens and the thread ids of the ticket already chosen.
           select(ServiceState.value).where(ServiceState.key == CHANNEL_ID_KEY)
           .scalar_subquery().label("channel_id"),
           INSTALLATIONS.c.hubspot_access_token_enc, INSTALLATIONS.c.hubspot_token_expires_at,
           INSTALLATIONS.c.hubspot_refresh_token_enc,
           TICKETS.c.integration_thread_id, TICKETS.c.hubspot_thread_id)
    .select_from(
        MESSAGES.join(CONVERSATIONS, CONVERSATIONS.c.id == _m.conversation_id)
        .join(NUMBERS, NUMBERS.c.id == CONVERSATIONS.c.number_id)
        .join(INSTALLATIONS, INSTALLATIONS.c.id == _m.installation_id)
        .outerjoin(ACCOUNTS, and_(ACCOUNTS.c.number_id == NUMBERS.c.id,
                                  ACCOUNTS.c.disconnected_at.is_(None)))
        .outerjoin(TICKETS, TICKETS.c.id == _m.ticket_id))
    .where(_m.id == bindparam("message_id"))
    .limit(1)
)
_SKIP = (update(MESSAGES).where(_m.id == bindparam("message_id"))
         .values(status="skipped", failure_reason=bindparam("reason")))
_SET_TICKET = (update(MESSAGES).where(_m.id == bindparam("message_id"))
               .values(ticket_id=bindparam("ticket_id")))
_NEW_TICKET = insert(TICKETS).returning(TICKETS.c.id)
_CHANNEL_ID = select(ServiceState.value).where(ServiceState.key == CHANNEL_ID_KEY)


@dataclass(frozen=True)
class _TicketPlaced:
    id: int
    integration_thread_id: str
    hubspot_thread_id: str | None  # None or "" until HubSpot named the thread


def _nearest_activity(rows: list[Row[Any]], *, after: bool) -> Activity | None:
    """The first neighbour on one side (nearest first) that counts as activity
    (domain/tickets.py)."""
    side = sorted((row for row in rows if bool(row.after) == after),
                  key=lambda row: (row.sent_at, row.id), reverse=not after)
    return nearest_activity(
        PlacedMessage(
            ticket_id=row.ticket_id, inbound=row.direction == "inbound",
            failed=row.status == "failed", sent_at=row.sent_at,
            last_customer_message_at=row.last_customer_message_at,
        )
        for row in side
    )


def _ticket_of(connection: Connection, *, message_id: int, conversation_id: int,
               sent_at: datetime, inactivity: timedelta) -> _TicketPlaced:
    """The ticket of a message not placed yet, by the inactivity rule (R12, R20), set on the
    message; a new ticket when the rule says so."""
    rows = list(connection.execute(_NEIGHBOURS, {
        "conversation_id": conversation_id, "message_id": message_id, "sent_at": sent_at}))
    decision = choose_ticket(
        sent_at, before=_nearest_activity(rows, after=False),
        after=_nearest_activity(rows, after=True), inactivity=inactivity,
    )
    if isinstance(decision, JoinTicket):
        row = next(r for r in rows if r.ticket_id == decision.ticket_id)
        ticket = _TicketPlaced(row.ticket_id, row.integration_thread_id, row.hubspot_thread_id)
    else:
        thread_id = f"wa-{conversation_id}-{uuid.uuid4().hex[:12]}"
        ticket = _TicketPlaced(connection.execute(_NEW_TICKET, {
            "conversation_id": conversation_id, "integration_thread_id": thread_id,
            "started_at": sent_at,
        }).scalar_one(), thread_id, None)
    connection.execute(_SET_TICKET, {"message_id": message_id, "ticket_id": ticket.id})
    return ticket


def assign_ticket(session: Session, message: Message, *, inactivity: timedelta) -> Ticket:
    """Place the message in a ticket by the inactivity rule (R12, R20)."""
    session.flush()  # the ORM's pending changes, seen by the statements below
    if message.ticket_id is None:
        ticket_id = _ticket_of(session.connection(), message_id=message.id,
                               conversation_id=message.conversation_id,
                               sent_at=message.sent_at, inactivity=inactivity).id
        # Set through Core above: the ORM object is told without writing it again.
        set_committed_value(message, "ticket_id", ticket_id)
    ticket = session.get(Ticket, message.ticket_id)
    assert ticket is not None
    return ticket


@dataclass(frozen=True)
class _Placed:
    """A message placed in its ticket, with what HubSpot must be told."""

    request: dict[str, Any]
    installation_id: int
    ticket_id: int
    # False when the ticket already has HubSpot's thread id: nothing to record of it.
    first_publication_in_thread: bool
    tokens: StoredHubSpotTokens  # read in the same statement: no read of their own
    channel_id: str


def _place(services: InboundDeps, message_id: int) -> _Placed | str | None:
    """The database half before HubSpot: the ticket chosen and committed (so a retry reuses
    it), or a word saying why there is nothing to publish, or None when the custom channel
    is not registered yet. One transaction: one read of the message with everything the
    publication needs, the neighbours' read, and the ticket's writes when it is new to it."""
    with services.engine.begin() as connection:
        row = connection.execute(_LOAD, {"message_id": message_id}).first()
        # As Services.channel_id() reads it.
        channel_id = services.settings.hubspot_channel_id or (
            row.channel_id if row is not None else connection.execute(_CHANNEL_ID).scalar())
        if not channel_id:
            return None
        if row is None:
            return "message gone"
        if row.status == "published":
            return "already published"
        if not row.hubspot_channel_account_id:
            connection.execute(_SKIP, {
                "message_id": message_id,
                "reason": "The number was disconnected from the help desk."})
            return "skipped: number disconnected"
        tokens = hubspot_tokens_of(services, row.hubspot_access_token_enc,
                                   row.hubspot_token_expires_at, row.hubspot_refresh_token_enc)
        if row.ticket_id is not None:  # placed by an earlier try
            ticket = _TicketPlaced(row.ticket_id, row.integration_thread_id,
                                   row.hubspot_thread_id)
        else:
            ticket = _ticket_of(
                connection, message_id=row.id, conversation_id=row.conversation_id,
                sent_at=row.sent_at,
                inactivity=timedelta(seconds=services.settings.ticket_inactivity_seconds),
            )
        return _Placed(
            request=dict(
                channel_account_id=row.hubspot_channel_account_id,
                text=row.text,
                sender_e164=row.customer_e164,
                sender_name=row.sender_name or row.customer_name,
                recipient_e164=row.number_e164,
                timestamp=row.sent_at,
                idempotency_id=row.provider_message_id,
                integration_thread_id=ticket.integration_thread_id,
                attachments=_attachments(row),
            ),
            installation_id=row.installation_id,
            ticket_id=ticket.id,
            first_publication_in_thread=not ticket.hubspot_thread_id,
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


def _record_published(message_id: int, placed: _Placed, published: PublishedMessage,
                      connection: Connection) -> None:
    connection.execute(_MARK_PUBLISHED, {"message_id": message_id,
                                         "hubspot_message_id": published.message_id})
    # The thread's id is kept from its first publication on: later ones have nothing to
    # write (a statement fewer per publication).
    if published.conversations_thread_id and placed.first_publication_in_thread:
        connection.execute(_FIRST_THREAD_ID, {
            "ticket_id": placed.ticket_id, "thread_id": published.conversations_thread_id})


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
    record = functools.partial(_record_published, message_id, placed, published)
    # In the worker, recorded in the transaction that marks the entry done (a retry after a
    # crash in between publishes again with the same idempotency id: HubSpot keeps one).
    if not outbox.with_completion(record):
        await asyncio.to_thread(_in_own_transaction, services, record)
    return "published"
