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
    Connection,
    Integer,
    Select,
    String,
    Table,
    Update,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
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
    ordering_key: str | None  # one key's entries run one at a time, by ordering_at (R15)
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
    statements = _claim_statements(connection.dialect.name == "postgresql",
                                   skipping=bool(skip_installations))
    parameters: dict[str, Any] = {"now": now, "after": after_installation}
    if skip_installations:
        parameters["skip"] = list(skip_installations)
    row = connection.execute(statements.oldest if after_installation is None
                             else statements.in_turn, parameters).first()
    if row is None:
        # The first candidates were all held back: each conversation's head (see
        # `_claim_statements`).
        row = connection.execute(statements.oldest_of_heads if after_installation is None
                                 else statements.in_turn_of_heads, parameters).first()
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
    in_turn: Select[Any]
    # When the first candidates in claim order are all held back (`_CANDIDATES`): the
    # conversations' heads instead, found by index whatever the backlog's depth.
    oldest_of_heads: Select[Any]
    in_turn_of_heads: Select[Any]
    take: Update


# How many entries in claim order the claim looks at first. Under a backlog most entries
# wait for their conversation's head; only when these few are all held back (their heads
# are being worked, e.g. one deep conversation) does the claim look at the heads instead.
# Each costs three index probes (the outer query checks them all before its sort): 32 cost
# SQLite 4,000 VM steps, more than the old claim under a backlog of many conversations.
_CANDIDATES = 8

# The state as a literal, not a bound parameter: the partial index `ix_outbox_queue` (state =
# 'pending') serves a query only when its planner sees that value (PostgreSQL's generic
# plans of prepared statements), and SQLite, matching a bound value against a partial
# index's condition, makes the statement depend on it: prepared again at every execution
# (0.4-0.5 ms of CPU per claim for the claim's statement).
_PENDING = literal_column("'pending'", String())


