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

The fast ingest path (issue 17 items 1, 2; docs/decisions/0011-spool-first-ingest.md) uses the
same spool while the database answers: an inbound WhatsApp message for a connected number,
from a registration the cache knows, is spooled (group fsync, web/ingest_writer.py) and
acknowledged at once; the drain thread stores the spool in the database in batches, one
transaction each, continuously. Every other delivery takes the direct path as before.
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

import orjson
import structlog
from prometheus_client import Counter, Gauge
from sqlalchemy import select, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from whatsapp_helpdesk.aircall import (
    InvalidAircallPayload,
    MessageEvent,
    parse_envelope,
    parse_event,
    token_digest,
)
from whatsapp_helpdesk.aircall.payloads import CALL_EVENTS, NUMBER_EVENTS
from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.channel_accounts import (
    on_channel_account_created,
    on_channel_account_updated,
)
from whatsapp_helpdesk.connect.numbers_refresh import on_number_event
from whatsapp_helpdesk.db.models import ChannelAccount, Installation, Number
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
from whatsapp_helpdesk.spool import Spool, SpooledRecord, SpoolFull
from whatsapp_helpdesk.web.webhook_intake import BATCH_SIZE

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
# How often, at most, a delivery the fast path did not know (a number connected since the
# last refresh) re-reads the caches.
CACHE_MISS_REFRESH_SECONDS = 1.0
# Spooled deliveries stored per transaction by the drain: one commit (and fsync) shared,
# short enough (tens of ms of Python) that the drain soon checks for acknowledgements again.
DRAIN_BATCH = 32
# The drain and the acknowledgements share the web process's GIL (and, usually, a core):
# while fast-path requests are in flight, or one arrived or was answered within
# ACK_QUIET_SECONDS (a client sends its next one right after an answer), the drain
# leaves the process to the acknowledgements, so that a burst is absorbed at the full
# acknowledgement rate; it drains when they pause, when the oldest waiting delivery is
# DRAIN_MAX_LAG_SECONDS old (a message is never held back longer by a burst), or when the
# backlog passes half its bound.
ACK_QUIET_SECONDS = 0.02
DRAIN_MAX_LAG_SECONDS = 5.0
# How long a fast-path acknowledgement waits for the drain to make room under the backlog
# bound before it answers 503 (Aircall retries).
BACKLOG_WAIT_SECONDS = 10.0

SPOOLED = Counter("whatsapp_helpdesk_spool_appended_total",
                  "Webhook deliveries written to the spool (database unreachable, or the fast "
                  "ingest path)", ["source"])
REPLAYED = Counter("whatsapp_helpdesk_spool_replayed_total",
                   "Spooled webhook deliveries replayed into the database", ["source"])
REFUSED = Counter("whatsapp_helpdesk_spool_refused_total",
                  "Deliveries answered 503 while the database was unreachable", ["reason"])
SPOOL_RECORDS = Gauge("whatsapp_helpdesk_spool_records", "Spooled deliveries awaiting replay")
SPOOL_BYTES = Gauge("whatsapp_helpdesk_spool_bytes", "Bytes of the spool awaiting replay")
DRAIN_CPU = Counter("whatsapp_helpdesk_spool_drain_cpu_seconds",
                    "CPU time the drain thread spent storing spooled deliveries (its own "
                    "thread's, not the acknowledgements')")
SPOOL_OLDEST_AGE = Gauge("whatsapp_helpdesk_spool_oldest_age_seconds",
                         "Age of the oldest spooled delivery (0 when none)")


