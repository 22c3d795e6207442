"""Agent replies: HubSpot's OUTGOING_CHANNEL_MESSAGE_CREATED → WhatsApp through Aircall
(R21–R25, R27).

1. `store_outgoing_reply` (inside the webhook's transaction): the reply becomes an outbound
   Message joined to its conversation and ticket, with a `send_reply` outbox entry. The
   unique HubSpot message id makes a second delivery of the same event a no-op (R27).
2. `send_reply` (worker): the pure checks of `domain/reply_checks.py` (R6, R8, R24, R25);
   a refusal is FAILED in HubSpot with its reason and never reaches Aircall. A reply that
   passes is marked `sending` in its own committed transaction, sent, and its Aircall id
   recorded; SENT is reported by a separate `report_status` job, so a HubSpot hiccup after
   a good send retries the report, never the send.
3. A reply found `sending` was interrupted between the send and the record: it is never
   sent blindly again, but reconciled with Aircall's echo (decision 0002).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.credentials import aircall_access_token
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.lookups import channel_account_by_hubspot_id
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Installation,
    Message,
    Number,
    OutboxEntry,
    Ticket,
)
from whatsapp_helpdesk.db.session import rows_changed
from whatsapp_helpdesk.domain import statuses
from whatsapp_helpdesk.domain.content import PlainText, Refused
from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, to_e164
from whatsapp_helpdesk.domain.reply_checks import ChannelFacts, ReplyFacts, check_outbound_reply
from whatsapp_helpdesk.domain.window import WINDOW_CLOSED_MESSAGE
from whatsapp_helpdesk.errors import DeliveryError, Retryable, WindowClosed
from whatsapp_helpdesk.hubspot import OutgoingChannelMessageCreated
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.pacing import Paced
from whatsapp_helpdesk.replies.ports import RepliesDeps
from whatsapp_helpdesk.replies.reengagement import (
    TemplateSend,
    ensure_note,
    plan_template,
    send_template,
)
from whatsapp_helpdesk.replies.statuses import advance_outbound, enqueue_report, find_stored_echo

log = structlog.get_logger(__name__)


# How long an interrupted send waits for Aircall's echo before it is declared uncertain
# (decision 0002). Aircall fires `message.sent` within seconds of accepting a message and
# retries its webhooks for hours; two minutes covers a slow delivery without leaving the
# agent in doubt for long.
RECONCILE_WINDOW = timedelta(minutes=2)

DELIVERY_UNCERTAIN_MESSAGE = (
    "Delivery uncertain — check the customer's phone before resending. The send to WhatsApp "
    "was interrupted and Aircall never confirmed it, so it was not retried (to avoid sending "
    "it twice)."
)
UNKNOWN_CHANNEL_ACCOUNT_MESSAGE = (
    "This reply was sent on a WhatsApp channel account the integration does not know, so it "
    "was not sent. Reconnect the number from HubSpot's channel settings."
)
NO_CONVERSATION_MESSAGE = (
    "This reply could not be matched to a WhatsApp customer of this number, so it was not "
    "sent. Reply from the ticket of a conversation the customer started on WhatsApp."
)

# Aircall answered and said "not now" (503 = not processed): the send certainly did not
# happen, so trying again cannot duplicate it. Any other 5xx may come after the message
# went out (a gateway timing out on a slow Aircall), so it is treated as uncertain.
_NOT_PROCESSED_5XX = frozenset({503})
# Failures that prove the request never left this machine.
_NEVER_SENT_CAUSES = (
    httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol, httpx.LocalProtocolError,
)


# --- 1. Storing the reply (webhook transaction) ------------------------------------------------


def store_outgoing_reply(
    services: RepliesDeps,
    session: Session,
    installation_id: int,
    event: OutgoingChannelMessageCreated,
    now: datetime,
) -> tuple[str, str | None]:
    """Keep the reply and its `send_reply` work; raises IntegrityError on a second copy."""
    message = event.message
    account = channel_account_by_hubspot_id(session, installation_id, message.channel_account_id)
    conversation, ticket = (
        _conversation_and_ticket(session, account, event) if account else (None, None)
    )
    if account is None or conversation is None:
        # Nothing to send it to; the agent must not be left with a reply stuck in
        # "sending" (R23): FAILED, with what to do.
        reason = NO_CONVERSATION_MESSAGE if account else UNKNOWN_CHANNEL_ACCOUNT_MESSAGE
        enqueue_report(session, installation_id=installation_id, hubspot_message_id=message.id,
                       status="FAILED", error=reason,
                       channel_id=event.channel_id or message.channel_id, now=now)
        if account is None:
            return ("unknown_channel_account",
                    f"channel account {message.channel_account_id} is not one of ours")
        return ("unknown_conversation", "no conversation for this recipient on this number")
    sent_at = message.created_at or event.event_timestamp or now
    reply = Message(
        installation_id=installation_id,
        conversation_id=conversation.id,
        # The reply is activity of its ticket (R20) once it can go out: it keeps the
        # ticket open 24 h more (inbound/publish.py says when it does not count).
        ticket_id=ticket.id if ticket else None,
        direction="outbound",
        hubspot_message_id=message.id,
        kind="text",
        text=(message.text or "").strip(),
        sent_at=sent_at,
        stored_at=now,
        status=statuses.PENDING,
        sender_name=message.senders[0].name if message.senders else None,
    )
    session.add(reply)
    session.flush()  # unique (installation, hubspot_message_id): a second copy stops here (R27)
    if ticket is not None and not ticket.hubspot_thread_id and message.conversations_thread_id:
        ticket.hubspot_thread_id = message.conversations_thread_id
    jobs.enqueue(
        session,
        payloads.SendReply(
            channel_account_id=message.channel_account_id,
            channel_id=event.channel_id or message.channel_id,
            rich_text=message.rich_text,
            attachment_count=len(message.attachments),
        ),
        installation_id=installation_id,
        now=now,
        message_id=reply.id,
        # Replies of one conversation go out one at a time, in the agents' order.
        ordering_key=f"replies:{conversation.id}",
        ordering_at=sent_at,
    )
    return ("stored", None)


def _conversation_and_ticket(
    session: Session, account: ChannelAccount, event: OutgoingChannelMessageCreated
) -> tuple[Conversation | None, Ticket | None]:
    """The conversation the agent answered in: by our own thread id (R20), else HubSpot's
    thread id, else the recipient's number on the account's number."""
    candidates = [
        session.scalar(select(Ticket).where(Ticket.integration_thread_id == thread_id))
        for thread_id in event.integration_thread_ids
    ]
    if event.message.conversations_thread_id:
        candidates.append(session.scalars(
            select(Ticket).where(Ticket.hubspot_thread_id == event.message.conversations_thread_id)
            .order_by(Ticket.id.desc())
        ).first())
    for ticket in candidates:
        if ticket is None:
            continue
        conversation = session.get(Conversation, ticket.conversation_id)
        if conversation is not None and conversation.number_id == account.number_id:
            return conversation, ticket
    try:
        customer = to_e164(event.customer_e164 or "")
    except InvalidPhoneNumber:
        return None, None
    conversation = session.scalar(
        select(Conversation).where(
            Conversation.number_id == account.number_id, Conversation.customer_e164 == customer
        )
    )
    if conversation is None:
        return None, None
    latest = session.scalars(
        select(Ticket).where(Ticket.conversation_id == conversation.id)
        .order_by(Ticket.started_at.desc(), Ticket.id.desc())
    ).first()
    return conversation, latest


# --- 2. Sending (worker job) -------------------------------------------------------------------


@dataclass(frozen=True)
class _Send:
    message_id: int
    installation_id: int
    line_id: int
    customer_e164: str
    text: str


async def send_reply(
    services: RepliesDeps, entry: outbox.Claimed, job: payloads.SendReply
) -> str:
    """Check, then send once; returns a short word for the delivery log.

    The database work runs in threads (the worker's slots share its event loop): the checks
    read in one, the `sending` mark commits in another before Aircall is called on the loop,
    and the outcome is written in a third; no transaction is open across the send."""
    assert entry.message_id is not None
    now = services.clock.now()
    prepared = await asyncio.to_thread(_prepare, services, entry.message_id, job, now)
    if isinstance(prepared, str):
        return prepared
    if isinstance(prepared, TemplateSend):
        # R52: the window is closed; the number's template goes instead, never free text.
        return await send_template(services, prepared, job,
                                   may_have_sent=aircall_may_have_sent)
    plan = prepared
    token = await asyncio.to_thread(aircall_access_token, services, plan.installation_id)
    if not await asyncio.to_thread(_mark_sending, services, plan, entry, job, now):
        return "no longer pending"
    try:
        aircall = services.aircall(token, installation_id=plan.installation_id)
        aircall_id = await aircall.send_whatsapp_text(
            plan.line_id, plan.customer_e164, plan.text
        )
    except DeliveryError as exc:
        if not aircall_may_have_sent(exc):
            await asyncio.to_thread(_release, services, plan.message_id)
        if isinstance(exc, WindowClosed):
            # Aircall saw the window closed where our clock did not: the agent gets the
            # same words as for our own check (R24).
            raise WindowClosed(WINDOW_CLOSED_MESSAGE, status_code=exc.status_code,
                               detail=exc.detail) from exc
        raise  # the worker retries, or gives up through `give_up`
    await asyncio.to_thread(_record_sent, services, plan.message_id, aircall_id, job)
    return f"sent ({aircall_id})"


def _prepare(services: RepliesDeps, message_id: int, job: payloads.SendReply,
             now: datetime) -> str | TemplateSend | _Send:
    """The reply's checks, in one transaction: the delivery log's word when it goes no
    further (gone, reconciled, refused), else the template or the text to send."""
    with services.sessions.begin() as session:
        message = session.get(Message, message_id)
        if message is None:
            return "reply gone"
        if message.status == statuses.SENDING:
            return _reconcile(session, message, job, now)
        if message.status != statuses.PENDING:
            return f"already {message.status}"
        facts = _facts(session, message, job)
        verdict = check_outbound_reply(facts, now)
        instead = _template_instead(session, message, facts, verdict, now)
        if isinstance(instead, TemplateSend):
            return instead
        if isinstance(instead, Refused):
            verdict = instead
        if isinstance(verdict, Refused):
            advance_outbound(session, message, statuses.FAILED, now=now, reason=verdict.reason,
                             channel_id=job.channel_id)
            return f"refused: {verdict.reason}"
        return _plan(session, message, verdict.text)


def _template_instead(
    session: Session, message: Message, facts: ReplyFacts,
    verdict: PlainText | Refused, now: datetime,
) -> TemplateSend | Refused | None:
    """R52: a reply refused only because the window closed goes as the number's
    re-engagement template, when it has one; the other checks (channel, scopes, content)
    still apply. None: R24 stands as it was."""
    if not (isinstance(verdict, Refused) and verdict.reason == WINDOW_CLOSED_MESSAGE):
        return None
    other = check_outbound_reply(replace(facts, last_customer_message_at=now), now)
    if isinstance(other, Refused):
        return other  # the reply could not go even inside the window: that reason first
    return plan_template(session, message, other.text)


def _facts(session: Session, message: Message, job: payloads.SendReply) -> ReplyFacts:
    conversation = session.get(Conversation, message.conversation_id)
    installation = session.get(Installation, message.installation_id)
    assert conversation is not None and installation is not None
    account = channel_account_by_hubspot_id(
        session, message.installation_id, job.channel_account_id or ""
    )
    ours = account is not None and account.number_id == conversation.number_id
    return ReplyFacts(
        channel=ChannelFacts(
            connected=ours and account is not None and account.disconnected_at is None,
            authorized=ours and account is not None and account.authorized,
        ),
        granted_scopes=frozenset((installation.hubspot_scopes or "").split()),
        last_customer_message_at=conversation.last_inbound_at,
        text=message.text,
        rich_text=job.rich_text,
        attachment_count=job.attachment_count,
    )


def _plan(session: Session, message: Message, text: str) -> _Send:
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    number = session.get(Number, conversation.number_id)
    assert number is not None
    return _Send(
        message_id=message.id,
        installation_id=message.installation_id,
        line_id=int(number.aircall_number_id),
        customer_e164=conversation.customer_e164,
        text=text,
    )


def _mark_sending(services: RepliesDeps, plan: _Send, entry: outbox.Claimed,
                  job: payloads.SendReply, now: datetime) -> bool:
    """Committed before Aircall is called: from here on a crash leaves a trace (0002)."""
    with services.sessions.begin() as session:
        claimed = rows_changed(session.execute(
            update(Message)
            .where(Message.id == plan.message_id, Message.status == statuses.PENDING)
            # The text Aircall gets is what its echo will carry: keep exactly that.
            .values(status=statuses.SENDING, text=plan.text)
        ))
        row = session.get(OutboxEntry, entry.id)
        if claimed and row is not None:
            # The row as stored plus one key (not the parsed job: keys a newer version
            # wrote, which this one ignores, are kept).
            row.payload = json.dumps({**entry.payload, "sending_since": now.isoformat()})
        return bool(claimed)


def aircall_may_have_sent(exc: DeliveryError) -> bool:
    """Whether a failed send call may still have put the message on the customer's phone.

    Only a refusal Aircall answered (4xx, 429, 503) or a request that never left proves it
    did not; a timeout, a cut connection, another 5xx or a 2xx we could not read do not.
    """
    if isinstance(exc, Paced):
        return False  # our own pacing said "later": nothing was sent
    status = exc.status_code
    if status is None:
        return not isinstance(exc.__cause__, _NEVER_SENT_CAUSES)
    return not (400 <= status < 500 or status in _NOT_PROCESSED_5XX)


def _release(services: RepliesDeps, message_id: int) -> None:
    """The send certainly did not happen: the reply may be sent again. (`sending` is our
    own bookkeeping, never reported, so going back to `pending` is not a status regress.)"""
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == statuses.SENDING,
                   Message.provider_message_id.is_(None))
            .values(status=statuses.PENDING)
        )


def _record_sent(services: RepliesDeps, message_id: int, aircall_id: str,
                 job: payloads.SendReply) -> None:
    with services.sessions.begin() as session:
        # Locked: the echo may be adopting this very row in a webhook right now.
        message = session.get(Message, message_id, with_for_update=True)
        assert message is not None
        message.provider_message_id = aircall_id  # the echo is now recognised (R15)
        advance_outbound(session, message, statuses.SENT, now=services.clock.now(),
                         channel_id=job.channel_id)


# --- 3. An interrupted send ---------------------------------------------------------------------


def _reconcile(session: Session, message: Message, job: payloads.SendReply,
               now: datetime) -> str:
    """A previous attempt marked the reply `sending` and never recorded the outcome."""
    if message.provider_message_id is None:
        find_stored_echo(session, message)
    if message.provider_message_id is not None:
        advance_outbound(session, message, statuses.SENT, now=now, channel_id=job.channel_id)
        ensure_note(session, message, job.channel_id, now)
        return "sent (confirmed by Aircall's echo after an interrupted attempt)"
    if now - _sending_since(job, message) < RECONCILE_WINDOW:
        raise Retryable(
            "An earlier attempt was interrupted while sending; waiting for Aircall to confirm "
            "it rather than risk sending the reply twice."
        )
    advance_outbound(session, message, statuses.FAILED, now=now,
                     reason=DELIVERY_UNCERTAIN_MESSAGE, channel_id=job.channel_id)
    return "failed: delivery uncertain"


def _sending_since(job: payloads.SendReply, message: Message) -> datetime:
    raw = job.sending_since
    if isinstance(raw, str):
        try:
            return datetime.fromisoformat(raw)
        except ValueError:
            pass
    return message.stored_at


def give_up(session: Session, message_id: int, reason: str, now: datetime) -> None:
    """The worker stopped trying to send a reply (a permanent error, or retries spent):
    FAILED here and in HubSpot, with the reason (R23, R44)."""
    message = session.get(Message, message_id)
    if message is None or message.direction != "outbound":
        return
    if message.status == statuses.SENDING and message.provider_message_id is None:
        reason = DELIVERY_UNCERTAIN_MESSAGE
    advance_outbound(session, message, statuses.FAILED, now=now, reason=reason)
