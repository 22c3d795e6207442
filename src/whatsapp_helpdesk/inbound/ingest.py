"""Aircall webhook deliveries → stored events, messages and outbox work (R11, R14–R16).

Everything a delivery changes is written in one transaction, and only after its commit
does the endpoint answer 2xx: a 2xx always means "kept" (peers lesson 3). The database's
unique constraints are the dedup oracle, so the same delivery ten times, or ten at once,
stores one message (R14).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

import structlog
from sqlalchemy import Table, and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.aircall import (
    AircallEnvelope,
    AircallMessage,
    IntegrationDeletedEvent,
    InvalidAircallPayload,
    MessageEvent,
    UnsupportedAircallEvent,
    parse_envelope,
    parse_event,
    token_digest,
)
from whatsapp_helpdesk.db.models import (
    ChannelAccount,
    Conversation,
    Installation,
    Message,
    Number,
    WebhookEvent,
)
from whatsapp_helpdesk.db.session import DURABLE, local_writer
from whatsapp_helpdesk.domain import content
from whatsapp_helpdesk.domain.phone import InvalidPhoneNumber, to_e164
from whatsapp_helpdesk.inbound import media
from whatsapp_helpdesk.inbound.ports import InboundDeps
from whatsapp_helpdesk.jobs import payloads

log = structlog.get_logger(__name__)


# Events Aircall may send that we knowingly do nothing with (zulip's explicit ignore
# list): acknowledged and recorded as "ignored", never an error.
IGNORED_EVENTS = frozenset(
    {
        "call.created", "call.ringing_on_agent", "call.agent_declined", "call.answered",
        "call.transferred", "call.external_transferred", "call.unsuccessful_transfer",
        "call.hungup", "call.hold", "call.unhold", "call.ivr_option_selected",
        "call.comm_assets_generated", "call.assigned", "call.archived", "call.tagged",
        "call.untagged", "call.commented", "contact.created", "contact.updated",
        "contact.deleted", "group_message.sent", "group_message.received",
        "group_message.status_updated",
    }
)


# Ports: Aircall events that other slices handle (message echoes and statuses: replies;
# calls and SMS: native tickets; numbers: connect) are dispatched through handlers the
# caller passes in, wired at the edge (web/webhook_spool.py AIRCALL_HANDLERS), as HubSpot's
# are: this slice imports none of those slices.
EventHandler = Callable[[Session, int, Any, datetime], tuple[str, str | None]]
"""(session, installation_id, parsed event, now) → (outcome, detail), in ingest's transaction."""


class CompanySeen(Protocol):
    """Aircall named the customer's company on an inbound message: queue its sync if new."""

    def __call__(self, session: Session, conversation: Conversation, company_name: str | None,
                 *, now: datetime, after: timedelta) -> bool: ...


@dataclass(frozen=True)
class AircallHandlers:
    """What ingest hands to other slices. `events` is keyed by Aircall's event name; an
    inbound WhatsApp `message.received` and `integration.deleted` stay in this slice."""

    events: Mapping[str, EventHandler]
    # An inbound non-WhatsApp `message.received` (an SMS): not our conversation, a native
    # ticket's (R35, R36). Not keyed by event name: WhatsApp messages share that name.
    sms_received: EventHandler
    company_seen: CompanySeen


@dataclass(frozen=True)
class Outcome:
    """What became of a delivery: the HTTP answer and what we record."""

    status_code: int
    result: str
    detail: str | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": self.result}
        if self.detail:
            body["detail"] = self.detail
        return body


def _tokened_envelope(raw_body: bytes) -> AircallEnvelope | Outcome:
    """The delivery's envelope, or the answer when it is invalid (400) or carries no token
    (401: unauthenticated, nothing is stored, nothing changes, R42)."""
    try:
        envelope = parse_envelope(raw_body)
    except InvalidAircallPayload as exc:
        return Outcome(400, "invalid", str(exc))
    if not envelope.token:
        return Outcome(401, "unauthorized", "unknown webhook token")
    return envelope


def handle_aircall_delivery(services: InboundDeps, handlers: AircallHandlers,
                            raw_body: bytes) -> Outcome:
    envelope = _tokened_envelope(raw_body)
    if isinstance(envelope, Outcome):
        return envelope
    # The token is checked inside the delivery's own transaction: one transaction per
    # delivery, not a lookup and then a write (issue 17 item 1).
    return _ingest(services, handlers, None, token_digest(envelope.token), envelope,
                   raw_body.decode("utf-8", "replace"))