def aircall_payload(installation_id: int, digest: str, envelope_json: bytes) -> bytes:
    """The record `WebhookSpool._aircall_record` makes (what `encode_payload` writes: the same
    keys, sorted, compact), built without the dict and its sorted dump: the fast path's one
    serialisation per delivery. `envelope_json` is the delivery's JSON with its token
    already blanked. orjson, not json: a fifth of the acknowledgement's own CPU was these
    dumps and the parse (issue 17 item 1); the one difference in the bytes is that text
    beyond ASCII stays UTF-8 instead of a \\u escape, which the drain reads alike
    (tests/web pins the two records equal as JSON, and byte for byte for ASCII)."""
    return b'{"body":%s,"installation_id":%d,"source":"aircall","webhook_digest":%s}' % (
        orjson.dumps(envelope_json.decode()), installation_id, orjson.dumps(digest))


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
        # (installation id, Aircall number id) of the numbers with a live channel account:
        # the fast path spools only their inbound messages.
        self._connected_numbers: frozenset[tuple[int, str]] = frozenset()
        self._stop = threading.Event()
        self._wake = threading.Event()  # a fast-path append: the drain starts at once
        self.database_down = False  # as the last replay round found it
        # Monotonic time a fast-path request last arrived or was answered.
        self.last_fast_activity = float("-inf")
        self.acks_in_flight = 0  # fast-path requests not answered yet (event loop's count)
        self.backlog_max_records = settings.spool_backlog_max_records
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
                else:
                    self._note_direct_outcome(p, outcome)
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
        digest = token_digest(json.loads(body).get("token", ""))
        return self._append("aircall", self._aircall_record(installation_id, digest, body))

    @staticmethod
    def _aircall_record(installation_id: int, digest: str, body: bytes) -> dict[str, Any]:
        envelope = json.loads(body)
        # The token is a secret: never written to disk; the digest names the registration.
        envelope["token"] = ""
        return {"source": "aircall", "installation_id": installation_id,
                "webhook_digest": digest, "body": json.dumps(envelope, separators=(",", ":"))}

    def _append(self, source: str, record: dict[str, Any]) -> Outcome:
        try:
            self.spool.append(record)
        except SpoolFull:
            REFUSED.labels("spool_full").inc()
            log.error("webhook.spool_full", source=source, max_bytes=self.spool.max_bytes)
            return Outcome(503, "spool_full", "database unreachable and spool full")
        SPOOLED.labels(source).inc()
        return Outcome(200, "spooled")

    # --- the fast path (decision 0011) ----------------------------------------------------

    def fast_path_record(self, body: bytes) -> bytes | None:
        """The spool record (its payload, encoded) of a delivery the fast path acknowledges
        once spooled: JSON naming an inbound WhatsApp `message.received`, for a number with a
        live channel account, from a webhook registration the cache knows (R42). None for
        anything else, which the direct path answers as before (401, 4xx, other events,
        numbers not connected); None too while no drain runs (an app served without its
        lifespan), which would leave it spooled.

        Only what decides that is read here: the event's validation (the envelope, the
        typed message, the input limits of R43) is the drain's, which parses every record
        anyway; an authenticated delivery the drain finds invalid is recorded "invalid"
        there, as the direct path records it (decision 0011)."""
        if self._thread is None:
            return None
        try:
            envelope = orjson.loads(body)
        except orjson.JSONDecodeError:
            # Not JSON, not UTF-8, a lone surrogate, a number past 64 bits, nesting past
            # orjson's bound: the direct path answers it (json's parse, R43's limits).
            return None
        if type(envelope) is not dict or envelope.get("event") != "message.received":
            return None
        token, data = envelope.get("token"), envelope.get("data")
        if type(token) is not str or not token or type(data) is not dict:
            return None
        try:
            digest = token_digest(token)
        except UnicodeEncodeError:  # a lone surrogate: never a token we issued
            return None
        installation_id = self._digests.get(digest)
        if installation_id is None:
            return None
        # As the typed event reads them (AircallMessage.is_whatsapp, MessageEvent.number_id);
        # any other shape goes to the direct path, whose answer is then the one it gave.
        channel, number = data.get("channel"), data.get("number")
        number_id = number.get("id") if type(number) is dict else None
        if (data.get("direction") != "inbound" or type(channel) is not str
                or channel.lower() != "whatsapp" or type(number_id) not in (int, str)
                or (installation_id, str(number_id)) not in self._connected_numbers):
            return None
        self.last_fast_activity = time.monotonic()
        envelope["token"] = ""  # a secret: never on disk; the digest names the registration
        return aircall_payload(installation_id, digest, orjson.dumps(envelope))

    def append_fast(self, records: list[bytes]) -> Outcome:
        """Spool deliveries that arrived together with one fsync; the answer for all of
        them. Beyond the backlog bound the answer waits for the drain to make room (the
        acknowledgements slow down to the database's pace), then is 503 so Aircall retries."""
        if not self.spool.wait_for_room(self.backlog_max_records, BACKLOG_WAIT_SECONDS):
            REFUSED.labels("backlog").inc(len(records))
            log.warning("webhook.spool_backlog_full", records=self.spool.unreplayed(),
                        bound=self.backlog_max_records)
            return Outcome(503, "busy", "ingest backlog full; retry later")
        try:
            self.spool.append_encoded(records)
        except SpoolFull:
            REFUSED.labels("spool_full").inc(len(records))
            log.error("webhook.spool_full", source="aircall", max_bytes=self.spool.max_bytes)
            return Outcome(503, "spool_full", "spool full; retry later")
        SPOOLED.labels("aircall").inc(len(records))
        self._wake.set()
        return Outcome(200, "spooled")

    def _note_direct_outcome(self, delivery: AircallDelivery, outcome: Outcome) -> None:
        """A message the direct path stored for a number the fast path did not know (just
        connected): the caches are re-read, at most once a second, so the next ones go fast."""
        if outcome.result != "stored" or delivery.envelope.event != "message.received":
            return
        if time.monotonic() - self._digests_read_at < CACHE_MISS_REFRESH_SECONDS:
            return
        event = delivery.event
        installation_id = self._digests.get(delivery.webhook_digest)
        if isinstance(event, MessageEvent) and (
                installation_id, str(event.number_id)) not in self._connected_numbers:
            self.refresh_digests()

    # --- replay --------------------------------------------------------------------------

    def replay_once(self) -> int:
        """Replay the spool if the database answers; the number of records replayed."""
        if not self.spool.has_backlog():
            return 0
        try:
            with self.services.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except DATABASE_DOWN:
            self.database_down = True
            return 0
        self.database_down = False
        replayed = self.spool.replay_batches(self._deliver_batch, DRAIN_BATCH)
        if replayed:
            log.info("webhook.spool_replayed", records=replayed)
        return replayed

    def _deliver_batch(self, records: list[SpooledRecord]) -> None:
        """Consecutive records, in order: each run of Aircall deliveries that parse is stored
        in ONE transaction (ingest_aircall_batch), anything else alone. Raises when the
        database is down (nothing of the batch counts as replayed then)."""
        self._yield_to_acknowledgements(records[0].spooled_at)
        run: list[AircallDelivery] = []
        for record in records:
            delivery = self._spooled_delivery(record.payload)
            if delivery is not None:
                run.append(delivery)
                continue
            self._store_run(run)
            run = []
            self._deliver(record.payload)
        self._store_run(run)

    def _yield_to_acknowledgements(self, oldest_spooled_at: float) -> None:
        while ((self.acks_in_flight > 0
                or time.monotonic() - self.last_fast_activity < ACK_QUIET_SECONDS)
               and time.time() - oldest_spooled_at < DRAIN_MAX_LAG_SECONDS
               and self.spool.unreplayed() < self.backlog_max_records // 2
               and not self._stop.wait(ACK_QUIET_SECONDS)):
            continue

    def _spooled_delivery(self, record: dict[str, Any]) -> AircallDelivery | None:
        if record.get("source") != "aircall":
            return None
        body = str(record.get("body", ""))
        try:
            envelope = parse_envelope(body.encode("utf-8"))
            event = parse_event(envelope)
        except InvalidAircallPayload:
            return None  # recorded "invalid" by the one-by-one path
        return AircallDelivery(int(record["installation_id"]), str(record["webhook_digest"]),
                               envelope, event, body)

    def _store_run(self, run: list[AircallDelivery]) -> None:
        if not run:
            return
        BATCH_SIZE.observe(len(run))
        started = time.thread_time()
        try:
            ingest_aircall_batch(self.services, AIRCALL_HANDLERS, run)
        except DATABASE_DOWN:
            raise
        except Exception:
            # Nothing of the run was kept (one transaction): each alone, so that one failing
            # delivery (a copy racing on a unique constraint) fails only itself.
            log.info("webhook.spool_run_replayed_one_by_one", deliveries=len(run))
            for delivery in run:
                ingest_authenticated_aircall(
                    self.services, AIRCALL_HANDLERS, int(delivery.installation_id or 0),
                    delivery.webhook_digest, delivery.envelope, delivery.payload_text)
        finally:
            DRAIN_CPU.inc(time.thread_time() - started)
        REPLAYED.labels("aircall").inc(len(run))

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
            connected = session.execute(
                select(Number.installation_id, Number.aircall_number_id)
                .join(ChannelAccount, ChannelAccount.number_id == Number.id)
                .where(ChannelAccount.disconnected_at.is_(None))).all()
        self._connected_numbers = frozenset(
            (installation_id, str(aircall_number_id))
            for installation_id, aircall_number_id in connected)
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

    def tick(self) -> int:
        """One round of the background thread: refresh the cache when due, replay; the
        number of records replayed."""
        if time.monotonic() - self._digests_read_at >= DIGEST_REFRESH_SECONDS:
            with contextlib.suppress(*DATABASE_DOWN):
                self.refresh_digests()
        return self.replay_once()

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
        database_down = False
        while not self._stop.is_set():
            if database_down:
                # Not woken by each append meanwhile: the database is tried once a round.
                self._stop.wait(interval)
            else:
                self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
                database_down = self.database_down
            except DATABASE_DOWN:
                database_down = True  # gone mid-replay: resumed from the cursor next round
            except Exception:
                log.exception("webhook.spool_replay_failed")

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
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
