"""The number's re-engagement template (R52): the admin's choice on the dashboard, and the
send that replaces R24's FAILED when an agent answers after WhatsApp's window closed.

Choosing: the number's templates are listed from Aircall (cursor-paginated, §A6) and kept
in `reengagement_templates.listing`, so the dashboard does not call Aircall on every view;
"Refresh templates" lists them again. Only an APPROVED template of the cached listing can be
chosen; a chosen one that a later listing shows in another state is flagged (`problem`).

Sending (worker, from replies/reply.py): a reply the window refuses is looked at here. With a
usable template and no template already waiting for the customer's answer, the template
goes instead (the agent's text as {{1}} when the admin said so), the reply is SENT, and a
`reengagement_note` job adds the visible line to the ticket. Free text never goes outside
the window: this module only ever sends `templateParams`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.credentials import aircall_access_token, hubspot_access_token
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import REENGAGEMENT_NOTE
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Message,
    Number,
    OutboxEntry,
    ReengagementTemplate,
    Ticket,
)
from whatsapp_helpdesk.db.session import rows_changed
from whatsapp_helpdesk.domain import reengagement, statuses
from whatsapp_helpdesk.domain.content import Refused
from whatsapp_helpdesk.errors import DeliveryError, Permanent, TemplateRefused
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.replies.ports import RepliesDeps
from whatsapp_helpdesk.replies.statuses import advance_outbound, went_as_template

log = structlog.get_logger(__name__)


APPROVED = "APPROVED"


class ChoiceRefused(ValueError):
    """The admin's choice cannot be saved; the message says why."""


# --- Choosing (dashboard) ---------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateOption:
    id: str
    name: str
    language: str
    category: str
    body: str | None


@dataclass(frozen=True)
class TemplateChoice:
    """What the dashboard shows of a number's re-engagement template."""

    options: list[TemplateOption]  # the APPROVED templates of the last listing
    listed_at: datetime | None
    chosen_id: str | None
    chosen_name: str | None
    chosen_language: str | None
    fills_text: bool
    problem: str | None  # set: the chosen template is flagged unusable

    @property
    def usable(self) -> bool:
        return self.chosen_id is not None and self.problem is None


def _row(session: Session, number_id: int, now: datetime) -> ReengagementTemplate:
    row = session.scalar(
        select(ReengagementTemplate).where(ReengagementTemplate.number_id == number_id)
    )
    if row is None:
        row = ReengagementTemplate(number_id=number_id, fills_text=False, updated_at=now)
        session.add(row)
        session.flush()
    return row


def _options(row: ReengagementTemplate | None) -> list[TemplateOption]:
    if row is None or not row.listing:
        return []
    try:
        items = json.loads(row.listing)
    except ValueError:
        return []
    return [TemplateOption(**item) for item in items if isinstance(item, dict)]


def choices_by_number(session: Session, number_ids: list[int]) -> dict[int, TemplateChoice]:
    rows: list[ReengagementTemplate] = list(session.scalars(
        select(ReengagementTemplate).where(ReengagementTemplate.number_id.in_(number_ids))
    )) if number_ids else []
    found = {row.number_id: row for row in rows}
    return {number_id: _choice(found.get(number_id)) for number_id in number_ids}


def _choice(row: ReengagementTemplate | None) -> TemplateChoice:
    return TemplateChoice(
        options=_options(row),
        listed_at=row.listed_at if row else None,
        chosen_id=row.template_id if row else None,
        chosen_name=row.template_name if row else None,
        chosen_language=row.template_language if row else None,
        fills_text=bool(row and row.fills_text),
        problem=row.problem if row else None,
    )