def ingest_authenticated_aircall(
    services: InboundDeps, handlers: AircallHandlers, installation_id: int, webhook_digest: str,
    envelope: AircallEnvelope, payload_text: str,
) -> Outcome:
    """A delivery whose token was verified (now, or before it was spooled, R53): stored
    once per webhook registration, `webhook_digest` naming the registration."""
    return _ingest(services, handlers, installation_id, webhook_digest, envelope, payload_text)


@dataclass(frozen=True)
class AircallDelivery:
    """A delivery parsed and ready to store: its token's digest names the registration;
    `installation_id` None means it is looked up by that digest inside the transaction."""

    installation_id: int | None
    webhook_digest: str
    envelope: AircallEnvelope
    event: Any
    payload_text: str


def prepare_aircall_delivery(raw_body: bytes) -> Outcome | AircallDelivery | None:
    """What can be decided without the database: an Outcome (400, 401), a delivery ready to
    store, or None when only the one-by-one path can answer (an invalid event is recorded
    in a transaction of its own)."""
    envelope = _tokened_envelope(raw_body)
    if isinstance(envelope, Outcome):
        return envelope
    try:
        event = parse_event(envelope)
    except InvalidAircallPayload:
        return None
    return AircallDelivery(None, token_digest(envelope.token), envelope, event,
                           raw_body.decode("utf-8", "replace"))


def ingest_aircall_batch(services: InboundDeps, handlers: AircallHandlers,
                        deliveries: list[AircallDelivery]) -> list[Outcome]:
    """Group commit (issue 17 item 1): deliveries that arrived together are stored in ONE
    transaction, in arrival order, so they share its commit (and, on SQLite, its fsync).
    Every outcome holds only once this returns, i.e. after the commit. Any exception means
    nothing of the batch was kept: the caller stores each delivery alone then, so that one
    failing delivery fails only itself."""
    now = services.clock.now()
    # Stored in the order of the conversation rows they lock (stable: a conversation's own
    # deliveries keep their arrival order), so that concurrent batches on PostgreSQL take
    # those locks in one order and never deadlock (each would wait deadlock_timeout).
    order = sorted(range(len(deliveries)), key=lambda i: _lock_order(deliveries[i]))
    outcomes: list[Outcome] = [Outcome(500, "not stored")] * len(deliveries)
    with local_writer(services.engine), services.sessions.begin() as session:
        session.connection(execution_options={DURABLE: True})
        in_bulk = _store_messages_in_bulk(services, handlers, session,
                                          [deliveries[i] for i in order], now)
        if in_bulk is not None:
            for i, outcome in zip(order, in_bulk, strict=True):
                outcomes[i] = outcome
        else:
            for i in order:
                outcomes[i] = _store(services, handlers, session, deliveries[i], now)
    for delivery, outcome in zip(deliveries, outcomes, strict=True):
        if outcome.status_code != 401:
            log.info("aircall.delivery", event_type=delivery.envelope.event,
                     result=outcome.result, detail=outcome.detail)
    return outcomes


def _plain_message(handlers: AircallHandlers, delivery: AircallDelivery) -> MessageEvent | None:
    """The event when the delivery is what the fast path spools (an inbound WhatsApp
    `message.received` from a known registration, without media to fetch): the kind
    `_store_messages_in_bulk` stores; None for anything else."""
    event = delivery.event
    if (delivery.installation_id is None or not isinstance(event, MessageEvent)
            or delivery.envelope.event != "message.received"
            or "message.received" in handlers.events):
        return None
    message = event.message
    if not message.is_whatsapp or message.direction != "inbound":
        return None
    if media.wants_fetch((message.type or "text").lower(), message.media):
        return None
    return event