@functools.cache
def _claim_statements(postgresql: bool, skipping: bool = False) -> _ClaimStatements:
    """The claim's statements, built once per dialect with bound parameters: building the
    statement again for every claim (an alias, a correlated NOT EXISTS, through the ORM) was
    most of the ~6 ms of CPU an empty claim cost (bench/end_to_end.py, docs/performance.md).
    Core rows, not ORM objects: the claim needs six columns and one UPDATE.

    The conversation rule (R15) is checked on few candidates, each by index probes (issue
    17 item 2): it used to be a NOT EXISTS evaluated for every pending entry, each reading
    its whole conversation, so that under a backlog thousands deep a claim read millions of
    rows (4.4 s for one claim with 5,000 entries in one conversation whose head was worked).
    First the `_CANDIDATES` oldest due entries (in turn); if none of them may run, the head
    of every conversation with pending work (one probe per conversation, skipping from key
    to key in `ix_outbox_queue`) and the entries without a conversation."""
    now = bindparam("now", type_=OUTBOX.c.available_at.type)
    after = bindparam("after", type_=Integer())
    entry = OUTBOX
    # Pending, due, not held; not of an installation whose rate bucket is full for now
    # (pacing at claim time, R44; an empty list skips none).
    due_and_free = (
        entry.c.available_at <= now,
        or_(entry.c.locked_until.is_(None), entry.c.locked_until <= now),
        # Without installations to skip (most claims) no `NOT IN` at all: an expanding
        # parameter makes SQLAlchemy rewrite the statement's text at every execution.
        *([entry.c.installation_id.not_in(bindparam("skip", expanding=True))]
          if skipping else []))
    runnable = and_(entry.c.state == _PENDING, *due_and_free)
    held, blocked = _conversation_held(entry, now), _blocked_by_auth(entry)
    may_run = _may_run(entry, now)
    turn_order = (entry.c.installation_id, entry.c.available_at, entry.c.id)
    in_turn_order = (case((entry.c.installation_id > after, 0), else_=1), *turn_order)

    # The first candidates in claim order: a plain walk of the claim index, no check. On
    # PostgreSQL their ids, looked up again by the locking query; on SQLite with the
    # columns the claim and the rule need (`_first_that_may_run`).
    wanted = (entry.c.id,) if postgresql else (
        entry.c.id, entry.c.installation_id, entry.c.kind, entry.c.message_id,
        entry.c.payload, entry.c.attempts, entry.c.ordering_key, entry.c.ordering_at)

    def first(*where: Any, order: tuple[Any, ...]) -> Select[Any]:
        return select(*wanted).where(runnable, *where).order_by(*order).limit(_CANDIDATES)

    oldest_ids = first(order=(entry.c.available_at, entry.c.id))
    # The next installation's entries, then wrapping around: a UNION ALL runs its parts in
    # order and stops at the outer LIMIT, so the second part is read only when the first
    # has fewer than `_CANDIDATES`.
    in_turn_ids = select(*union_all(*(
        select(*q.subquery().c) for q in (
            first(entry.c.installation_id > after, order=turn_order),
            first(entry.c.installation_id <= after, order=turn_order)))).subquery().c
    ).limit(_CANDIDATES)

    # The conversations with pending work, skipping from key to key (a loose index scan:
    # one probe per conversation however deep its queue), and each one's head.
    # (ORDER BY … LIMIT 1 rather than min(): SQLite then walks an index on the key instead
    # of all pending entries.)
    first_key, first_from, first_pending_only = _pending_by_key("first_key", postgresql)
    following, following_from, following_pending_only = _pending_by_key("following", postgresql)
    keys = select(select(first_key).select_from(first_from)
                  .where(first_pending_only, first_key.is_not(None))
                  .order_by(first_key).limit(1)
                  .scalar_subquery().label("k")).cte("conversations", recursive=True)
    keys = keys.union_all(
        select(select(following).select_from(following_from)
               .where(following_pending_only, following > keys.c.k)
               .order_by(following).limit(1)
               .scalar_subquery()).where(keys.c.k.is_not(None)))
    first_pending = OUTBOX.alias("first_pending")
    loose = OUTBOX.alias("loose")
    heads = union_all(
        select(select(first_pending.c.id)
               .where(first_pending.c.ordering_key == keys.c.k,
                      first_pending.c.state == _PENDING)
               .order_by(first_pending.c.ordering_at, first_pending.c.id).limit(1)
               .scalar_subquery()).where(keys.c.k.is_not(None)),
        select(loose.c.id).where(loose.c.state == _PENDING, loose.c.ordering_key.is_(None)),
    )
    # A head has no pending entry before it: the rule is then "none of its conversation is
    # held, none waits for re-authorisation before it".
    head_may_run = or_(entry.c.ordering_key.is_(None), and_(~held, ~blocked))

    columns = (entry.c.id, entry.c.installation_id, entry.c.kind, entry.c.message_id,
               entry.c.payload, entry.c.attempts)
    # `runnable` again on the outer query, which looks up the candidates by id. On
    # PostgreSQL a row another worker claimed meanwhile is checked again (its new version)
    # before it is locked. On SQLite the state is compared as an expression, not the
    # column: else its planner walks the claim index over every pending entry instead of
    # looking up the few ids.
    again = runnable if postgresql else and_(
        (entry.c.state + literal_column("''", String())) == _PENDING, *due_and_free)
    queries = [
        select(*columns).where(entry.c.id.in_(oldest_ids), again, may_run)
        .order_by(entry.c.available_at, entry.c.id),
        select(*columns).where(entry.c.id.in_(in_turn_ids), again, may_run)
        .order_by(*in_turn_order),
        select(*columns).where(entry.c.id.in_(heads), again, head_may_run)
        .order_by(entry.c.available_at, entry.c.id),
        select(*columns).where(entry.c.id.in_(heads), again, head_may_run)
        .order_by(*in_turn_order),
    ]
    if postgresql:
        # Locks in the sort's order, skipping what other claims hold, up to the LIMIT:
        # only the entry taken is locked.
        queries = [q.with_for_update(skip_locked=True, of=OUTBOX) for q in queries]
    else:
        # SQLite (claims serialised): the candidates read in order as a co-routine, the
        # first that may run taken; no lookup by id, no sort. Its cost per claim was
        # 0.64 ms of CPU in process the other way, against 0.25 for the old claim.
        queries[:2] = [_first_that_may_run(ids, now) for ids in (oldest_ids, in_turn_ids)]
    oldest, in_turn, oldest_of_heads, in_turn_of_heads = (q.limit(1) for q in queries)
    take = (update(OUTBOX).where(OUTBOX.c.id == bindparam("entry_id"))
            .values(locked_by=bindparam("worker_id"), locked_until=bindparam("locked_until"),
                    attempts=OUTBOX.c.attempts + 1))
    pending = OUTBOX.c.state == _PENDING  # a literal (see `_PENDING`)
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
    return _ClaimStatements(look, oldest, in_turn, oldest_of_heads, in_turn_of_heads, take)