async def refresh_templates(services: RepliesDeps, installation_id: int, number_id: int) -> int:
    """List the number's templates from Aircall again; returns how many are APPROVED.

    All states are listed (not only `status=APPROVED`) so that a chosen template that left
    APPROVED is seen with its new state, and flagged."""
    # The database work runs in threads (the dashboard awaits this on the web app's event
    # loop); Aircall is asked between them, with no transaction open.
    def number_and_token() -> tuple[int, str]:
        with services.sessions() as session:
            number = session.get(Number, number_id)
            if number is None or number.installation_id != installation_id:
                raise LookupError("number")
            aircall_number_id = int(number.aircall_number_id)
        return aircall_number_id, aircall_access_token(services, installation_id)

    aircall_number_id, token = await asyncio.to_thread(number_and_token)
    templates = await services.aircall(token).list_whatsapp_templates(
        aircall_number_id, status=None
    )
    approved = [t for t in templates if t.status == APPROVED]

    def store_listing() -> None:
        now = services.clock.now()
        with services.sessions.begin() as session:
            row = _row(session, number_id, now)
            row.listing = json.dumps([
                {"id": t.id, "name": t.name, "language": t.language, "category": t.category,
                 "body": t.body}
                for t in approved
            ])
            row.listed_at = now
            row.updated_at = now
            if row.template_id is not None:
                current = next((t for t in templates if t.id == row.template_id), None)
                if current is None or current.status != APPROVED:
                    _flag(row, reengagement.left_approved_problem(
                        current.status if current else None), now)
                elif reengagement.is_left_approved(row.problem):
                    row.problem = None  # approved again: the flag this module set is lifted
                    row.problem_at = None

    await asyncio.to_thread(store_listing)
    return len(approved)


def choose_template(
    services: RepliesDeps, installation_id: int, number_id: int,
    template_id: str | None, fills_text: bool,
) -> str:
    """Save the admin's choice: an APPROVED template of the cached listing, or none."""
    now = services.clock.now()
    with services.sessions.begin() as session:
        number = session.get(Number, number_id)
        if number is None or number.installation_id != installation_id:
            raise LookupError("number")
        row = _row(session, number_id, now)
        row.updated_at = now
        if not template_id:
            row.template_id = row.template_name = row.template_language = None
            row.fills_text = False
            row.problem = row.problem_at = None
            return (f"{number.name or number.e164}: no re-engagement template; replies after "
                    "the 24-hour window fail as before.")
        option = next((o for o in _options(row) if o.id == template_id), None)
        if option is None:
            raise ChoiceRefused(
                "Only an approved template of this number can be chosen. Refresh the "
                "templates, then choose again."
            )
        row.template_id, row.template_name = option.id, option.name
        row.template_language = option.language
        row.fills_text = fills_text
        row.problem = row.problem_at = None  # a fresh choice starts usable
        how = "the agent's reply as {{1}}" if fills_text else "no variable"
        return (f"{number.name or number.e164}: replies after the 24-hour window now send "
                f"the template {option.name} ({option.language}), filled with {how}.")


def _flag(row: ReengagementTemplate, problem: str, now: datetime) -> None:
    row.problem = problem
    row.problem_at = now
    row.updated_at = now


# --- Sending (worker) -------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateSend:
    message_id: int
    installation_id: int
    conversation_id: int
    number_id: int  # our row's id: the dashboard files a failed note under it
    line_id: int
    customer_e164: str
    template_id: str
    template_name: str
    fill: reengagement.TemplateFill
    fills_text: bool
    previous_template_sent_at: datetime | None


def plan_template(session: Session, message: Message, agent_text: str | None
                  ) -> TemplateSend | Refused | None:
    """For a reply the closed window refused: the template to send instead, a refusal in
    an agent's words, or None when the number has no template (R24 stands)."""
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    row = session.scalar(
        select(ReengagementTemplate).where(
            ReengagementTemplate.number_id == conversation.number_id
        )
    )
    if row is None or row.template_id is None:
        return None
    if row.problem:
        return Refused(reengagement.TEMPLATE_UNUSABLE_MESSAGE.format(problem=row.problem))
    if reengagement.waiting_for_answer(conversation.template_sent_at,
                                       conversation.last_inbound_at):
        return Refused(reengagement.WAITING_FOR_ANSWER_MESSAGE)
    number = session.get(Number, conversation.number_id)
    assert number is not None
    return TemplateSend(
        message_id=message.id,
        installation_id=message.installation_id,
        conversation_id=conversation.id,
        number_id=number.id,
        line_id=int(number.aircall_number_id),
        customer_e164=conversation.customer_e164,
        template_id=row.template_id,
        template_name=row.template_name or row.template_id,
        fill=reengagement.fill(row.fills_text, agent_text or ""),
        fills_text=row.fills_text,
        previous_template_sent_at=conversation.template_sent_at,
    )


def template_may_follow(session: Session, reply: Message) -> bool:
    """Whether a closed window would not stop this reply: its number has a usable
    re-engagement template, so a retry after the window sends that (R44 with R52)."""
    conversation = session.get(Conversation, reply.conversation_id)
    if conversation is None:
        return False
    row = session.scalar(
        select(ReengagementTemplate).where(
            ReengagementTemplate.number_id == conversation.number_id
        )
    )
    return row is not None and row.template_id is not None and row.problem is None