def _store_messages_in_bulk(services: InboundDeps, handlers: AircallHandlers, session: Session,
                            deliveries: list[AircallDelivery],
                            now: datetime) -> list[Outcome] | None:
    """A batch of inbound WhatsApp messages (the drain's usual batch) in O(1) statements
    (issue 17 item 1: one statement per row and table was ~1 ms of CPU per row): the numbers
    and their channel accounts read once, then one multi-row INSERT per table — events (ON
    CONFLICT DO NOTHING: a copy stores nothing), conversations (one upsert row each),
    messages, publish jobs — in the given order, so a conversation's messages keep it. The
    same rows and outcomes as `_store` one by one. None when a delivery is of another kind
    (the caller stores them one by one then)."""
    events = [_plain_message(handlers, delivery) for delivery in deliveries]
    if not deliveries or any(event is None for event in events):
        return None
    plain = cast(list[MessageEvent], events)
    connection = session.connection()
    dialect = connection.dialect.name
    numbers: dict[tuple[int, str], Any] = {}
    for delivery, event in zip(deliveries, plain, strict=True):
        key = (int(delivery.installation_id or 0), str(event.number_id))
        if key not in numbers:
            numbers[key] = connection.execute(_NUMBER_AND_ACCOUNT, {
                "installation_id": key[0], "aircall_number_id": key[1]}).first()
    outcomes: list[Outcome] = []
    event_rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    new: list[tuple[int, tuple[int, str] | None]] = []  # (index, where it is stored)
    for index, (delivery, event) in enumerate(zip(deliveries, plain, strict=True)):
        installation_id = int(delivery.installation_id or 0)
        scope, dedupe_key = f"webhook:{delivery.webhook_digest}", _dedupe_key(delivery.envelope)
        if (scope, dedupe_key) in seen:
            outcomes.append(Outcome(200, "duplicate"))  # a copy in the same batch
            continue
        seen.add((scope, dedupe_key))
        result, detail, conversation_key = _message_target(
            numbers[installation_id, str(event.number_id)], event)
        outcomes.append(Outcome(200, result, detail))
        new.append((index, conversation_key))
        event_rows.append({
            "source": "aircall", "installation_id": installation_id,
            "event_type": delivery.envelope.event, "scope": scope, "dedupe_key": dedupe_key,
            "outcome": result, "detail": detail,
            "payload": _stored_payload(delivery.payload_text, delivery.webhook_digest),
            "received_at": now})
    inserted = {(row.scope, row.dedupe_key) for row in connection.execute(
        _insert_events_returning_keys(dialect), event_rows)} if event_rows else set()
    stored: list[tuple[int, int, str]] = []  # (index, number row id, customer)
    for (index, conversation_key), row in zip(new, event_rows, strict=True):
        if (row["scope"], row["dedupe_key"]) not in inserted:
            outcomes[index] = Outcome(200, "duplicate")
        elif conversation_key is not None:
            stored.append((index, *conversation_key))
    if not stored:
        return outcomes
    # One upsert row per conversation: what the rows one by one would leave, i.e. the
    # latest inbound time and the last name given.
    conversation_rows: dict[tuple[int, str], dict[str, Any]] = {}
    for index, number_id, customer in stored:
        message = plain[index].message
        sent_at = message.provider_time or deliveries[index].envelope.timestamp or now
        name = message.contact.full_name if message.contact else None
        row = conversation_rows.setdefault((number_id, customer), {
            "installation_id": deliveries[index].installation_id, "number_id": number_id,
            "customer_e164": customer, "created_at": now, "last_inbound_at": sent_at,
            "customer_name": None})
        row["last_inbound_at"] = max(row["last_inbound_at"], sent_at)
        row["customer_name"] = name or row["customer_name"]
    conversations = {(row.number_id, row.customer_e164): (row.id, row.customer_company)
                     for row in connection.execute(_conversation_bulk_upsert(dialect),
                                                   list(conversation_rows.values()))}
    message_rows: list[dict[str, Any]] = []
    for index, number_id, customer in stored:
        delivery, message = deliveries[index], plain[index].message
        message_rows.append({
            "installation_id": delivery.installation_id,
            "conversation_id": conversations[number_id, customer][0],
            "direction": "inbound", "provider_message_id": message.id,
            "kind": (message.type or "text").lower(), "text": inbound_text(message),
            "sent_at": message.provider_time or delivery.envelope.timestamp or now,
            "stored_at": now, "status": "pending",
            "sender_name": message.contact.full_name if message.contact else None})
    message_ids = {(row.installation_id, row.provider_message_id): row.id
                   for row in connection.execute(_INSERT_MESSAGES_RETURNING_KEYS, message_rows)}
    grace = timedelta(seconds=services.settings.reorder_grace_seconds)
    publishes: list[jobs.QueuedWork] = []
    for (index, number_id, customer), row in zip(stored, message_rows, strict=True):
        conversation_id, company_sent = conversations[number_id, customer]
        message = plain[index].message
        company = message.contact.company_name if message.contact else None
        if company and company != company_sent:
            handlers.company_seen(session, session.get_one(Conversation, conversation_id),
                                  company, now=now, after=2 * grace)
        publishes.append(jobs.QueuedWork(
            installation_id=int(row["installation_id"]),
            message_id=message_ids[row["installation_id"], message.id],
            ordering_key=f"conversation:{conversation_id}", ordering_at=row["sent_at"]))
    # A short wait lets a message Aircall delivered late overtake its successors (R15).
    jobs.enqueue_many(session, payloads.PublishInbound(), publishes, now=now, delay=grace)
    return outcomes


