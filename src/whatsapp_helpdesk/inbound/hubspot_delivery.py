"""HubSpot custom-channel webhook deliveries → verified, stored events and their work
(R21, R27, R42, R43).

The signature is checked first (v3, 5-minute window, constant time); an unauthenticated
request stores nothing. Each event is then kept in one transaction together with what it
causes (the reply and its outbox entry, the channel-account change), and only after the
commit does the endpoint answer 2xx. Unique constraints are the dedup oracle: the same
event twice — a HubSpot retry or a replay — is answered 200 "duplicate" and sends nothing
more (R27).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from whatsapp_helpdesk.db.models import ChannelAccount, Installation, WebhookEvent
from whatsapp_helpdesk.hubspot import (
    ChannelAccountEvent,
    HubSpotEvent,
    InvalidHubSpotPayload,
    InvalidSignature,
    OutgoingChannelMessageCreated,
    UnsupportedEvent,
    parse_hubspot_event,
    verify_signature_v3,
)
from whatsapp_helpdesk.inbound.ingest import Outcome
from whatsapp_helpdesk.inbound.ports import InboundDeps
from whatsapp_helpdesk.input_limits import InputRejected, load_json

log = structlog.get_logger(__name__)

SOURCE = "hubspot"

# What each supported event does, run inside the transaction that keeps the event:
# (services, session, installation_id, event, now) -> (outcome, detail). The table is given
# by the caller (web/webhook_spool.py): the handlers belong to the replies and connect
# slices, which this one does not import. A handler gets the services the caller passed in
# (`D`: the caller's composition root), so it may need more ports than this slice does.
D = TypeVar("D", bound=InboundDeps)
Handler = Callable[[D, Session, int, Any, datetime], tuple[str, str | None]]
Handlers = Mapping[str, Handler[D]]


def handle_hubspot_delivery(
    services: D,
    handlers: Handlers[D],
    *,
    method: str,
    url: str,
    raw_body: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
) -> Outcome:
    """`url` is the URL HubSpot called, rebuilt from PUBLIC_URL (see the route)."""
    try:
        verify_signature_v3(
            method=method, url=url, raw_body=raw_body, timestamp_header=timestamp_header,
            signature_header=signature_header,
            client_secret=services.settings.hubspot_client_secret.get_secret_value(),
            now_ms=int(services.clock.now().timestamp() * 1000),
        )
    except InvalidSignature as exc:
        # Unauthenticated: nothing is stored, nothing changes (R42).
        log.warning("hubspot.webhook_rejected", reason=str(exc))
        return Outcome(401, "unauthorized", str(exc))
    return store_verified_hubspot_body(services, handlers, raw_body)


def store_verified_hubspot_body(
    services: D, handlers: Handlers[D], raw_body: bytes
) -> Outcome:
    """A body whose signature was verified (now, or before it was spooled, R53)."""
    try:
        # Depth, NUL and surrogates checked before anything reaches the database (R43).
        body = load_json(raw_body)
    except InputRejected as exc:
        return Outcome(400, "invalid", str(exc))
    if isinstance(body, list):
        # Custom-channel webhooks send one object (reference §4.1); an array is accepted
        # like defensive clients do, each element kept on its own.
        results = [_store_event(services, handlers, item, json.dumps(item)) for item in body]
        return Outcome(200, "batch", ", ".join(result for result, _ in results) or "empty")
    result, detail = _store_event(services, handlers, body, raw_body.decode("utf-8", "replace"))
    return Outcome(400 if result == "invalid" else 200, result, detail)


def _store_event(
    services: D, handlers: Handlers[D], item: Any, payload_text: str
) -> tuple[str, str | None]:
    now = services.clock.now()
    raw: Mapping[str, Any] = item if isinstance(item, Mapping) else {}
    event_type = str(raw.get("type") or "unknown")[:80]
    try:
        event = parse_hubspot_event(item)
    except InvalidHubSpotPayload as exc:
        _record_invalid(services, event_type, payload_text, str(exc))
        return ("invalid", str(exc))
    try:
        with services.sessions.begin() as session:
            installation_id = _installation_for(session, event, raw)
            record = WebhookEvent(
                source=SOURCE, installation_id=installation_id, event_type=event_type,
                scope=_scope(installation_id, raw),
                dedupe_key=_dedupe_key(event, raw, payload_text), outcome="stored",
                payload=payload_text, received_at=now,
            )
            session.add(record)
            session.flush()  # the unique (source, scope, dedupe_key): "seen before?"
            record.outcome, record.detail = _dispatch(services, handlers, session,
                                                      installation_id, event, now)
            outcome = (record.outcome, record.detail)
    except IntegrityError:
        # Seen before (a retry, a replay, or the same event racing itself): kept once (R27).
        log.info("hubspot.webhook_duplicate", event_type=event_type)
        return ("duplicate", None)
    log.info("hubspot.webhook", event_type=event_type, result=outcome[0],
             installation_id=installation_id, detail=outcome[1])
    return outcome


def _dispatch(services: D, handlers: Handlers[D], session: Session, installation_id: int | None,
              event: HubSpotEvent, now: datetime) -> tuple[str, str | None]:
    if isinstance(event, UnsupportedEvent):
        # Acknowledged and recorded, never silently dropped (R43).
        log.warning("hubspot.unsupported_event", event_type=event.type)
        return ("unsupported", None)
    if installation_id is None:
        return ("unknown_portal", "no installation for this portal or channel account")
    return handlers[event.type](services, session, installation_id, event, now)


def _installation_for(session: Session, event: HubSpotEvent, raw: Mapping[str, Any]) -> int | None:
    """The installation an event belongs to: by its channel account (one installation
    each), else by portal (a portal joined to several Aircall companies has several
    installations; the oldest is taken — such events name no account of ours anyway)."""
    account_id: str | None = None
    if isinstance(event, OutgoingChannelMessageCreated):
        account_id = event.message.channel_account_id
    elif isinstance(event, ChannelAccountEvent):
        account_id = event.channel_account_id
    if account_id:
        found = session.scalars(
            select(ChannelAccount.installation_id)
            .where(ChannelAccount.hubspot_channel_account_id == account_id)
            .order_by(ChannelAccount.id.desc())
        ).first()
        if found is not None:
            return found
    portal = raw.get("portalId")
    if portal is None:
        return None
    return session.scalars(
        select(Installation.id).where(Installation.hubspot_portal_id == str(portal))
        .order_by(Installation.id)
    ).first()


def _scope(installation_id: int | None, raw: Mapping[str, Any]) -> str:
    """Dedupe per installation (issue 11): an event id kept by one installation never
    hides the same id arriving for another."""
    if installation_id is not None:
        return f"installation:{installation_id}"
    return f"portal:{raw.get('portalId')}"[:100]


def _dedupe_key(event: HubSpotEvent, raw: Mapping[str, Any], payload_text: str) -> str:
    # A reply is identified by its HubSpot message id (reference §4.1: "dedupe on
    # message.id"), whatever envelope a retry comes in; other events by their event id.
    if isinstance(event, OutgoingChannelMessageCreated):
        return f"{event.type}:{event.message.id}"[:200]
    event_type = str(raw.get("type") or "unknown")
    event_id = raw.get("eventId")
    if event_id:
        return f"{event_type}:{event_id}"[:200]
    return f"{event_type}:sha256:{_digest(payload_text)}"[:200]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _record_invalid(services: InboundDeps, event_type: str, payload_text: str, detail: str) -> None:
    """A signed but malformed event: kept for the record (R43), answered 400."""
    try:
        with services.sessions.begin() as session:
            session.add(WebhookEvent(
                source=SOURCE, installation_id=None, event_type=event_type, scope="",
                dedupe_key=f"invalid:{_digest(payload_text)}", outcome="invalid", detail=detail,
                payload=payload_text[:100_000], received_at=services.clock.now(),
            ))
    except IntegrityError:
        pass