def _mark_sending(services: RepliesDeps, plan: TemplateSend, now: datetime) -> bool:
    """Committed before Aircall is called, like a text reply (decision 0002); the
    conversation is marked waiting in the same transaction, so the next reply of the burst
    (the outbox sends a conversation's replies one at a time) sees it."""
    with services.sessions.begin() as session:
        claimed = rows_changed(session.execute(
            update(Message)
            .where(Message.id == plan.message_id, Message.status == statuses.PENDING)
            .values(status=statuses.SENDING)
        ))
        if claimed:
            session.execute(
                update(Conversation).where(Conversation.id == plan.conversation_id)
                .values(template_sent_at=now)
            )
        return bool(claimed)


def _undo_sending(services: RepliesDeps, plan: TemplateSend) -> None:
    """The template certainly did not go: the reply may go again, nobody is waiting."""
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == plan.message_id, Message.status == statuses.SENDING,
                   Message.provider_message_id.is_(None))
            .values(status=statuses.PENDING)
        )
        session.execute(
            update(Conversation).where(Conversation.id == plan.conversation_id)
            .values(template_sent_at=plan.previous_template_sent_at)
        )


def _refused(services: RepliesDeps, plan: TemplateSend, exc: TemplateRefused,
             channel_id: str | None) -> str:
    problem = reengagement.refusal_problem(exc.code)
    now = services.clock.now()
    with services.sessions.begin() as session:
        conversation = session.get(Conversation, plan.conversation_id)
        if conversation is not None:
            conversation.template_sent_at = plan.previous_template_sent_at
        number_id = conversation.number_id if conversation else None
        row = session.scalar(
            select(ReengagementTemplate).where(ReengagementTemplate.number_id == number_id)
        )
        if row is not None and row.template_id == plan.template_id:
            _flag(row, problem, now)  # the dashboard shows the template unusable
        message = session.get(Message, plan.message_id)
        assert message is not None
        message.status = statuses.PENDING  # `sending` is our bookkeeping only (0002)
        advance_outbound(session, message, statuses.FAILED, now=now,
                         reason=reengagement.refused_reply_message(problem),
                         channel_id=channel_id)
    log.warning("reengagement.refused", message_id=plan.message_id, code=exc.code,
                detail=exc.detail)
    return f"template refused: {problem}"


async def send_template(services: RepliesDeps, plan: TemplateSend, job: payloads.SendReply,
                        *, may_have_sent: Any) -> str:
    """Send the template for the reply; SENT and the ticket's note on success.

    As for a text reply, the database work runs in threads, off the worker's event loop;
    the `sending` mark is committed before Aircall is called (decision 0002)."""
    channel = job.channel_id
    token = await asyncio.to_thread(aircall_access_token, services, plan.installation_id)
    if not await asyncio.to_thread(_mark_sending, services, plan, services.clock.now()):
        return "no longer pending"
    try:
        aircall_id = await services.aircall(token).send_whatsapp_template(
            plan.line_id, plan.customer_e164, plan.template_id, plan.fill.values
        )
    except TemplateRefused as exc:
        return await asyncio.to_thread(_refused, services, plan, exc, channel)
    except DeliveryError as exc:
        if not may_have_sent(exc):
            await asyncio.to_thread(_undo_sending, services, plan)
        raise
    await asyncio.to_thread(_record_template_sent, services, plan, aircall_id, channel)
    return f"template sent ({aircall_id})"


def _record_template_sent(services: RepliesDeps, plan: TemplateSend, aircall_id: str,
                          channel: str | None) -> None:
    with services.sessions.begin() as session:
        # Locked: the echo may be adopting this very row in a webhook right now.
        message = session.get(Message, plan.message_id, with_for_update=True)
        assert message is not None
        message.provider_message_id = aircall_id
        advance_outbound(session, message, statuses.SENT, now=services.clock.now(),
                         channel_id=channel)
        ensure_note(session, message, channel, services.clock.now(),
                    cut=plan.fill.cut, template_name=plan.template_name)