def _message_target(found: Any, event: MessageEvent
                    ) -> tuple[str, str | None, tuple[int, str] | None]:
    """What `_message_event` decides before writing: (outcome, detail, (number row id,
    customer) when the message is to be stored)."""
    if found is None:
        return ("unknown_number", f"Aircall number {event.number_id} is not known here", None)
    number_id, number_name, number_digits, account_id = found
    if account_id is None:
        return ("number_not_connected",
                f"{number_name or number_digits} is not a help-desk channel", None)
    try:
        customer = _customer_e164(event.message.external_number or "")
    except InvalidPhoneNumber as exc:
        return ("invalid_phone", str(exc), None)
    return ("stored", None, (int(number_id), customer))


# A customer writes several messages: their number is parsed once per web process, not once
# per message (parsing was a fifth of the drain's CPU per row, issue 17 item 1). to_e164 is
# a pure function; a number it rejects raises each time (not cached).
_customer_e164 = functools.lru_cache(maxsize=8192)(to_e164)


def _lock_order(delivery: AircallDelivery) -> tuple[str, str]:
    data = delivery.envelope.data
    number = data.get("number")
    number_id = str(number.get("id", "")) if isinstance(number, dict) else ""
    return (number_id, str(data.get("external_number") or ""))


def _ingest(
    services: InboundDeps, handlers: AircallHandlers, installation_id: int | None,
    webhook_digest: str,
    envelope: AircallEnvelope, payload_text: str,
) -> Outcome:
    """`installation_id` None: the registration is looked up by `webhook_digest` (R42)."""
    scope = f"webhook:{webhook_digest}"
    try:
        event = parse_event(envelope)
    except InvalidAircallPayload as exc:
        if installation_id is None:
            installation_id = _installation_for_digest(services, webhook_digest)
            if installation_id is None:
                return Outcome(401, "unauthorized", "unknown webhook token")
        _record_only(services, installation_id, scope, envelope, "invalid", str(exc))
        return Outcome(400, "invalid", str(exc))

    delivery = AircallDelivery(installation_id, webhook_digest, envelope, event, payload_text)
    now = services.clock.now()
    try:
        with local_writer(services.engine), services.sessions.begin() as session:
            session.connection(execution_options={DURABLE: True})
            outcome = _store(services, handlers, session, delivery, now)
    except IntegrityError:
        # A unique constraint past the event row (the message's provider id) caught a copy
        # that raced with itself: already kept once (R14).
        return Outcome(200, "duplicate")
    if outcome.status_code != 401:
        log.info("aircall.delivery", event_type=envelope.event, result=outcome.result,
                 installation_id=installation_id, detail=outcome.detail)
    return outcome


