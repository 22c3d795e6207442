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

import functools
import json
import random
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Integer,
    Select,
    Table,
    Update,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from whatsapp_helpdesk.db.models import DeliveryAttempt, OutboxEntry
from whatsapp_helpdesk.db.session import READ_ONLY, rows_changed

PENDING = "pending"
DONE = "done"
FAILED = "failed"

# failure_kind of an entry failed because HubSpot's grant was revoked: re-queued after the
# admin re-authorises (connect/reauth.py).
AUTH_REVOKED = "auth_revoked"

LEASE = timedelta(seconds=60)

OUTBOX = cast(Table, OutboxEntry.__table__)
ATTEMPTS = cast(Table, DeliveryAttempt.__table__)

# PostgreSQL: the channel on which a commit that adds claimable work wakes idle workers
# (worker/idle.py listens on it instead of polling).
WAKE_CHANNEL = "whatsapp_helpdesk_outbox"
_WOKEN_IN = "whatsapp_helpdesk_outbox_woken_in"


def wake_workers(connection: Connection) -> None:
    """On PostgreSQL, NOTIFY the idle workers when the caller's transaction commits (not
    at all if it rolls back); once per transaction. Nothing on SQLite, where the idle
    workers watch the file's commits (`PRAGMA data_version`). Sent on the driver's
    connection: no statement of SQLAlchemy's (tests count those)."""
    if connection.dialect.name != "postgresql":
        return
    # The innermost transaction: a savepoint rolled back discards its NOTIFY.
    transaction = connection.get_nested_transaction() or connection.get_transaction()
    if transaction is not None and connection.info.get(_WOKEN_IN) is transaction:
        return
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None  # a live connection has its driver's connection
    driver_connection.execute(f"NOTIFY {WAKE_CHANNEL}").close()
    connection.info[_WOKEN_IN] = transaction


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
    wake_workers(session.connection())
    return entry


@dataclass(frozen=True)
class QueuedWork:
    """One entry of `enqueue_many`: what differs between the entries of one kind."""

    installation_id: int
    message_id: int | None
    ordering_key: str | None
    ordering_at: datetime


def enqueue_many(session: Session, *, kind: str, payload: dict[str, Any],
                 entries: list[QueuedWork], now: datetime, delay: timedelta) -> None:
    """`enqueue` for many entries of one kind and payload in ONE multi-row INSERT, in the
    given order (the ingest drain's batches, issue 17 item 1: the unit of work flushed
    them one INSERT each). Caller's transaction, never commits."""
    if entries:
        wake_workers(session.connection())
        session.connection().execute(OUTBOX.insert(), [{
            "installation_id": entry.installation_id, "kind": kind,
            "message_id": entry.message_id, "payload": json.dumps(payload),
            "ordering_key": entry.ordering_key, "ordering_at": entry.ordering_at,
            "state": PENDING, "attempts": 0, "available_at": now + delay, "created_at": now,
        } for entry in entries])


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
    try:
        due = look(session.connection(execution_options={READ_ONLY: True}), now).due
    finally:
        session.commit()  # ends the read, before the claim's own transaction
    if not due:
        return None
    with session.begin():
        return claim_on(session.connection(), worker_id=worker_id, now=now, lease=lease,
                        after_installation=after_installation,
                        skip_installations=skip_installations)


def claim_on(
    connection: Connection, *, worker_id: str, now: datetime, lease: timedelta = LEASE,
    after_installation: int | None = None, skip_installations: Collection[int] = (),
) -> Claimed | None:
    """`claim` in the caller's transaction (which must be a write transaction: on SQLite
    `BEGIN IMMEDIATE`), without the idle read first: the worker's slot that just finished
    an entry claims the next one at once, the read would only cost a transaction more."""
    statements = _claim_statements(connection.dialect.name == "postgresql")
    query = statements.oldest if after_installation is None else statements.in_turn
    row = connection.execute(query, {
        "now": now, "after": after_installation, "skip": list(skip_installations)}).first()
    if row is None:
        return None
    connection.execute(statements.take, {
        "entry_id": row.id, "worker_id": worker_id, "locked_until": now + lease})
    return Claimed(
        id=row.id,
        installation_id=row.installation_id,
        kind=row.kind,
        message_id=row.message_id,
        payload=json.loads(row.payload or "{}"),
        attempt=row.attempts + 1,
    )