def ensure_note(session: Session, reply: Message, channel: str | None, now: datetime, *,
                cut: bool | None = None, template_name: str | None = None) -> None:
    """Queue the ticket's note for a reply that went as the template, once per reply:
    whichever sees it SENT first (the worker's record, Aircall's echo, the reconciliation
    of an interrupted send, decision 0002) queues it; the others find it queued."""
    if not went_as_template(session, reply):
        return
    already = session.scalar(
        select(OutboxEntry.id).where(
            OutboxEntry.installation_id == reply.installation_id,
            OutboxEntry.kind == REENGAGEMENT_NOTE,
            OutboxEntry.payload.like(f'{{"reply_id": {int(reply.id)},%'),
        ).limit(1)
    )
    if already is not None:
        return
    conversation = session.get(Conversation, reply.conversation_id)
    assert conversation is not None
    row = session.scalar(
        select(ReengagementTemplate).where(
            ReengagementTemplate.number_id == conversation.number_id
        )
    )
    fills_text = bool(row and row.fills_text)
    if cut is None:
        cut = reengagement.fill(fills_text, reply.text or "").cut
    name = template_name or (row.template_name if row else None) or "re-engagement"
    jobs.enqueue(
        session,
        # The reply's id leads the payload (the model's first field): `ensure_note` finds a
        # queued note by it.
        payloads.ReengagementNote(
            reply_id=reply.id, channel_id=channel, number_id=conversation.number_id,
            text=reengagement.ticket_note(name, cut=cut, fills_text=fills_text),
        ),
        # No message_id: a note that finally fails must not mark the reply failed.
        installation_id=reply.installation_id, now=now,
    )


# --- The visible line in the ticket (worker job) ----------------------------------------------


async def publish_note(
    services: RepliesDeps, entry: outbox.Claimed, payload: payloads.ReengagementNote
) -> str:
    """Add the note to the reply's ticket thread.

    HubSpot's custom-channel API has no comment or internal-note call (reference §3, §4;
    the OpenAPI files list only channel, channel-account and message operations). The
    documented way for an integration to put a visible line into a thread is a message with
    `messageDirection: OUTGOING` ("sent by your side outside HubSpot"), published on the
    ticket's `integrationThreadId`: it shows in the thread and is not announced back to the
    integration as an agent reply. Its sender is the business number, as for any OUTGOING
    message."""
    reply_id, text = payload.reply_id, payload.text
    # The database work runs in threads, off the worker's event loop.
    channel_id = payload.channel_id or await asyncio.to_thread(services.channel_id)
    if not channel_id:
        raise Permanent("The HubSpot custom channel is not registered yet.")
    thread = await asyncio.to_thread(_note_thread, services, reply_id)
    if isinstance(thread, str):
        return thread
    token = await hubspot_access_token(services, thread.installation_id)
    await services.hubspot_portal(token).publish_message(
        str(channel_id), direction="OUTGOING", channel_account_id=thread.channel_account_id,
        text=text, sender_e164=thread.sender_e164, sender_name=None,
        recipient_e164=thread.recipient_e164, timestamp=services.clock.now(),
        idempotency_id=f"reengagement-note-{reply_id}",
        integration_thread_id=thread.integration_thread_id,
    )
    return "note added to the ticket"


@dataclass(frozen=True)
class _NoteThread:
    """Where a reply's note goes, as publish_message needs it."""

    installation_id: int
    channel_account_id: str
    sender_e164: str
    recipient_e164: str
    integration_thread_id: str


def _note_thread(services: RepliesDeps, reply_id: int) -> _NoteThread | str:
    """Where the reply's note goes, or the delivery log's word when there is nowhere."""
    with services.sessions() as session:
        message = session.get(Message, reply_id)
        if message is None:
            return "reply gone"
        conversation = session.get(Conversation, message.conversation_id)
        ticket = session.get(Ticket, message.ticket_id) if message.ticket_id else None
        assert conversation is not None
        number = session.get(Number, conversation.number_id)
        account = session.scalar(
            select(ChannelAccount).where(ChannelAccount.number_id == conversation.number_id,
                                         ChannelAccount.disconnected_at.is_(None))
        )
        if ticket is None or number is None or account is None \
                or not account.hubspot_channel_account_id:
            return "no ticket thread to note in"
        return _NoteThread(
            installation_id=message.installation_id,
            channel_account_id=account.hubspot_channel_account_id,
            sender_e164=number.e164, recipient_e164=conversation.customer_e164,
            integration_thread_id=ticket.integration_thread_id,
        )
