"""What each outbox job kind carries: its name, its label and its typed payload.

This half of the registry imports no use case, so the use cases that queue work can import
it (the other half, `jobs/registry.py`, imports their handlers). A payload holds what the job
needs beyond the entry's `message_id` and `installation_id`. It is validated when queued (the
model is built) and again when a worker claims the entry (`read`), so a row written by an
older or a newer version that we cannot read fails visibly instead of crashing the handler.

The `kind` strings are what the database stores: never rename one, existing rows carry it.
Payloads ignore keys they do not know (a newer version may add some) and give every key an
older version may have left out a default.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

# Every declared kind by its stored name: filled as the classes below are defined.
KINDS: dict[str, type[JobPayload]] = {}


class JobPayload(BaseModel):
    """One kind of outbox work: subclass it with its `kind` and `label` (`class
    SendReply(JobPayload, kind="send_reply", label=...)`), and register the kind in
    `jobs/registry.py` (tests/jobs checks that every subclass is registered). The base
    itself, with no field, serves a test's ad-hoc kind."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    KIND: ClassVar[str]  # the `kind` column
    LABEL: ClassVar[str]  # what the dashboard calls it, in the admin's words
    # A failed reply is already FAILED in the ticket, with its reason (R23): the agent sends
    # it again from HubSpot; re-running it from the dashboard would send what HubSpot shows
    # as not sent.
    RETRY_FROM_DASHBOARD: ClassVar[bool] = True

    def __init_subclass__(
        cls, *, kind: str | None = None, label: str = "", retry_from_dashboard: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if kind is None:
            return  # a base of other payloads, not a kind
        if not label:
            raise TypeError(f"job kind {kind!r} has no label")
        cls.KIND, cls.LABEL = kind, label
        cls.RETRY_FROM_DASHBOARD = retry_from_dashboard

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        kind = cls.__dict__.get("KIND")
        if kind is None:
            return  # a base of other payloads, not a kind
        if kind in KINDS and KINDS[kind] is not cls:
            raise TypeError(f"job kind {kind!r} declared twice")
        KINDS[kind] = cls


class PublishInbound(JobPayload, kind="publish_inbound", label="Customer message to HubSpot"):
    """The entry's message, published in its HubSpot thread: nothing beyond `message_id`."""


class SendReply(
    JobPayload, kind="send_reply", label="Agent reply to WhatsApp", retry_from_dashboard=False
):
    channel_account_id: str | None = None
    channel_id: str | None = None
    rich_text: str | None = None
    attachment_count: int = 0
    # Written by the worker just before it calls Aircall (replies/reply.py, decision 0002).
    sending_since: str | None = None


class ReportStatus(JobPayload, kind="report_status", label="Delivery status to HubSpot"):
    hubspot_message_id: str
    status: Literal["SENT", "READ", "FAILED"]
    error: str | None = None
    channel_id: str | None = None


class NativeTicket(JobPayload, kind="native_ticket", label="Native ticket in HubSpot"):
    """One missed call, voicemail or SMS that gets a CRM ticket (native_tickets/tickets.py's
    `Activity`, with the number it happened on)."""

    number_id: int
    # The activity, field for field (native_tickets/tickets.py `Activity`).
    kind: str  # MISSED_CALL, VOICEMAIL or SMS
    reference: str
    customer: str
    customer_e164: str | None = None
    customer_name: str | None = None
    at: str
    text: str = ""
    voicemail_url: str | None = None


class SetContactCompany(
    JobPayload, kind="set_contact_company", label="Contact's company in HubSpot"
):
    conversation_id: int
    company: str
    replaces: str | None = None


class ReengagementNote(JobPayload, kind="reengagement_note", label="Template note in the ticket"):
    # First field on purpose: replies/reengagement.py `ensure_note` finds a queued note by the
    # stored JSON's leading `{"reply_id": N,`.
    reply_id: int
    channel_id: str | None = None
    number_id: int | None = None
    text: str


class FetchMedia(JobPayload, kind="fetch_media", label="Customer's file to HubSpot"):
    url: str
    file_name: str | None = None
    file_type: str | None = None
    caption: str = ""
    kind: str  # the message's kind (image, document, location…)


class RefreshNumbers(JobPayload, kind="refresh_numbers", label="Numbers refreshed from Aircall"):
    """The installation's numbers read again from Aircall: nothing to carry."""

    # Queued by the Aircall authorisation (connect/install.py), with the company's count of
    # numbers as Aircall gave it then: the first read may open with a burst.
    after_install: bool = False
    numbers_count: int | None = None


class SyncNumber(JobPayload, kind="sync_number", label="Number read from Aircall"):
    """One number's WhatsApp and SMS status read from Aircall after a number.* webhook."""

    aircall_number_id: str