def _store(services: InboundDeps, handlers: AircallHandlers, session: Session,
           delivery: AircallDelivery, now: datetime) -> Outcome:
    """One delivery inside the caller's transaction. A copy seen before is answered
    "duplicate" without an exception, so it never spoils a batch's transaction."""
    envelope, event = delivery.envelope, delivery.event
    installation_id = delivery.installation_id
    if installation_id is None:
        # Looked up by the SHA-256 of the token: the comparison the database makes is on
        # the digest, so its timing tells nothing about the token (R42).
        installation_id = session.scalar(_INSTALLATION_BY_DIGEST,
                                         {"digest": delivery.webhook_digest})
        if installation_id is None:
            # Unauthenticated: nothing is stored, nothing changes (R42).
            return Outcome(401, "unauthorized", "unknown webhook token")
    # The unique (source, scope, dedupe_key) answers "seen before?" here, before any
    # handler runs: ON CONFLICT DO NOTHING returns no row for a second copy.
    record_id = session.scalar(_insert_event(session.get_bind().dialect.name), {
        "source": "aircall",
        "installation_id": installation_id,
        "event_type": envelope.event,
        "scope": f"webhook:{delivery.webhook_digest}",
        "dedupe_key": _dedupe_key(envelope),
        "outcome": "stored",
        "detail": None,
        "payload": _stored_payload(delivery.payload_text, delivery.webhook_digest),
        "received_at": now,
    })
    if record_id is None:
        return Outcome(200, "duplicate")
    result, detail = "stored", None
    handler = handlers.events.get(envelope.event)
    if isinstance(event, UnsupportedAircallEvent):
        ignored = event.event in IGNORED_EVENTS
        result = "ignored" if ignored else "unsupported"
        if not ignored:
            log.warning("aircall.unsupported_event", event_type=event.event)
    elif handler is not None:
        result, detail = handler(session, installation_id, event, now)
    elif isinstance(event, MessageEvent):
        result, detail = _message_event(services, handlers, session, installation_id,
                                        envelope, event, now)
    elif isinstance(event, IntegrationDeletedEvent):
        result, detail = _integration_deleted(session, installation_id, now)
    else:
        # A parsed event no handler was wired for: visible, not quietly "stored".
        result, detail = "unsupported", "no handler wired for this event"
        log.warning("aircall.unhandled_event", event_type=envelope.event)
    if (result, detail) != ("stored", None):
        session.execute(_SET_EVENT_OUTCOME,
                        {"event_id": record_id, "outcome": result, "detail": detail})
    return Outcome(200, result, detail)


def _stored_payload(payload_text: str, webhook_digest: str) -> str:
    """The raw delivery without its token (R41): the token's digest in its place, also for a
    spooled delivery (whose token was blanked before it reached the disk, R53)."""
    body = json.loads(payload_text)
    body["token"] = f"sha256:{webhook_digest}"
    return json.dumps(body, ensure_ascii=False)


def _installation_for_digest(services: InboundDeps, digest: str) -> int | None:
    with services.sessions() as session:
        return session.scalar(
            select(Installation.id).where(Installation.aircall_webhook_token_hash == digest)
        )


def _dedupe_key(envelope: AircallEnvelope) -> str:
    data = envelope.data
    ident = data.get("id") or data.get("call_uuid") or data.get("integration_id") or ""
    key = f"{envelope.event}:{ident}"
    if envelope.event.endswith("status_updated"):
        key += f":{data.get('status')}"
    if not ident:
        # Without an id the whole body is the identity.
        body = json.dumps(data, sort_keys=True, default=str).encode()
        key += ":" + hashlib.sha256(body).hexdigest()
    return key[:200]


def _record_only(
    services: InboundDeps, installation_id: int, scope: str, envelope: AircallEnvelope,
    outcome: str, detail: str,
) -> None:
    try:
        with services.sessions.begin() as session:
            session.add(
                WebhookEvent(
                    source="aircall", installation_id=installation_id,
                    event_type=envelope.event[:80], scope=scope,
                    dedupe_key=_dedupe_key(envelope),
                    outcome=outcome, detail=detail,
                    payload=json.dumps(envelope.data, default=str)[:100_000],
                    received_at=services.clock.now(),
                )
            )
    except IntegrityError:
        pass


# --- This slice's own handlers → (outcome, detail)


