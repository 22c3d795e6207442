"""The transactional outbox: work written with its message, drained by workers.

Claiming is one short transaction. On PostgreSQL `FOR UPDATE SKIP LOCKED` lets many
workers claim side by side; on SQLite `BEGIN IMMEDIATE` (db/session.py) serialises claims.
A claim is a lease (`locked_until`): a worker killed mid-job loses its lease and another
worker takes the entry again, so nothing is lost; the deliveries themselves are made
idempotent (HubSpot's idempotency id, our own sent-id records), so nothing is duplicated.

Per-conversation order (R15, decision 0006): an entry is claimable only when no other
unfinished entry of the same `ordering_key` comes before it (nor one that failed for want of
a HubSpot grant, which is re-queued after re-authorisation), and none of them is being
worked right now.
"""

from __future__ import annotations

import json
import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from whatsapp_helpdesk.db.models import DeliveryAttempt, OutboxEntry
from whatsapp_helpdesk.db.session import rows_changed

PENDING = "pending"
DONE = "done"
FAILED = "failed"

# failure_kind of an entry failed because HubSpot's grant was revoked: re-queued after the
# admin re-authorises (connect/reauth.py).
AUTH_REVOKED = "auth_revoked"

LEASE = timedelta(seconds=60)


def enqueue(
    session: Session,
    *,
    installation_id: int,
    kind: str,
    now: datetime,
    message_id: int | None = None,
    payload: dict[str, Any] | None = None,
    ordering_key: str | None = None,
    ordering_at: datetime | None = None,
    delay: timedelta = timedelta(0),
) -> OutboxEntry:
    """Add work in the caller's transaction (never commits)."""
    entry = OutboxEntry(
        installation_id=installation_id,
        kind=kind,
        message_id=message_id,
        payload=json.dumps(payload or {}),
        ordering_key=ordering_key,
        ordering_at=ordering_at or now,
        state=PENDING,
        attempts=0,
        available_at=now + delay,
        created_at=now,
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class Claimed:
    id: int
    installation_id: int
    kind: str
    message_id: int | None
    payload: dict[str, Any]
    attempt: int


def claim(
    session: Session, *, worker_id: str, now: datetime, lease: timedelta = LEASE,
    after_installation: int | None = None, skip_installations: Collection[int] = (),
) -> Claimed | None:
    """Take the next entry that may run now, or None. Commits its own transaction.

    With `after_installation` (the installation this worker served last) installations are
    served round-robin (R44): the oldest entry of the next installation in id order that
    has work, wrapping around, so one busy portal does not starve the others. Without it,
    the oldest entry overall. `skip_installations`: none of theirs (their rate bucket is
    full for now, worker/runner.py)."""
    claimable = _claimable(now)
    if skip_installations:
        claimable = claimable.where(OutboxEntry.installation_id.not_in(skip_installations))
    if after_installation is None:
        queries = [claimable.order_by(OutboxEntry.available_at, OutboxEntry.id)]
    else:
        in_turn = (OutboxEntry.installation_id, OutboxEntry.available_at, OutboxEntry.id)
        queries = [
            claimable.where(OutboxEntry.installation_id > after_installation).order_by(*in_turn),
            claimable.where(OutboxEntry.installation_id <= after_installation).order_by(*in_turn),
        ]
    if session.get_bind().dialect.name == "postgresql":
        queries = [q.with_for_update(skip_locked=True, of=OutboxEntry) for q in queries]
    with session.begin():
        entry = None
        for query in queries:
            entry = session.scalars(query.limit(1)).first()
            if entry is not None:
                break
        if entry is None:
            return None
        entry.locked_by = worker_id
        entry.locked_until = now + lease
        entry.attempts += 1
        return Claimed(
            id=entry.id,
            installation_id=entry.installation_id,
            kind=entry.kind,
            message_id=entry.message_id,
            payload=json.loads(entry.payload or "{}"),
            attempt=entry.attempts,
        )


def release(session: Session, *, entry_id: int, worker_id: str) -> None:
    """Give back an entry just claimed and not worked (its rate bucket turned out full):
    claimable again at once, as if never claimed."""
    session.execute(
        _owned(session, entry_id, worker_id).values(
            locked_until=None, attempts=OutboxEntry.attempts - 1)
    )


def _claimable(now: datetime) -> Select[OutboxEntry]:
    """Entries that may run now: pending, due, not held, first of their conversation."""
    other = aliased(OutboxEntry)
    comes_before = or_(
        other.ordering_at < OutboxEntry.ordering_at,
        and_(other.ordering_at == OutboxEntry.ordering_at, other.id < OutboxEntry.id),
    )
    blocked_by_conversation = exists().where(
        other.ordering_key == OutboxEntry.ordering_key,
        other.id != OutboxEntry.id,
        or_(
            and_(other.state == PENDING, or_(comes_before, other.locked_until > now)),
            # Waiting for the admin to re-authorise: it will be re-queued, so it holds back
            # its successors like an entry waiting for a retry (decision 0006).
            and_(other.state == FAILED, other.failure_kind == AUTH_REVOKED, comes_before),
        ),
    )
    return select(OutboxEntry).where(
        OutboxEntry.state == PENDING,
        OutboxEntry.available_at <= now,
        or_(OutboxEntry.locked_until.is_(None), OutboxEntry.locked_until <= now),
        or_(OutboxEntry.ordering_key.is_(None), ~blocked_by_conversation),
    )


def record_attempt(
    session: Session,
    *,
    outbox_id: int,
    attempt: int,
    started_at: datetime,
    duration_ms: int,
    outcome: str,
    http_status: int | None = None,
    detail: str | None = None,
) -> None:
    session.add(
        DeliveryAttempt(
            outbox_id=outbox_id,
            attempt=attempt,
            started_at=started_at,
            duration_ms=duration_ms,
            outcome=outcome,
            http_status=http_status,
            detail=detail,
        )
    )


def _owned(session: Session, entry_id: int, worker_id: str) -> Any:
    # Only the lease holder may finish an entry: a worker that overran its lease must not
    # overwrite the outcome of the worker that took over.
    return update(OutboxEntry).where(OutboxEntry.id == entry_id, OutboxEntry.locked_by == worker_id)


def complete(session: Session, *, entry_id: int, worker_id: str, now: datetime) -> None:
    session.execute(
        _owned(session, entry_id, worker_id).values(
            state=DONE, finished_at=now, locked_until=None, last_error=None,
            retrying_since=None,
        )
    )


def retry_later(
    session: Session, *, entry_id: int, worker_id: str, now: datetime, delay: timedelta, error: str,
    retrying_since: datetime | None = None,
) -> None:
    session.execute(
        _owned(session, entry_id, worker_id).values(
            available_at=now + delay, locked_until=None, last_error=error,
            retrying_since=retrying_since,
        )
    )


def fail(
    session: Session, *, entry_id: int, worker_id: str, now: datetime, error: str,
    failure_kind: str | None = None,
) -> None:
    session.execute(
        _owned(session, entry_id, worker_id).values(
            state=FAILED, finished_at=now, locked_until=None, last_error=error,
            failure_kind=failure_kind,
        )
    )


def requeue(session: Session, *, entry_id: int, installation_id: int, now: datetime) -> bool:
    """An admin's "retry" on a failed delivery (R9, R44): run it again from scratch."""
    result = session.execute(
        update(OutboxEntry)
        .where(
            OutboxEntry.id == entry_id,
            OutboxEntry.installation_id == installation_id,
            OutboxEntry.state == FAILED,
        )
        .values(state=PENDING, attempts=0, available_at=now, finished_at=None, locked_by=None,
                retrying_since=None, failure_kind=None)
    )
    return bool(rows_changed(result))


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> timedelta:
    """Exponential backoff with full jitter (attempt 1 → up to 1 s, 2 → 2 s, … ≤ cap)."""
    # Attempts are no longer bounded (rate-limited ones count too): bound the exponent, or
    # 2 ** 1024 overflows a float.
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), 32))
    return timedelta(seconds=max(0.2, random.uniform(ceiling / 2, ceiling)))
