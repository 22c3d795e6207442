"""Webhooks while the database is unreachable: authenticate without it, spool, replay (R53).

Aircall authenticates a delivery by its token, which we know only by digest, kept in the
database; so each web process keeps a cache of digest → installation, refreshed from the
database (digests of long random tokens are not secrets; the tokens themselves are never
written anywhere: a spooled Aircall body has its token blanked). HubSpot signs its webhooks
with the app secret (v3), which needs no database.

A delivery that cannot reach the database is appended to the spool (spool.py) and answered
2xx only after the fsync; a full spool answers 503 so that the provider retries. While the
spool has a backlog, new deliveries queue behind it, so that the database receives them in
the order they arrived. A background thread replays the spool, through the same handlers
as a live delivery, as soon as the database answers again; the dedupe constraints make a
replayed record that was already stored a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import select, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from whatsapp_helpdesk.aircall import (
    InvalidAircallPayload,
    parse_envelope,
    token_digest,
)
from whatsapp_helpdesk.aircall.payloads import CALL_EVENTS, NUMBER_EVENTS
from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.channel_accounts import (
    on_channel_account_created,
    on_channel_account_updated,
)
from whatsapp_helpdesk.connect.numbers_refresh import on_number_event
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.hubspot import InvalidSignature, verify_signature_v3
from whatsapp_helpdesk.inbound.hubspot_delivery import (
    Handlers,
    handle_hubspot_delivery,
    store_verified_hubspot_body,
)
from whatsapp_helpdesk.inbound.ingest import (
    AircallDelivery,
    AircallHandlers,
    Outcome,
    handle_aircall_delivery,
    ingest_aircall_batch,
    ingest_authenticated_aircall,
    prepare_aircall_delivery,
)
from whatsapp_helpdesk.native_tickets import contact_company
from whatsapp_helpdesk.native_tickets import tickets as native_tickets
from whatsapp_helpdesk.replies import statuses
from whatsapp_helpdesk.replies.reply import store_outgoing_reply
from whatsapp_helpdesk.spool import Spool, SpoolFull

# HubSpot's custom-channel events, each to the slice it belongs to (wired here, at the edge:
# the inbound slice that keeps the event does not import replies or connect).
HUBSPOT_HANDLERS: Handlers[Services] = {
    "OUTGOING_CHANNEL_MESSAGE_CREATED": store_outgoing_reply,
    "CHANNEL_ACCOUNT_CREATED": on_channel_account_created,
    "CHANNEL_ACCOUNT_UPDATED": on_channel_account_updated,
}
# Aircall's events that other slices handle, wired here too: the live path, the group
# commit and the spool's replay all pass this one table to ingest.
AIRCALL_HANDLERS = AircallHandlers(
    events={
        # Our own replies echoed back (never published, R15) and their statuses (R23).
        "message.sent": statuses.on_message_sent,
        "message.status_updated": statuses.on_status_updated,
        # Missed calls and voicemails: the classic integration's native tickets (R35, R36).
        **dict.fromkeys(CALL_EVENTS, native_tickets.on_call_event),
        # The numbers list follows Aircall's without a refresh (issue 17 item 7).
        **dict.fromkeys(NUMBER_EVENTS, on_number_event),
    },
    sms_received=native_tickets.on_sms,
    company_seen=contact_company.queue_if_new,
)
log = structlog.get_logger(__name__)

# What an unreachable database raises: refused or dropped connections, a pool that cannot
# hand one out, a SQLite file that cannot be opened.
DATABASE_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeoutError)

# How often the digest cache is re-read while the database answers.
DIGEST_REFRESH_SECONDS = 30.0

SPOOLED = Counter("whatsapp_helpdesk_spool_appended_total",
                  "Webhook deliveries written to the spool (database unreachable)", ["source"])
REPLAYED = Counter("whatsapp_helpdesk_spool_replayed_total",
                   "Spooled webhook deliveries replayed into the database", ["source"])
REFUSED = Counter("whatsapp_helpdesk_spool_refused_total",
                  "Deliveries answered 503 while the database was unreachable", ["reason"])
SPOOL_RECORDS = Gauge("whatsapp_helpdesk_spool_records", "Spooled deliveries awaiting replay")
SPOOL_BYTES = Gauge("whatsapp_helpdesk_spool_bytes", "Bytes of the spool awaiting replay")
SPOOL_OLDEST_AGE = Gauge("whatsapp_helpdesk_spool_oldest_age_seconds",
                         "Age of the oldest spooled delivery (0 when none)")


def default_spool_dir(database_url: str) -> Path:
    """A spool belongs to one database: replaying it into another would be wrong."""
    return Path("var") / "spool" / hashlib.sha256(database_url.encode()).hexdigest()[:16]


class WebhookSpool:
    """The web process's spool, digest cache and replay thread."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.services = services
        directory = Path(settings.spool_dir) if settings.spool_dir else default_spool_dir(
            settings.database_url)
        self.spool = Spool(directory, settings.spool_max_bytes)
        self._digests: dict[str, int] = {}
        self._digests_read_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- receiving -----------------------------------------------------------------------

    def receive_aircall(self, body: bytes) -> Outcome:
        try:
            envelope = parse_envelope(body)
        except InvalidAircallPayload:
            envelope = None  # the handler answers 400 without the database
        digest = token_digest(envelope.token) if envelope is not None and envelope.token else ""
        installation_id = self._digests.get(digest) if digest else None
        if installation_id is not None and self.spool.has_backlog():
            return self._spool_aircall(installation_id, body)
        try:
            outcome = handle_aircall_delivery(self.services, AIRCALL_HANDLERS, body)
            if installation_id is None and digest and outcome.status_code != 401:
                # A webhook registered since the last refresh: known before any outage.
                self.refresh_digests()
            return outcome
        except DATABASE_DOWN as exc:
            log.warning("webhook.database_unreachable", source="aircall", error=str(exc)[:200])
            return self._spool_or_refuse(installation_id, body)

    def _spool_or_refuse(self, installation_id: int | None, body: bytes) -> Outcome:
        if installation_id is None:
            REFUSED.labels("unknown_token").inc()
            return Outcome(503, "unavailable", "database unreachable; retry later")
        return self._spool_aircall(installation_id, body)

    def receive_aircall_batch(self, bodies: list[bytes]) -> list[Outcome | Exception]:
        """Deliveries that arrived together (web/ingest_writer.py), answered in order: one
        transaction for all of them when it can, each alone when it cannot, so a delivery
        that fails fails only itself; an exception in the list is that delivery's own."""
        if len(bodies) == 1 or self.spool.has_backlog():
            # Behind a backlog each goes to the spool in arrival order, as one alone would.
            return [self._receive_one(body) for body in bodies]
        prepared = [prepare_aircall_delivery(body) for body in bodies]
        batch = [p for p in prepared if isinstance(p, AircallDelivery)]
        try:
            stored = iter(ingest_aircall_batch(self.services, AIRCALL_HANDLERS, batch))
        except DATABASE_DOWN as exc:
            log.warning("webhook.database_unreachable", source="aircall", error=str(exc)[:200])
            return [self._spool_or_refuse(self._digests.get(p.webhook_digest), body)
                    if isinstance(p, AircallDelivery) else self._receive_one(body)
                    for p, body in zip(prepared, bodies, strict=True)]
        except Exception:
            # Nothing of the batch was kept (one transaction): each is stored alone.
            log.info("aircall.batch_retried_one_by_one", deliveries=len(batch))
            return [self._receive_one(body) for body in bodies]
        outcomes: list[Outcome | Exception] = []
        for p, body in zip(prepared, bodies, strict=True):
            if isinstance(p, Outcome):
                outcomes.append(p)
            elif p is None:
                outcomes.append(self._receive_one(body))
            else:
                outcome = next(stored)
                if outcome.status_code != 401 and p.webhook_digest not in self._digests:
                    # A webhook registered since the last refresh: known before any outage.
                    self.refresh_digests()
                outcomes.append(outcome)
        return outcomes

    def _receive_one(self, body: bytes) -> Outcome | Exception:
        try:
            return self.receive_aircall(body)
        except Exception as exc:  # that delivery's own failure: its request answers 500
            return exc

    def receive_hubspot(self, *, method: str, url: str, raw_body: bytes,
                        timestamp_header: str | None, signature_header: str | None) -> Outcome:
        if self.spool.has_backlog():
            verified = self._hubspot_signature_ok(method, url, raw_body, timestamp_header,
                                                  signature_header)
            if verified:
                return self._append("hubspot", {"source": "hubspot",
                                                "body": raw_body.decode("utf-8", "replace")})
        try:
            return handle_hubspot_delivery(
                self.services, HUBSPOT_HANDLERS, method=method, url=url, raw_body=raw_body,
                timestamp_header=timestamp_header, signature_header=signature_header)
        except DATABASE_DOWN as exc:
            log.warning("webhook.database_unreachable", source="hubspot", error=str(exc)[:200])
            # The handler verifies before it touches the database: reaching here means the
            # signature held, but it is checked again rather than relying on that order.
            if not self._hubspot_signature_ok(method, url, raw_body, timestamp_header,
                                              signature_header):
                return Outcome(401, "unauthorized", "invalid signature")
            return self._append("hubspot", {"source": "hubspot",
                                            "body": raw_body.decode("utf-8", "replace")})

    def _hubspot_signature_ok(self, method: str, url: str, raw_body: bytes,
                              timestamp_header: str | None, signature_header: str | None) -> bool:
        try:
            verify_signature_v3(
                method=method, url=url, raw_body=raw_body, timestamp_header=timestamp_header,
                signature_header=signature_header,
                client_secret=self.services.settings.hubspot_client_secret.get_secret_value(),
                now_ms=int(self.services.clock.now().timestamp() * 1000),
            )
        except InvalidSignature:
            return False
        return True

    def _spool_aircall(self, installation_id: int, body: bytes) -> Outcome:
        envelope = json.loads(body)
        digest = token_digest(envelope.get("token", ""))
        # The token is a secret: never written to disk; the digest names the registration.
        envelope["token"] = ""
        return self._append("aircall", {
            "source": "aircall", "installation_id": installation_id, "webhook_digest": digest,
            "body": json.dumps(envelope, separators=(",", ":")),
        })

    def _append(self, source: str, record: dict[str, Any]) -> Outcome:
        try:
            self.spool.append(record)
        except SpoolFull:
            REFUSED.labels("spool_full").inc()
            log.error("webhook.spool_full", source=source, max_bytes=self.spool.max_bytes)
            return Outcome(503, "spool_full", "database unreachable and spool full")
        SPOOLED.labels(source).inc()
        return Outcome(200, "spooled")

    # --- replay --------------------------------------------------------------------------

    def replay_once(self) -> int:
        """Replay the spool if the database answers; the number of records replayed."""
        if not self.spool.has_backlog():
            return 0
        try:
            with self.services.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DATABASE_DOWN:
            return 0
        replayed = self.spool.replay(self._deliver)
        if replayed:
            log.info("webhook.spool_replayed", records=replayed)
        return replayed

    def _deliver(self, record: dict[str, Any]) -> None:
        body = str(record.get("body", "")).encode("utf-8")
        if record.get("source") == "aircall":
            try:
                envelope = parse_envelope(body)
            except InvalidAircallPayload as exc:
                log.error("webhook.spool_record_invalid", error=str(exc))
                return
            outcome = ingest_authenticated_aircall(
                self.services, AIRCALL_HANDLERS, int(record["installation_id"]),
                str(record["webhook_digest"]), envelope, body.decode("utf-8"))
        else:
            outcome = store_verified_hubspot_body(self.services, HUBSPOT_HANDLERS, body)
        REPLAYED.labels(str(record.get("source"))).inc()
        log.info("webhook.spool_record_replayed", source=record.get("source"),
                 result=outcome.result)

    def refresh_digests(self) -> None:
        with self.services.sessions() as session:
            rows = session.execute(select(
                Installation.aircall_webhook_token_hash, Installation.id
            ).where(Installation.aircall_webhook_token_hash.is_not(None))).all()
        digests = {digest: installation_id for digest, installation_id in rows
                   if digest is not None}
        if digests != self._digests:
            self._save_digests(digests)
        self._digests = digests
        self._digests_read_at = time.monotonic()

    # A web process (re)started while the database is down would know no token and answer
    # every Aircall delivery 503 until Aircall disables the webhook (chaos suite): the cache
    # is kept beside the spool, replaced atomically. Digests of long random tokens are not
    # secrets (docs/security.md); the tokens are never written.
    @property
    def _digests_file(self) -> Path:
        return self.spool.directory / "webhook-digests.json"

    def _save_digests(self, digests: dict[str, int]) -> None:
        try:
            self.spool.directory.mkdir(parents=True, exist_ok=True)
            partial = self._digests_file.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps(digests, sort_keys=True))
            os.replace(partial, self._digests_file)
        except OSError as exc:
            log.warning("webhook.digest_cache_not_saved", error=str(exc))

    def _load_saved_digests(self) -> None:
        try:
            saved = json.loads(self._digests_file.read_text())
        except (OSError, ValueError):
            return
        if isinstance(saved, dict):
            self._digests = {str(k): int(v) for k, v in saved.items()
                             if isinstance(v, int) and not isinstance(v, bool)}

    def tick(self) -> None:
        """One round of the background thread: refresh the cache when due, replay."""
        if time.monotonic() - self._digests_read_at >= DIGEST_REFRESH_SECONDS:
            with contextlib.suppress(*DATABASE_DOWN):
                self.refresh_digests()
        self.replay_once()

    # --- lifecycle and visibility --------------------------------------------------------

    def start(self) -> None:
        try:
            self.refresh_digests()
        except DATABASE_DOWN:
            self._load_saved_digests()
            log.warning("webhook.digest_cache_from_disk", registrations=len(self._digests))
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="spool-replay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = self.services.settings.spool_replay_interval_seconds
        while not self._stop.wait(interval):
            try:
                self.tick()
            except DATABASE_DOWN:
                continue  # gone again mid-replay: resumed from the cursor next round
            except Exception:
                log.exception("webhook.spool_replay_failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.spool.close()

    def health(self) -> dict[str, Any]:
        status = self.spool.status()
        age = 0.0 if status.oldest_spooled_at is None else max(
            0.0, time.time() - status.oldest_spooled_at)
        SPOOL_RECORDS.set(status.records)
        SPOOL_BYTES.set(status.bytes)
        SPOOL_OLDEST_AGE.set(age)
        return {"records": status.records, "bytes": status.bytes,
                "max_bytes": self.spool.max_bytes, "oldest_age_seconds": round(age, 1)}