def claim_entry(session: Session, *, entry_id: int, worker_id: str, now: datetime,
                lease: timedelta = LEASE) -> Claimed | None:
    """Take one given entry if it is pending, due and not held; None otherwise (a worker has
    it, or it is done). For work a process runs itself rather than leave to the workers
    (connect/numbers_refresh.py `read_numbers_here`). Caller's transaction."""
    row = session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id == entry_id, OutboxEntry.state == PENDING,
               OutboxEntry.available_at <= now,
               or_(OutboxEntry.locked_until.is_(None), OutboxEntry.locked_until <= now))
        .values(locked_by=worker_id, locked_until=now + lease,
                attempts=OutboxEntry.attempts + 1)
        .returning(OutboxEntry.installation_id, OutboxEntry.kind, OutboxEntry.message_id,
                   OutboxEntry.payload, OutboxEntry.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        return None
    return Claimed(id=entry_id, installation_id=row.installation_id, kind=row.kind,
                   message_id=row.message_id, payload=json.loads(row.payload or "{}"),
                   attempt=row.attempts)


def release(session: Session, *, entry_id: int, worker_id: str) -> None:
    """Give back an entry just claimed and not worked (its rate bucket turned out full):
    claimable again at once, as if never claimed."""
    session.execute(
        _owned(session, entry_id, worker_id).values(
            locked_until=None, attempts=OutboxEntry.attempts - 1)
    )


@dataclass(frozen=True)
class Look:
    """What an idle poll learns. `due`: an entry is due and not held (the claim must look:
    it may still wait for its turn in its conversation). `next_at`: the earliest moment a
    pending entry that is not due now becomes due or its lease ends (None: no such entry):
    until then, only a commit can make work claimable (worker/idle.py waits on that)."""

    due: bool
    next_at: datetime | None


def look(connection: Connection, now: datetime) -> Look:
    """An idle slot's poll, as a plain read of the claim index: no write lock (SQLite's
    BEGIN IMMEDIATE), no row locks, one cheap statement instead of the claim's two (the
    round robin's) with their correlated NOT EXISTS. Idle slots poll several times a second;
    this was most of an idle worker's CPU (docs/performance.md). Runs in the caller's
    transaction (a read-only connection: db/session.py READ_ONLY)."""
    row = connection.execute(_claim_statements(
        connection.dialect.name == "postgresql").look, {"now": now}).one()
    times = [t for t in (row.next_available, row.next_lease_end) if t is not None]
    return Look(due=row.due_id is not None, next_at=min(times) if times else None)


@dataclass(frozen=True)
class _ClaimStatements:
    look: Select[Any]
    oldest: Select[Any]
    in_turn: CompoundSelect[Any]
    take: Update


@functools.cache
def _claim_statements(postgresql: bool) -> _ClaimStatements:
    """The claim's statements, built once per dialect with bound parameters: building the
    statement again for every claim (an alias, a correlated NOT EXISTS, through the ORM) was
    most of the ~6 ms of CPU an empty claim cost (bench/end_to_end.py, docs/performance.md).
    Core rows, not ORM objects: the claim needs six columns and one UPDATE."""
    claimable = _claimable(bindparam("now", type_=OUTBOX.c.available_at.type)).where(
        # Installations whose rate bucket is full for now (pacing at claim time, R44); an
        # empty list skips none.
        OUTBOX.c.installation_id.not_in(bindparam("skip", expanding=True)))
    after = bindparam("after", type_=Integer())
    turn_order = (OUTBOX.c.installation_id, OUTBOX.c.available_at, OUTBOX.c.id)
    queries = [
        claimable.order_by(OUTBOX.c.available_at, OUTBOX.c.id),
        claimable.where(OUTBOX.c.installation_id > after).order_by(*turn_order),
        claimable.where(OUTBOX.c.installation_id <= after).order_by(*turn_order),
    ]
    if postgresql:
        queries = [q.with_for_update(skip_locked=True, of=OUTBOX) for q in queries]
    oldest, next_installation, wrapped_around = (q.limit(1) for q in queries)
    # The round robin's two queries in one statement (a round trip and SQLAlchemy's
    # per-statement work fewer per claim, issue 17 item 3): the next installation's entry,
    # else the first one wrapping around. Both databases run a UNION ALL's parts in order
    # and stop at the outer LIMIT's first row: the second part is not run (nor, on
    # PostgreSQL, does it lock a row) when the first found one. A locking query never runs
    # in parallel on PostgreSQL (FOR UPDATE), so no Parallel Append mixes the order.
    in_turn = union_all(*(select(*q.subquery().c) for q in (next_installation,
                                                            wrapped_around))).limit(1)
    take = (update(OUTBOX).where(OUTBOX.c.id == bindparam("entry_id"))
            .values(locked_by=bindparam("worker_id"), locked_until=bindparam("locked_until"),
                    attempts=OUTBOX.c.attempts + 1))
    now = bindparam("now", type_=OUTBOX.c.available_at.type)
    pending = OUTBOX.c.state == PENDING
    due = select(OUTBOX.c.id).where(
        pending, OUTBOX.c.available_at <= now,
        or_(OUTBOX.c.locked_until.is_(None), OUTBOX.c.locked_until <= now)).limit(1)
    # Both on the claim index's (state, available_at) prefix; the leases' minimum reads the
    # pending entries only, few when the worker is idle.
    next_available = select(func.min(OUTBOX.c.available_at)).where(
        pending, OUTBOX.c.available_at > now)
    next_lease_end = select(func.min(OUTBOX.c.locked_until)).where(
        pending, OUTBOX.c.locked_until > now)
    look = select(due.scalar_subquery().label("due_id"),
                  next_available.scalar_subquery().label("next_available"),
                  next_lease_end.scalar_subquery().label("next_lease_end"))
    return _ClaimStatements(look, oldest, in_turn, take)


def _claimable(now: Any) -> Select[Any]:
    """Entries that may run now: pending, due, not held, first of their conversation."""
    entry, other = OUTBOX, OUTBOX.alias("other")
    comes_before = or_(
        other.c.ordering_at < entry.c.ordering_at,
        and_(other.c.ordering_at == entry.c.ordering_at, other.c.id < entry.c.id),
    )
    blocked_by_conversation = exists().where(
        other.c.ordering_key == entry.c.ordering_key,
        other.c.id != entry.c.id,
        or_(
            and_(other.c.state == PENDING, or_(comes_before, other.c.locked_until > now)),
            # Waiting for the admin to re-authorise: it will be re-queued, so it holds back
            # its successors like an entry waiting for a retry (decision 0006).
            and_(other.c.state == FAILED, other.c.failure_kind == AUTH_REVOKED, comes_before),
        ),
    )
    return select(entry.c.id, entry.c.installation_id, entry.c.kind, entry.c.message_id,
                  entry.c.payload, entry.c.attempts).where(
        entry.c.state == PENDING,
        entry.c.available_at <= now,
        or_(entry.c.locked_until.is_(None), entry.c.locked_until <= now),
        or_(entry.c.ordering_key.is_(None), ~blocked_by_conversation),
    )


# A job's last database writes, run in the transaction that marks its entry done (the
# worker's `_finish`) instead of one of their own: a transaction and a thread hop fewer per
# job (issue 17 item 3). Set by the worker around each job; outside one (a flow called
# directly, a test) there is no list and the writes run at once.
CompletionStep = Callable[[Connection], None]
_COMPLETION_STEPS: ContextVar[list[CompletionStep] | None] = ContextVar(
    "outbox_completion_steps", default=None)


@contextmanager
def completion_steps() -> Iterator[list[CompletionStep]]:
    """Around one job (the worker's): the steps its handler leaves for the completion."""
    steps: list[CompletionStep] = []
    token = _COMPLETION_STEPS.set(steps)
    try:
        yield steps
    finally:
        _COMPLETION_STEPS.reset(token)


def with_completion(step: CompletionStep) -> bool:
    """Leave `step` to the transaction that completes the running job's entry, in which it
    commits with the entry's DONE or not at all (a retry of the job does it again, so the
    step must be the job's last and idempotent). False outside a worker's job: the caller
    runs it in a transaction of its own."""
    steps = _COMPLETION_STEPS.get()
    if steps is None:
        return False
    steps.append(step)
    return True


def record_attempt_on(
    connection: Connection,
    *,
    outbox_id: int,
    attempt: int,
    started_at: datetime,
    duration_ms: int,
    outcome: str,
    http_status: int | None = None,
    detail: str | None = None,
) -> None:
    """One row of the delivery log, in the caller's transaction (`session.connection()` for a
    Session's). Core: the ORM's unit of work for one append-only row cost more CPU than the
    delivery's own statements (bench/end_to_end.py)."""
    connection.execute(_RECORD_ATTEMPT, {
        "outbox_id": outbox_id, "attempt": attempt, "started_at": started_at,
        "duration_ms": duration_ms, "outcome": outcome, "http_status": http_status,
        "detail": detail,
    })


_RECORD_ATTEMPT = ATTEMPTS.insert()


def _owned(session: Session, entry_id: int, worker_id: str) -> Any:
    # Only the lease holder may finish an entry: a worker that overran its lease must not
    # overwrite the outcome of the worker that took over.
    return update(OutboxEntry).where(OutboxEntry.id == entry_id, OutboxEntry.locked_by == worker_id)


@functools.cache
def _complete_statement() -> Update:
    # Built once, on the table (not the ORM entity: no identity-map synchronisation).
    return (update(OUTBOX)
            .where(OUTBOX.c.id == bindparam("entry_id"),
                   OUTBOX.c.locked_by == bindparam("worker_id"))
            .values(state=DONE, finished_at=bindparam("now"), locked_until=None,
                    last_error=None, retrying_since=None))


def complete(session: Session, *, entry_id: int, worker_id: str, now: datetime) -> None:
    complete_on(session.connection(), entry_id=entry_id, worker_id=worker_id, now=now)


def complete_on(connection: Connection, *, entry_id: int, worker_id: str, now: datetime) -> None:
    # Only the lease holder may finish an entry (see _owned).
    connection.execute(_complete_statement(), {
        "entry_id": entry_id, "worker_id": worker_id, "now": now})


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
    changed = bool(rows_changed(result))
    if changed:
        wake_workers(session.connection())
    return changed


def backoff(attempt: int, *, base: float = 1.0, cap: float = 300.0) -> timedelta:
    """Exponential backoff with full jitter (attempt 1 → up to 1 s, 2 → 2 s, … ≤ cap)."""
    # Attempts are no longer bounded (rate-limited ones count too): bound the exponent, or
    # 2 ** 1024 overflows a float.
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), 32))
    return timedelta(seconds=max(0.2, random.uniform(ceiling / 2, ceiling)))
