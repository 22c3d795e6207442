"""Raw webhook payloads are kept WEBHOOK_PAYLOAD_RETENTION_DAYS, then emptied (issue 17
item 8): they were 60-65 % of the bytes per message, kept forever.

The payload is emptied, the row kept: its (source, scope, dedupe_key) is what makes a late
redelivery a duplicate (R11), and its outcome stays for the record. Only the payload's text
goes, so what remains is a couple of hundred bytes per event.

Outbox entries done before the same period go too, with their delivery attempts (about a
third of what is left per message once the payload is gone); failed ones stay.

Runs in the worker every PRUNE_INTERVAL; with several workers the one that moves the shared
"next prune" time forward does it (the same turn-taking as the webhook check, R53). Work goes
in id order from a watermark kept in `service_state`, in short batches: each run reads only
the rows received since the last one (by primary key, no scan and no extra index), and a
batch holds SQLite's write lock for milliseconds, not for the whole backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

import structlog
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import NATIVE_TICKET
from whatsapp_helpdesk.db.models import DeliveryAttempt, OutboxEntry, ServiceState, WebhookEvent
from whatsapp_helpdesk.db.session import rows_changed
from whatsapp_helpdesk.operations.webhook_health import claim_check_turn

log = structlog.get_logger(__name__)

NEXT_PRUNE_KEY: Final = "webhook_payload_prune_next_at"
WATERMARK_KEY: Final = "webhook_payload_pruned_through_id"
OUTBOX_WATERMARK_KEY: Final = "outbox_done_pruned_through_id"
# Done native-ticket jobs are the dashboard's count of native tickets made (R35): kept.
KEPT_DONE_KINDS: Final = frozenset({NATIVE_TICKET})
PRUNE_INTERVAL: Final = timedelta(hours=1)
BATCH_SIZE: Final = 2000


def claim_prune_turn(services: Services, interval: timedelta = PRUNE_INTERVAL) -> bool:
    """Whether this worker prunes now (one worker per interval, coordinated in the database)."""
    return claim_check_turn(services, interval, key=NEXT_PRUNE_KEY)


def prune_webhook_payloads(services: Services, *, batch_size: int = BATCH_SIZE) -> int:
    """Empty the payloads received before the retention period; how many were emptied.

    A row received out of id order (a spooled delivery replayed late keeps its first
    receipt time) waits for the watermark to reach it: pruned late, never early."""
    return _sweep(services, WATERMARK_KEY, batch_size, _empty_payloads)


def _empty_payloads(session: Session, through: int, cutoff: datetime, batch_size: int
                    ) -> tuple[int, list[int], int]:
    rows = session.execute(
        select(WebhookEvent.id, WebhookEvent.received_at)
        .where(WebhookEvent.id > through)
        .order_by(WebhookEvent.id)
        .limit(batch_size)
    ).all()
    due = []
    for row_id, received_at in rows:
        if received_at >= cutoff:
            break
        due.append(row_id)
    if not due:
        return len(rows), due, 0
    result = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id > through, WebhookEvent.id <= due[-1],
               WebhookEvent.payload != "")
        .values(payload="")
    )
    return len(rows), due, rows_changed(result)


def prune_done_entries(services: Services, *, batch_size: int = BATCH_SIZE) -> int:
    """Delete outbox entries done before the retention period, with their attempts; how
    many. Their work is finished and nothing reads them again; failed and pending entries
    stay (the dashboard shows failures, R9), and so do KEPT_DONE_KINDS."""
    return _sweep(services, OUTBOX_WATERMARK_KEY, batch_size, _delete_done_entries)


def _delete_done_entries(session: Session, through: int, cutoff: datetime, batch_size: int
                         ) -> tuple[int, list[int], int]:
    rows = session.execute(
        select(OutboxEntry.id, OutboxEntry.created_at, OutboxEntry.state,
               OutboxEntry.kind, OutboxEntry.finished_at)
        .where(OutboxEntry.id > through)
        .order_by(OutboxEntry.id)
        .limit(batch_size)
    ).all()
    passed: list[int] = []
    doomed: list[int] = []
    for row_id, created_at, state, kind, finished_at in rows:
        if created_at >= cutoff:
            break  # still young: the watermark waits here
        # An old entry still pending or failed is passed over and kept: one stuck
        # entry must not hold every later one back.
        passed.append(row_id)
        if (state == outbox.DONE and kind not in KEPT_DONE_KINDS
                and finished_at is not None and finished_at < cutoff):
            doomed.append(row_id)
    if doomed:
        session.execute(delete(DeliveryAttempt)
                        .where(DeliveryAttempt.outbox_id.in_(doomed)))
        session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(doomed)))
    return len(rows), passed, len(doomed)


# One batch: (rows read past the watermark, the ids the watermark moves past, rows changed).
Batch = Callable[[Session, int, datetime, int], tuple[int, list[int], int]]


def _sweep(services: Services, watermark_key: str, batch_size: int, batch: Batch) -> int:
    """Run `batch` from the watermark kept under `watermark_key`, one transaction per batch,
    until it reaches rows too young to go; how many rows the batches changed."""
    cutoff = services.clock.now() - timedelta(
        days=services.settings.webhook_payload_retention_days)
    changed = 0
    while True:
        with services.sessions.begin() as session:
            mark = session.get(ServiceState, watermark_key)
            through = int(mark.value) if mark is not None else 0
            read, passed, batch_changed = batch(session, through, cutoff, batch_size)
            if not passed:
                return changed
            changed += batch_changed
            if mark is None:
                session.add(ServiceState(key=watermark_key, value=str(passed[-1])))
            else:
                mark.value = str(passed[-1])
        if len(passed) < read or read < batch_size:
            return changed


async def run_periodically(services: Services, stopping: asyncio.Event,
                           interval: timedelta = PRUNE_INTERVAL) -> None:
    """The worker's scheduled pruning, one worker per interval."""
    while not stopping.is_set():
        try:
            if await asyncio.to_thread(claim_prune_turn, services, interval):
                pruned = await asyncio.to_thread(prune_webhook_payloads, services)
                done = await asyncio.to_thread(prune_done_entries, services)
                if pruned or done:
                    log.info("retention.pruned", payloads=pruned, done_entries=done)
        except Exception:
            # A database hiccup must not stop the worker; the next round tries again.
            log.exception("webhook_payloads.prune_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(),
                                   timeout=min(interval.total_seconds(), 60.0))