def _pending_by_key(name: str, postgresql: bool) -> tuple[Any, Any, Any]:
    """The ordering keys of pending entries, read from `ix_outbox_queue`: (column, FROM,
    condition), for the walk from conversation to conversation. SQLite, without statistics,
    would rather read every pending entry by state (`ix_outbox_claim_turn`) and sort them:
    it is told which index to use (a table hint SQLAlchemy does not render for SQLite,
    hence the text)."""
    if postgresql:
        alias = OUTBOX.alias(name)
        return alias.c.ordering_key, alias, alias.c.state == _PENDING
    return (literal_column(f"{name}.ordering_key", String()),
            text(f"outbox AS {name} INDEXED BY ix_outbox_queue"),
            literal_column(f"{name}.state", String()) == _PENDING)


def _may_run(entry: Any, now: Any) -> Any:
    """The conversation rule for a candidate `entry` (a table or a subquery with its
    columns), by index probes: no conversation, or its conversation's head (no pending
    entry before it, `ix_outbox_queue`) with no entry of it leased and none waiting for
    re-authorisation before it."""
    head = OUTBOX.alias("head")
    is_head = entry.c.id == (
        select(head.c.id).where(head.c.ordering_key == entry.c.ordering_key,
                                head.c.state == _PENDING)
        .order_by(head.c.ordering_at, head.c.id).limit(1).scalar_subquery())
    return or_(entry.c.ordering_key.is_(None), and_(
        is_head, ~_conversation_held(entry, now), ~_blocked_by_auth(entry)))


def _first_that_may_run(candidates: Select[Any], now: Any) -> Select[Any]:
    """SQLite: of `candidates` (with the columns the rule needs, in claim order, limited),
    the first that may run. SQLite runs a FROM subquery with ORDER BY … LIMIT as a
    co-routine yielding its rows in that order and stops at the outer LIMIT: no lookup by
    id, no sort, the rule checked until one passes."""
    walked = candidates.subquery("candidates")
    return select(walked.c.id, walked.c.installation_id, walked.c.kind, walked.c.message_id,
                  walked.c.payload, walked.c.attempts).where(_may_run(walked, now))


def _conversation_held(entry: Any, now: Any) -> Any:
    """Some entry of `entry`'s conversation is being worked (its lease runs): one probe of
    `ix_outbox_leased`, which holds the few leased entries only."""
    leased = OUTBOX.alias("leased")
    return exists().where(leased.c.ordering_key == entry.c.ordering_key,
                          leased.c.locked_until > now, leased.c.state == _PENDING)


def _blocked_by_auth(entry: Any) -> Any:
    """An entry of `entry`'s conversation before it failed for want of a HubSpot grant: it
    will be re-queued, so it holds back its successors like an entry waiting for a retry
    (decision 0006). On `ix_outbox_ordering` (key, state, ordering_at): the failed ones."""
    other = OUTBOX.alias("failed_before")
    return exists().where(
        other.c.ordering_key == entry.c.ordering_key,
        other.c.state == literal_column("'failed'", String()),
        other.c.failure_kind == literal_column("'auth_revoked'", String()),
        or_(other.c.ordering_at < entry.c.ordering_at,
            and_(other.c.ordering_at == entry.c.ordering_at, other.c.id < entry.c.id)))


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


def record_attempt_on(connection: Connection, *, outbox_id: int, attempt: int,
                      started_at: datetime, duration_ms: int, outcome: str,
                      http_status: int | None = None, detail: str | None = None) -> None:
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
