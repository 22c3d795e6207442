"""What the worker does with each outbox job kind: one entry per kind (issue 13 item 2).

An entry names the kind's payload (jobs/payloads.py), its handler, its retry policy and its
give-up action, so the worker (worker/runner.py) holds no per-kind branch. Adding a kind:
a payload model in jobs/payloads.py (what the use case queues) and one `JobKind` in `REGISTRY`
below; tests/jobs fails while either is missing.

The retry policy follows R44 (domain/retry_budget.py): temporary errors are retried for a time
budget from the first of them, with exponential backoff; a rate-limit answer (429) is waited
out as asked and, unless the policy says otherwise, never spends the budget.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.numbers_refresh import refresh_numbers_job, sync_number_job
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Conversation, Message
from whatsapp_helpdesk.errors import Permanent
from whatsapp_helpdesk.inbound.media import fetch_media
from whatsapp_helpdesk.inbound.publish import publish_inbound
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.native_tickets.contact_company import set_contact_company
from whatsapp_helpdesk.native_tickets.tickets import create_native_ticket
from whatsapp_helpdesk.replies.reengagement import publish_note, template_may_follow
from whatsapp_helpdesk.replies.reply import give_up as give_up_reply
from whatsapp_helpdesk.replies.reply import send_reply
from whatsapp_helpdesk.replies.statuses import report_status
from whatsapp_helpdesk.settings import Settings

P = TypeVar("P", bound=payloads.JobPayload)
# A handler does one outbox entry's work, given the entry and its payload already validated
# (`JobKind.read`): it never reads `entry.payload`. It returns a word for the delivery log.
Handler = Callable[[Services, outbox.Claimed, P], Awaitable[str]]
# What a job that failed for good means beyond its own FAILED row (which the dashboard lists
# with its reason, R9): called in the transaction that fails the entry.
GiveUpAction = Callable[[Session, outbox.Claimed, str, datetime], None]
# When a job must stop retrying whatever its budget says (None: only the budget counts).
Deadline = Callable[[Session, outbox.Claimed], datetime | None]


# --- Give-up actions --------------------------------------------------------------------------


def mark_message_failed(
    session: Session, entry: outbox.Claimed, reason: str, now: datetime
) -> None:
    """The message the job was for is FAILED with the reason, shown on the dashboard (R9)."""
    message = session.get(Message, entry.message_id) if entry.message_id is not None else None
    if message is not None:
        message.status = "failed"
        message.failure_reason = reason


def fail_reply_in_hubspot(
    session: Session, entry: outbox.Claimed, reason: str, now: datetime
) -> None:
    """A reply that will not be sent is FAILED in HubSpot too, with the reason (R23)."""
    if entry.message_id is not None:
        give_up_reply(session, entry.message_id, reason, now)


def leave_message_as_is(
    session: Session, entry: outbox.Claimed, reason: str, now: datetime
) -> None:
    """Telling HubSpot failed; the message itself is what it is."""


# --- Retry policies ---------------------------------------------------------------------------


def delivery_retry_budget(settings: Settings) -> timedelta:
    return timedelta(hours=settings.delivery_retry_hours)


def reply_window_closes(session: Session, entry: outbox.Claimed) -> datetime | None:
    """For a reply: the customer's last message, which opens WhatsApp's window (R24); a try
    after the window closes could not be sent."""
    message = session.get(Message, entry.message_id) if entry.message_id is not None else None
    if message is None or template_may_follow(session, message):
        return None  # R52: past the window the number's template goes, so keep retrying
    conversation = session.get(Conversation, message.conversation_id)
    return conversation.last_inbound_at if conversation is not None else None


@dataclass(frozen=True)
class RetryPolicy:
    budget: Callable[[Settings], timedelta] = delivery_retry_budget
    # A 429 is the provider asking us to wait: by default its wait spends no budget (R44).
    rate_limits_spend_budget: bool = False
    # The wait after the n-th attempt failed, when the error names none.
    backoff: Callable[[int], timedelta] = outbox.backoff
    # For a reply, the start of WhatsApp's window (R24); None for the other kinds.
    window_opened_at: Deadline | None = None
    # Failed because HubSpot's grant was revoked: queued again, in order, when the admin
    # re-authorises (connect/reauth.py).
    requeue_after_reauth: bool = True


# --- The registry -----------------------------------------------------------------------------


class UnreadableJob(Permanent):
    """A claimed entry the worker cannot run: an unknown kind (a newer version wrote it) or a
    payload that does not validate. Failed at once, with this reason; never retried."""

    def __init__(self, message: str, *, why: str):
        super().__init__(message)
        self.why = why


@dataclass(frozen=True)
class JobKind(Generic[P]):
    name: str  # the `kind` stored in the outbox (never renamed: existing rows carry it)
    payload: type[P]
    handler: Handler[P]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    give_up: GiveUpAction = mark_message_failed
    needs_message: bool = False  # the entry's message_id must be set
    # The provider ("hubspot" or "aircall") the job calls first: the worker books that
    # bucket when it claims the entry (R44), so a full bucket is found before the job
    # starts and another installation's work is claimed instead of sleeping in the slot.
    # None: the job books as it calls.
    paced_by: str | None = None

    def read(self, entry: outbox.Claimed) -> P:
        """The entry's payload, validated; UnreadableJob when it cannot be run (a missing
        or malformed field is named in the reason)."""
        if self.needs_message and entry.message_id is None:
            raise UnreadableJob(f"The {self.name} job names no message.", why="bad_payload")
        try:
            return self.payload.model_validate(entry.payload)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'payload'}: {error['msg']}"
                for error in exc.errors()
            )
            raise UnreadableJob(
                f"The {self.name} job's data could not be read ({problems})."[:500],
                why="bad_payload",
            ) from exc


def unknown_kind(kind: str) -> UnreadableJob:
    return UnreadableJob(
        f"Unknown job kind {kind!r}: this version cannot run it (written by a newer one?).",
        why="unknown_kind",
    )


async def _publish(
    services: Services, entry: outbox.Claimed, job: payloads.PublishInbound
) -> str:
    assert entry.message_id is not None  # JobKind.read checked it
    return await publish_inbound(services, entry.message_id)


def _registry(*kinds: JobKind[Any]) -> dict[str, JobKind[Any]]:
    table: dict[str, JobKind[Any]] = {}
    for kind in kinds:
        if kind.name in table:
            raise ValueError(f"job kind {kind.name!r} registered twice")
        table[kind.name] = kind
    return table


REGISTRY: dict[str, JobKind[Any]] = _registry(
    JobKind(payloads.PublishInbound.KIND, payloads.PublishInbound, _publish, needs_message=True,
            paced_by="hubspot"),
    JobKind(payloads.FetchMedia.KIND, payloads.FetchMedia, fetch_media, needs_message=True),
    JobKind(
        payloads.SendReply.KIND,
        payloads.SendReply,
        send_reply,
        needs_message=True,
        # A reply's failure is already FAILED in HubSpot: the agent decides, not a re-queue.
        retry=RetryPolicy(window_opened_at=reply_window_closes, requeue_after_reauth=False),
        give_up=fail_reply_in_hubspot,
        paced_by="aircall",
    ),
    JobKind(
        payloads.ReportStatus.KIND,
        payloads.ReportStatus,
        report_status,
        give_up=leave_message_as_is,
        paced_by="hubspot",
    ),
    JobKind(payloads.NativeTicket.KIND, payloads.NativeTicket, create_native_ticket),
    JobKind(payloads.SetContactCompany.KIND, payloads.SetContactCompany, set_contact_company),
    # No message_id: a note that finally fails must not mark its reply failed.
    JobKind(payloads.ReengagementNote.KIND, payloads.ReengagementNote, publish_note),
    JobKind(payloads.RefreshNumbers.KIND, payloads.RefreshNumbers, refresh_numbers_job),
    JobKind(payloads.SyncNumber.KIND, payloads.SyncNumber, sync_number_job),
)