def _message_event(services: InboundDeps, handlers: AircallHandlers, session: Session,
                   installation_id: int, envelope: AircallEnvelope, event: MessageEvent,
                   now: datetime) -> tuple[str, str | None]:
    # message.sent (our own replies echoed, never published, R15) and message.status_updated
    # reached the replies slice's handlers before this.
    message = event.message
    if not message.is_whatsapp:
        if event.event == "message.received" and message.direction == "inbound":
            # An inbound SMS: the classic integration's native ticket, if any (R35, R36).
            return handlers.sms_received(session, installation_id, event, now)
        return ("ignored", "not a WhatsApp message")
    if message.direction != "inbound":
        return ("ignored", "not an inbound message")

    # One statement for the number and its live channel account (issue 17 item 1).
    found = session.execute(_NUMBER_AND_ACCOUNT, {
        "installation_id": installation_id, "aircall_number_id": str(event.number_id)}).first()
    result, detail, conversation_key = _message_target(found, event)
    if conversation_key is None:
        return (result, detail)
    number_id, customer = conversation_key

    sent_at = message.provider_time or envelope.timestamp or now
    customer_name = message.contact.full_name if message.contact else None
    conversation_id, company_sent = _conversation(
        session, installation_id, number_id, customer, now, sent_at, customer_name)
    kind = (message.type or "text").lower()
    text = inbound_text(message)
    fetch = media.wants_fetch(kind, message.media)
    # Core, not the ORM: a unit-of-work flush per row was most of a delivery's CPU.
    message_id = session.execute(_INSERT_MESSAGE, {
        "installation_id": installation_id,
        "conversation_id": conversation_id,
        "direction": "inbound",
        "provider_message_id": message.id,
        "kind": kind,
        "text": text,
        "sent_at": sent_at,
        "stored_at": now,
        "status": "pending",
        "sender_name": customer_name,
        # Fetched at once, ahead of the publish: the pre-signed URL expires (R51).
        **({"media_state": media.PENDING} if fetch else {}),
    }).scalar_one()  # unique (installation, provider_message_id): a second copy stops here
    ordering_key = f"conversation:{conversation_id}"
    if fetch:
        media.queue_fetch(session, message_id=message_id, installation_id=installation_id,
                          kind=kind, sent_at=sent_at, media=message.media,
                          caption=(message.body or "").strip(), now=now,
                          ordering_key=ordering_key)
    grace = timedelta(seconds=services.settings.reorder_grace_seconds)
    company = message.contact.company_name if message.contact else None
    if company and company != company_sent:
        handlers.company_seen(
            session, session.get_one(Conversation, conversation_id), company,
            # After the message's publication, which makes HubSpot create or match the contact.
            now=now, after=2 * grace,
        )
    jobs.enqueue(session, payloads.PublishInbound(), installation_id=installation_id, now=now,
                 message_id=message_id, ordering_key=ordering_key, ordering_at=sent_at,
                 # A short wait lets a message Aircall delivered late overtake its
                 # successors (R15).
                 delay=grace)
    return ("stored", None)


def inbound_text(message: AircallMessage) -> str:
    """What the ticket shows for the message (the rule: domain/content.py)."""
    return content.inbound_text(message.type, message.body, has_media=bool(message.media))


def _conversation(
    session: Session, installation_id: int, number_id: int, customer: str, now: datetime,
    sent_at: datetime, customer_name: str | None,
) -> tuple[int, str | None]:
    """Get or create, safe under concurrent first messages (R15: one ticket per burst), and
    note this message in one statement: (conversation id, the company last sent for it)."""
    row = session.execute(_conversation_upsert(session.get_bind().dialect.name), {
        "installation_id": installation_id, "number_id": number_id, "customer_e164": customer,
        "created_at": now, "last_inbound_at": sent_at, "customer_name": customer_name or None,
    }).one()
    return row[0], row[1]


# The hot path's statements are built once: building a statement (and its cache key) each
# time cost more CPU than executing it (issue 17 item 1, bench/ingest.py --profile).
_NUMBER_AND_ACCOUNT = (
    select(Number.id, Number.name, Number.digits, ChannelAccount.id)
    .outerjoin(ChannelAccount, and_(ChannelAccount.number_id == Number.id,
                                    ChannelAccount.disconnected_at.is_(None)))
    .where(Number.installation_id == bindparam("installation_id"),
           Number.aircall_number_id == bindparam("aircall_number_id"))
    .limit(1)
)
_MESSAGES = cast(Table, Message.__table__)  # a declarative model's table is a Table
_EVENTS = cast(Table, WebhookEvent.__table__)
_INSTALLATION_BY_DIGEST = select(Installation.id).where(
    Installation.aircall_webhook_token_hash == bindparam("digest"))
