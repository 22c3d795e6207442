"""SQLAlchemy 2 models: the service's whole state, on SQLite or PostgreSQL alike.

Every row belongs to exactly one installation (R10); queries that serve a page or a
webhook always filter on it. Uniqueness that protects "nothing duplicated" lives here,
as database constraints, because a constraint is the only dedup oracle that holds under
concurrent deliveries (peers-and-anchors, lesson 2).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on both databases (SQLite forgets
    the zone; a naive datetime compared with an aware one is a bug waiting to happen)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc() -> UTCDateTime:
    return UTCDateTime()


class Installation(Base):
    """One customer of the service: a HubSpot portal joined to an Aircall company."""

    __tablename__ = "installations"
    __table_args__ = (UniqueConstraint("hubspot_portal_id", "aircall_company_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hubspot_portal_id: Mapped[str | None] = mapped_column(String(32))
    aircall_company_id: Mapped[str | None] = mapped_column(String(32))
    aircall_company_name: Mapped[str | None] = mapped_column(String(200))

    # OAuth tokens are stored encrypted (db/crypto.py), never in clear.
    hubspot_access_token_enc: Mapped[str | None] = mapped_column(Text)
    hubspot_refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    hubspot_token_expires_at: Mapped[datetime | None] = mapped_column(_utc())
    hubspot_scopes: Mapped[str] = mapped_column(Text, default="")
    aircall_access_token_enc: Mapped[str | None] = mapped_column(Text)
    aircall_scopes: Mapped[str] = mapped_column(Text, default="")

    # Aircall authenticates its deliveries by a token in the body; we keep only its hash,
    # and the hash is also how a delivery finds its installation (R42).
    aircall_webhook_id: Mapped[str | None] = mapped_column(String(64))
    aircall_webhook_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)

    # R3 (b): Aircall has no API for "company is WhatsApp-enabled"; we derive it from the
    # numbers (any number with a WhatsApp business account) unless an admin states it.
    company_whatsapp_override: Mapped[bool | None] = mapped_column(Boolean)

    # R8: why the installation must re-authenticate (None when all is well).
    reauth_required: Mapped[str | None] = mapped_column(Text)

    created_at: Mapped[datetime] = mapped_column(_utc())
    updated_at: Mapped[datetime] = mapped_column(_utc())

    numbers: Mapped[list[Number]] = relationship(back_populates="installation")


class Number(Base):
    """An Aircall phone number of an installation, with capabilities and our settings."""

    __tablename__ = "numbers"
    __table_args__ = (UniqueConstraint("installation_id", "aircall_number_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    aircall_number_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200), default="")
    digits: Mapped[str] = mapped_column(String(40), default="")  # Aircall's display form
    e164: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str | None] = mapped_column(String(2))

    calls_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    whatsapp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    whatsapp_status: Mapped[str | None] = mapped_column(String(40))

    # Our own integration settings, switched on the dashboard: R3 (d) and (e), R35.
    connected_to_hubspot: Mapped[bool] = mapped_column(Boolean, default=False)
    helpdesk_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    native_ticketing: Mapped[bool] = mapped_column(Boolean, default=False)

    synced_at: Mapped[datetime | None] = mapped_column(_utc())
    # Aircall deleted the number (number.deleted, or a refresh no longer finds it): the row
    # stays for its conversations, out of every list and switched off.
    removed_at: Mapped[datetime | None] = mapped_column(_utc())

    installation: Mapped[Installation] = relationship(back_populates="numbers")


class _OfANumber:
    """The first columns of a row that belongs to one number of one installation, and is
    deleted with either. `sort_order` keeps them first in the table, in this order."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-1)
    installation_id: Mapped[int] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), sort_order=-1)
    number_id: Mapped[int] = mapped_column(
        ForeignKey("numbers.id", ondelete="CASCADE"), sort_order=-1)


class ChannelAccount(_OfANumber, Base):
    """HubSpot's channel account for one connected number (R4: one number per account)."""

    __tablename__ = "channel_accounts"
    __table_args__ = (
        UniqueConstraint("installation_id", "hubspot_channel_account_id"),
        # A number is the live channel of at most one account at a time (R5 "Number
        # already exists"); disconnected rows stay for history.
        Index(
            "uq_channel_accounts_live_number",
            "number_id",
            unique=True,
            sqlite_where=text("disconnected_at IS NULL"),
            postgresql_where=text("disconnected_at IS NULL"),
        ),
    )

    hubspot_channel_id: Mapped[str] = mapped_column(String(32))
    hubspot_channel_account_id: Mapped[str | None] = mapped_column(String(32))
    hubspot_inbox_id: Mapped[str | None] = mapped_column(String(32))
    account_token: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    delivery_identifier: Mapped[str] = mapped_column(String(20))
    authorized: Mapped[bool] = mapped_column(Boolean, default=True)
    connected_at: Mapped[datetime] = mapped_column(_utc())
    disconnected_at: Mapped[datetime | None] = mapped_column(_utc())

    number: Mapped[Number] = relationship()