_EVENT_INSERTS: dict[str, Any] = {}
_SET_EVENT_OUTCOME = (
    update(_EVENTS).where(_EVENTS.c.id == bindparam("event_id"))
    .values(outcome=bindparam("outcome"), detail=bindparam("detail")))
# Core on the table, not the ORM entity: a plain INSERT, no unit of work.
_INSERT_MESSAGE = insert(_MESSAGES).returning(_MESSAGES.c.id)
_CONVERSATION_UPSERTS: dict[str, Any] = {}
_EVENT_BULK_INSERTS: dict[str, Any] = {}
_CONVERSATION_BULK_UPSERTS: dict[str, Any] = {}
_INSERT_MESSAGES_RETURNING_KEYS = insert(_MESSAGES).returning(
    _MESSAGES.c.id, _MESSAGES.c.installation_id, _MESSAGES.c.provider_message_id)


def _insert_event(dialect: str) -> Any:
    if dialect not in _EVENT_INSERTS:
        insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
        _EVENT_INSERTS[dialect] = insert_for(_EVENTS).on_conflict_do_nothing(
            index_elements=["source", "scope", "dedupe_key"]).returning(_EVENTS.c.id)
    return _EVENT_INSERTS[dialect]


def _insert_events_returning_keys(dialect: str) -> Any:
    if dialect not in _EVENT_BULK_INSERTS:
        insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
        # Returned with their keys: a multi-row RETURNING's order is not the VALUES' order
        # on SQLite, and a copy returns no row at all.
        _EVENT_BULK_INSERTS[dialect] = insert_for(_EVENTS).on_conflict_do_nothing(
            index_elements=["source", "scope", "dedupe_key"]).returning(
            _EVENTS.c.scope, _EVENTS.c.dedupe_key)
    return _EVENT_BULK_INSERTS[dialect]


def _conversation_bulk_upsert(dialect: str) -> Any:
    if dialect not in _CONVERSATION_BULK_UPSERTS:
        table = cast(Table, Conversation.__table__)
        _CONVERSATION_BULK_UPSERTS[dialect] = _conversation_on_conflict(
            _insert_for(dialect)(table), table.c.number_id, table.c.customer_e164)
    return _CONVERSATION_BULK_UPSERTS[dialect]


def _conversation_upsert(dialect: str) -> Any:
    if dialect not in _CONVERSATION_UPSERTS:
        table = cast(Table, Conversation.__table__)
        _CONVERSATION_UPSERTS[dialect] = _conversation_on_conflict(
            _insert_for(dialect)(table).values({name: bindparam(name) for name in (
                "installation_id", "number_id", "customer_e164", "created_at",
                "last_inbound_at", "customer_name")}))
    return _CONVERSATION_UPSERTS[dialect]


def _insert_for(dialect: str) -> Any:
    return pg_insert if dialect == "postgresql" else sqlite_insert


def _conversation_on_conflict(statement: Any, *also_returning: Any) -> Any:
    """Get-or-create a conversation: the latest inbound time and the customer's name kept
    on conflict; its id and company returned (and `also_returning`, for a batch)."""
    table = cast(Table, Conversation.__table__)
    latest = case(
        (or_(table.c.last_inbound_at.is_(None),
             statement.excluded.last_inbound_at > table.c.last_inbound_at),
         statement.excluded.last_inbound_at),
        else_=table.c.last_inbound_at)
    return statement.on_conflict_do_update(
        index_elements=["number_id", "customer_e164"],
        set_={"last_inbound_at": latest,
              "customer_name": func.coalesce(statement.excluded.customer_name,
                                             table.c.customer_name)},
    ).returning(table.c.id, table.c.customer_company, *also_returning)


def _integration_deleted(session: Session, installation_id: int,
                         now: datetime) -> tuple[str, str | None]:
    installation = session.get(Installation, installation_id)
    if installation is not None:
        # The Aircall side is gone: forget its credentials and its webhook, stop traffic.
        installation.aircall_access_token_enc = None
        installation.aircall_webhook_token_hash = None
        installation.aircall_webhook_id = None
        installation.reauth_required = "Aircall uninstalled the integration. Reconnect Aircall."
        installation.updated_at = now
        for account in session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.installation_id == installation_id,
                ChannelAccount.disconnected_at.is_(None),
            )
        ):
            account.disconnected_at = now
    return ("installation_torn_down", None)