class Conversation(_OfANumber, Base):
    """The exchange between one business number and one customer number."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("number_id", "customer_e164"),)

    customer_e164: Mapped[str] = mapped_column(String(20))
    customer_name: Mapped[str | None] = mapped_column(String(200))
    # The company of Aircall's contact for this customer, as last queued for HubSpot (R31).
    customer_company: Mapped[str | None] = mapped_column(String(200))
    # Provider timestamp of the customer's last message: opens the 24 h window (R24).
    last_inbound_at: Mapped[datetime | None] = mapped_column(_utc())
    # When the number's re-engagement template last went to this customer (R52): until the
    # customer writes after it, later replies wait for that answer instead of a second one.
    template_sent_at: Mapped[datetime | None] = mapped_column(_utc())
    created_at: Mapped[datetime] = mapped_column(_utc())


class Ticket(Base):
    """One cut of a conversation by the inactivity rule (R12, R20) = one HubSpot thread."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    integration_thread_id: Mapped[str] = mapped_column(String(64), unique=True)
    hubspot_thread_id: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(_utc())


class Message(Base):
    """A WhatsApp message in either direction, as stored before anything is sent on."""

    __tablename__ = "messages"
    __table_args__ = (
        # Named explicitly: the naming convention names a constraint after its first
        # column only, which gives both of these "uq_messages_installation_id" — a name
        # clash PostgreSQL refuses (SQLite silently accepts it).
        UniqueConstraint(
            "installation_id", "provider_message_id", name="uq_messages_provider_message_id"
        ),
        UniqueConstraint(
            "installation_id", "hubspot_message_id", name="uq_messages_hubspot_message_id"
        ),
        Index("ix_messages_conversation_sent_at", "conversation_id", "sent_at"),
        # The dashboard's failed replies (issue 17 item 6): only failed rows are indexed.
        Index("ix_messages_failed", "installation_id",
              sqlite_where=text("status = 'failed'"), postgresql_where=text("status = 'failed'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    direction: Mapped[str] = mapped_column(String(8))  # "inbound" | "outbound"
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    hubspot_message_id: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), default="text")  # text, image, audio…
    text: Mapped[str] = mapped_column(Text, default="")
    # The provider's timestamp (when the customer sent it / when the agent replied):
    # orders the ticket and drives the ticket rule and the window (R15, R20, R24).
    sent_at: Mapped[datetime] = mapped_column(_utc())
    stored_at: Mapped[datetime] = mapped_column(_utc())
    # inbound: pending → published | failed | skipped
    # outbound: pending → sending → sent → delivered → read, or failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    failure_reason: Mapped[str | None] = mapped_column(Text)
    sender_name: Mapped[str | None] = mapped_column(String(200))
    # Inbound media (R51): pending → uploaded | failed (then `text` holds the reason). The
    # file id is stored before the publish, so a retry never uploads twice.
    media_state: Mapped[str | None] = mapped_column(String(16))
    media_file_id: Mapped[str | None] = mapped_column(String(40))
    media_file_name: Mapped[str | None] = mapped_column(String(255))
    media_usage_type: Mapped[str | None] = mapped_column(String(20))


class WebhookEvent(Base):
    """Every authenticated delivery, raw, kept before we answer 2xx (R11, R42)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        # A copy is a duplicate only within one verified registration (issue 11): one
        # Aircall company in two portals sends each event to both webhooks, each kept.
        UniqueConstraint("source", "scope", "dedupe_key",
                         name="uq_webhook_events_scope_dedupe_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # "aircall" | "hubspot"
    installation_id: Mapped[int | None] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(80))
    # The verified registration the delivery came through: "webhook:<token digest>" for
    # Aircall, "installation:<id>" (or "portal:<id>") for HubSpot.
    scope: Mapped[str] = mapped_column(String(100))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(40))  # stored, ignored, unsupported…
    detail: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(_utc())


class OutboxEntry(Base):
    """A unit of work for the worker, written in the same transaction as its message.

    Entries sharing an `ordering_key` (one conversation) are worked strictly one at a time
    in (`ordering_at`, `id`) order, so a conversation's messages reach HubSpot in the
    customer's order whatever the number of workers (R15).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        # The claim's own order (state, then available_at, then id): PostgreSQL reads the
        # first claimable entry without sorting (bench/worker_processes.py: 4-5x faster).
        Index("ix_outbox_claim", "state", "available_at", "id"),
        Index("ix_outbox_ordering", "ordering_key", "state", "ordering_at"),
        # The round-robin claim's order: the next installation's oldest claimable entry.
        Index("ix_outbox_claim_turn", "state", "installation_id", "available_at", "id"),
        # The dashboard's native-ticket count reads one kind's done entries (issue 17 item 6).
        Index("ix_outbox_installation_kind_state", "installation_id", "kind", "state"),
        # Each conversation's queue of pending entries in its order (db/outbox.py's claim,
        # issue 17 item 2): its first row is the conversation's head, one index probe; the
        # conversations with pending work are found by skipping from key to key.
        Index("ix_outbox_queue", "ordering_key", "ordering_at", "id",
              sqlite_where=text("state = 'pending'"),
              postgresql_where=text("state = 'pending'")),
        # Leased entries (a worker holds them, or held them and died): few at any time.
        Index("ix_outbox_leased", "ordering_key", "locked_until",
              sqlite_where=text("locked_until IS NOT NULL"),
              postgresql_where=text("locked_until IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    installation_id: Mapped[int] = mapped_column(ForeignKey("installations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    payload: Mapped[str] = mapped_column(Text, default="{}")
    ordering_key: Mapped[str | None] = mapped_column(String(64))
    ordering_at: Mapped[datetime] = mapped_column(_utc())
    state: Mapped[str] = mapped_column(String(12), default="pending")  # pending, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(_utc())
    locked_by: Mapped[str | None] = mapped_column(String(64))
    locked_until: Mapped[datetime | None] = mapped_column(_utc())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_utc())
    finished_at: Mapped[datetime | None] = mapped_column(_utc())
    # The first temporary failure of the current run of retries: the retry budget
    # (DELIVERY_RETRY_HOURS) counts from here; rate-limit waits never set it (issue 11 item 5).
    retrying_since: Mapped[datetime | None] = mapped_column(_utc())
    # Why a failed entry failed, when something can re-queue it later: "auth_revoked"
    # entries are re-queued once the admin re-authorises HubSpot (issue 11 item 4).
    failure_kind: Mapped[str | None] = mapped_column(String(32))


class DeliveryAttempt(Base):
    """One try of one outbox entry (Saleor's delivery log): shown and replayable (R9, R44)."""

    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(_utc())
    duration_ms: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # ok, retry, rate_limited, permanent
    http_status: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class AdminSession(Base):
    """A browser session (issue 12, item 4): the cookie holds a random id, this table only
    its SHA-256. Deleting the row ends the session wherever its cookie was copied."""

    __tablename__ = "admin_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Set once signed in: "sign out everywhere" and re-authorisation revoke by it (R10).
    installation_id: Mapped[int | None] = mapped_column(
        ForeignKey("installations.id", ondelete="CASCADE"), index=True
    )
    data: Mapped[str] = mapped_column(Text, default="{}")  # CSRF token, OAuth state, flash
    created_at: Mapped[datetime] = mapped_column(_utc())
    expires_at: Mapped[datetime] = mapped_column(_utc(), index=True)


class ServiceState(Base):
    """Small key/value facts of the deployment (e.g. the sandbox clock offset)."""

    __tablename__ = "service_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RateBucket(Base):
    """The pacing bucket of one provider account (R44, pacing.py), shared by every worker
    process: the moment (UNIX seconds) its next API call may start."""

    __tablename__ = "rate_buckets"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    next_slot_at: Mapped[float] = mapped_column(Float)


class ReengagementTemplate(Base):
    """A number's re-engagement template as the admin chose it on the dashboard (R52), and
    the number's APPROVED templates as last listed from Aircall (the dashboard's cache)."""

    __tablename__ = "reengagement_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number_id: Mapped[int] = mapped_column(
        ForeignKey("numbers.id", ondelete="CASCADE"), unique=True
    )
    # The choice; no template_id = none chosen, R24's FAILED stands.
    template_id: Mapped[str | None] = mapped_column(String(64))
    template_name: Mapped[str | None] = mapped_column(String(200))
    template_language: Mapped[str | None] = mapped_column(String(20))
    # Aircall's listing carries no body: the admin says whether the agent's text is {{1}}.
    fills_text: Mapped[bool] = mapped_column(Boolean, default=False)
    # Why the chosen template cannot be used now (left APPROVED, refused by WhatsApp).
    problem: Mapped[str | None] = mapped_column(Text)
    problem_at: Mapped[datetime | None] = mapped_column(_utc())
    # JSON list of the APPROVED templates from the last listing, and when it was taken.
    listing: Mapped[str | None] = mapped_column(Text)
    listed_at: Mapped[datetime | None] = mapped_column(_utc())
    updated_at: Mapped[datetime] = mapped_column(_utc())
