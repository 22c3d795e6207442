"""The transactional outbox (db/outbox.py) on both databases: claiming as a lease, only the
lease holder finishing, retries, and strict per-conversation order (R15) with different
conversations worked side by side."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import DeliveryAttempt, OutboxEntry

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _enqueue(
    sessions: sessionmaker[Session],
    installation_id: int,
    *,
    key: str | None = None,
    at: datetime | None = None,
    delay: timedelta = timedelta(0),
    payload: dict[str, object] | None = None,
) -> int:
    with sessions.begin() as session:
        entry = outbox.enqueue(
            session, installation_id=installation_id, kind="publish_inbound", now=NOW,
            payload=payload, ordering_key=key, ordering_at=at, delay=delay,
        )
        session.flush()
        return entry.id


def _claim(
    sessions: sessionmaker[Session], worker: str, now: datetime = NOW
) -> outbox.Claimed | None:
    with sessions() as session:
        return outbox.claim(session, worker_id=worker, now=now)


def _claimed_id(sessions: sessionmaker[Session], worker: str, now: datetime = NOW) -> int | None:
    claimed = _claim(sessions, worker, now)
    return None if claimed is None else claimed.id


def _complete(
    sessions: sessionmaker[Session], entry_id: int, worker: str, now: datetime = NOW
) -> None:
    with sessions.begin() as session:
        outbox.complete(session, entry_id=entry_id, worker_id=worker, now=now)


def _entry(sessions: sessionmaker[Session], entry_id: int) -> OutboxEntry:
    with sessions() as session:
        entry = session.get(OutboxEntry, entry_id)
        assert entry is not None
        return entry


# --- enqueue, claim, complete -------------------------------------------------------------


def test_enqueued_entry_is_claimed_with_its_payload_and_completed(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id, payload={"message_id": 7, "text": "Olá"})

    claimed = _claim(sessions, "worker-a")

    assert claimed == outbox.Claimed(
        id=entry_id, installation_id=installation_id, kind="publish_inbound", message_id=None,
        payload={"message_id": 7, "text": "Olá"}, attempt=1,
    )
    held = _entry(sessions, entry_id)
    assert (held.state, held.locked_by, held.locked_until) == (
        outbox.PENDING, "worker-a", NOW + outbox.LEASE
    )

    _complete(sessions, entry_id, "worker-a", NOW + MINUTE / 2)

    done = _entry(sessions, entry_id)
    assert (done.state, done.finished_at, done.locked_until) == (
        outbox.DONE, NOW + MINUTE / 2, None
    )
    assert _claim(sessions, "worker-a", NOW + timedelta(hours=1)) is None


def test_enqueue_never_commits_on_its_own(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    # The outbox entry and its message are one transaction: a rollback drops both.
    with sessions() as session:
        outbox.enqueue(session, installation_id=installation_id, kind="publish_inbound", now=NOW)
        session.rollback()

    assert _claim(sessions, "worker-a") is None


def test_held_entry_is_not_claimed_by_another_worker(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)

    assert _claimed_id(sessions, "worker-a") == entry_id
    assert _claim(sessions, "worker-b") is None


def test_entry_available_in_the_future_is_not_claimed_before_its_time(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id, delay=5 * MINUTE)

    assert _claim(sessions, "worker-a", NOW + 5 * MINUTE - timedelta(seconds=1)) is None
    assert _claimed_id(sessions, "worker-a", NOW + 5 * MINUTE) == entry_id


def test_entries_without_ordering_key_are_claimed_oldest_available_first(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    later = _enqueue(sessions, installation_id, delay=2 * MINUTE)
    sooner = _enqueue(sessions, installation_id, delay=MINUTE)
    now = NOW + 3 * MINUTE

    assert [_claimed_id(sessions, "w1", now), _claimed_id(sessions, "w2", now)] == [sooner, later]


# --- leases -------------------------------------------------------------------------------


def test_expired_lease_makes_the_entry_claimable_again(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    # worker-a claims, then is killed: no complete, no retry. Its lease runs out.
    entry_id = _enqueue(sessions, installation_id)
    assert _claimed_id(sessions, "worker-a") == entry_id
    lease_end = NOW + outbox.LEASE

    assert _claim(sessions, "worker-b", lease_end - timedelta(seconds=1)) is None
    taken_over = _claim(sessions, "worker-b", lease_end)

    assert taken_over is not None
    assert (taken_over.id, taken_over.attempt) == (entry_id, 2)
    assert _entry(sessions, entry_id).locked_by == "worker-b"


def test_only_the_lease_holder_can_complete(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)
    _claim(sessions, "worker-a")
    _claim(sessions, "worker-b", NOW + outbox.LEASE)  # worker-a overran its lease

    _complete(sessions, entry_id, "worker-a", NOW + outbox.LEASE)
    assert _entry(sessions, entry_id).state == outbox.PENDING

    _complete(sessions, entry_id, "worker-b", NOW + outbox.LEASE)
    assert _entry(sessions, entry_id).state == outbox.DONE


def test_only_the_lease_holder_can_retry_or_fail(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)
    _claim(sessions, "worker-a")

    with sessions.begin() as session:
        outbox.retry_later(session, entry_id=entry_id, worker_id="intruder", now=NOW,
                           delay=MINUTE, error="boom")
        outbox.fail(session, entry_id=entry_id, worker_id="intruder", now=NOW, error="boom")

    entry = _entry(sessions, entry_id)
    assert (entry.state, entry.locked_by, entry.last_error) == (outbox.PENDING, "worker-a", None)


# --- retry, fail, requeue -----------------------------------------------------------------


def test_retry_later_releases_the_entry_until_its_delay(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)
    _claim(sessions, "worker-a")

    with sessions.begin() as session:
        outbox.retry_later(session, entry_id=entry_id, worker_id="worker-a", now=NOW,
                           delay=2 * MINUTE, error="HubSpot answered 503")

    entry = _entry(sessions, entry_id)
    assert (entry.state, entry.available_at, entry.locked_until, entry.last_error) == (
        outbox.PENDING, NOW + 2 * MINUTE, None, "HubSpot answered 503"
    )
    assert _claim(sessions, "worker-b", NOW + MINUTE) is None
    again = _claim(sessions, "worker-b", NOW + 2 * MINUTE)
    assert again is not None
    assert (again.id, again.attempt) == (entry_id, 2)


def test_failed_entry_is_finished_with_its_reason(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)
    _claim(sessions, "worker-a")

    with sessions.begin() as session:
        outbox.fail(session, entry_id=entry_id, worker_id="worker-a", now=NOW,
                    error="the window is closed")

    entry = _entry(sessions, entry_id)
    assert (entry.state, entry.finished_at, entry.last_error) == (
        outbox.FAILED, NOW, "the window is closed"
    )
    assert _claim(sessions, "worker-b", NOW + timedelta(days=1)) is None


def test_R44_requeue_runs_a_failed_entry_again_from_scratch(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)
    _claim(sessions, "worker-a")
    with sessions.begin() as session:
        outbox.fail(session, entry_id=entry_id, worker_id="worker-a", now=NOW, error="gave up")

    later = NOW + timedelta(hours=3)
    with sessions.begin() as session:
        assert outbox.requeue(session, entry_id=entry_id, installation_id=installation_id,
                              now=later)

    entry = _entry(sessions, entry_id)
    assert (entry.state, entry.attempts, entry.available_at, entry.finished_at) == (
        outbox.PENDING, 0, later, None
    )
    claimed = _claim(sessions, "worker-b", later)
    assert claimed is not None
    assert (claimed.id, claimed.attempt) == (entry_id, 1)


def test_R10_requeue_of_another_installations_entry_changes_nothing(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)
    _claim(sessions, "worker-a")
    with sessions.begin() as session:
        outbox.fail(session, entry_id=entry_id, worker_id="worker-a", now=NOW, error="gave up")

    with sessions.begin() as session:
        assert not outbox.requeue(session, entry_id=entry_id, installation_id=installation_id + 1,
                                  now=NOW)

    assert _entry(sessions, entry_id).state == outbox.FAILED


def test_requeue_of_an_entry_that_did_not_fail_changes_nothing(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    entry_id = _enqueue(sessions, installation_id)

    with sessions.begin() as session:
        assert not outbox.requeue(session, entry_id=entry_id, installation_id=installation_id,
                                  now=NOW)


def test_R9_attempts_are_recorded(sessions: sessionmaker[Session], installation_id: int) -> None:
    entry_id = _enqueue(sessions, installation_id)
    claimed = _claim(sessions, "worker-a")
    assert claimed is not None

    with sessions.begin() as session:
        outbox.record_attempt_on(
            session.connection(), outbox_id=entry_id, attempt=claimed.attempt,
            started_at=NOW, duration_ms=120, outcome="retry", http_status=503,
            detail="Service Unavailable")

    with sessions() as session:
        attempt = session.scalars(select(DeliveryAttempt)).one()
    assert (attempt.outbox_id, attempt.attempt, attempt.outcome, attempt.http_status) == (
        entry_id, 1, "retry", 503
    )


# --- per-conversation order (R15) ---------------------------------------------------------


def test_R15_one_key_is_claimed_in_ordering_at_order_one_at_a_time(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    # Enqueued out of order (late webhook deliveries): 3rd, 1st, 2nd.
    third = _enqueue(sessions, installation_id, key="conv-1", at=NOW + 2 * MINUTE)
    first = _enqueue(sessions, installation_id, key="conv-1", at=NOW)
    second = _enqueue(sessions, installation_id, key="conv-1", at=NOW + MINUTE)

    worked = []
    for expected in (first, second, third):
        entry_id = _claimed_id(sessions, "worker-a")
        # While one entry of the conversation is held, no worker gets another.
        assert _claim(sessions, "worker-b") is None
        assert entry_id == expected
        _complete(sessions, entry_id, "worker-a")
        worked.append(entry_id)

    assert worked == [first, second, third]
    assert _claim(sessions, "worker-a") is None


def test_R15_equal_ordering_times_are_worked_in_id_order(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    ids = [_enqueue(sessions, installation_id, key="conv-1", at=NOW) for _ in range(3)]

    worked = []
    for _ in ids:
        entry_id = _claimed_id(sessions, "worker-a")
        assert entry_id is not None
        _complete(sessions, entry_id, "worker-a")
        worked.append(entry_id)

    assert worked == ids


def test_R15_other_conversations_run_in_parallel(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    conv_1 = [_enqueue(sessions, installation_id, key="conv-1", at=NOW + i * MINUTE)
              for i in range(2)]
    conv_2 = [_enqueue(sessions, installation_id, key="conv-2", at=NOW + i * MINUTE)
              for i in range(2)]
    unordered = _enqueue(sessions, installation_id)

    held = {_claimed_id(sessions, f"worker-{n}") for n in range(3)}

    assert held == {conv_1[0], conv_2[0], unordered}
    assert _claim(sessions, "worker-4") is None


def test_R15_entry_waiting_to_retry_holds_back_the_rest_of_its_conversation(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    first = _enqueue(sessions, installation_id, key="conv-1", at=NOW)
    second = _enqueue(sessions, installation_id, key="conv-1", at=NOW + MINUTE)
    elsewhere = _enqueue(sessions, installation_id, key="conv-2", at=NOW)
    assert _claimed_id(sessions, "worker-a") == first
    with sessions.begin() as session:
        outbox.retry_later(session, entry_id=first, worker_id="worker-a", now=NOW,
                           delay=5 * MINUTE, error="HubSpot answered 429")

    # conv-1 waits for its first message; conv-2 is not held up.
    assert _claimed_id(sessions, "worker-b", NOW + MINUTE) == elsewhere
    assert _claim(sessions, "worker-c", NOW + MINUTE) is None
    _complete(sessions, elsewhere, "worker-b", NOW + MINUTE)

    assert _claimed_id(sessions, "worker-c", NOW + 5 * MINUTE) == first
    _complete(sessions, first, "worker-c", NOW + 5 * MINUTE)
    assert _claimed_id(sessions, "worker-c", NOW + 5 * MINUTE) == second


def test_R15_held_entry_blocks_an_earlier_one_enqueued_after_it(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    # A message sent earlier arrives while a later one is being published: it waits for
    # the worker to finish rather than running beside it.
    later = _enqueue(sessions, installation_id, key="conv-1", at=NOW + MINUTE)
    assert _claimed_id(sessions, "worker-a") == later
    earlier = _enqueue(sessions, installation_id, key="conv-1", at=NOW)

    assert _claim(sessions, "worker-b") is None
    _complete(sessions, later, "worker-a")
    assert _claimed_id(sessions, "worker-b") == earlier


def test_R15_expired_lease_of_a_conversations_head_lets_it_be_taken_over_in_order(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    first = _enqueue(sessions, installation_id, key="conv-1", at=NOW)
    _enqueue(sessions, installation_id, key="conv-1", at=NOW + MINUTE)
    assert _claimed_id(sessions, "worker-a") == first  # then worker-a dies

    assert _claimed_id(sessions, "worker-b", NOW + outbox.LEASE) == first


def test_R44_failed_entry_does_not_block_its_conversation_forever(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    first = _enqueue(sessions, installation_id, key="conv-1", at=NOW)
    second = _enqueue(sessions, installation_id, key="conv-1", at=NOW + MINUTE)
    _claim(sessions, "worker-a")
    with sessions.begin() as session:
        outbox.fail(session, entry_id=first, worker_id="worker-a", now=NOW, error="gave up")

    assert _claimed_id(sessions, "worker-a") == second


# --- backoff ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0), (9, 128.0, 256.0), (10, 150.0, 300.0),
     (50, 150.0, 300.0)],
)
def test_R44_backoff_grows_exponentially_with_jitter_up_to_the_cap(
    attempt: int, low: float, high: float
) -> None:
    delays = [outbox.backoff(attempt).total_seconds() for _ in range(200)]

    assert all(low <= delay <= high for delay in delays)
    assert len(set(delays)) > 1  # jittered: workers retrying together spread out


def test_R44_backoff_never_below_a_floor() -> None:
    assert all(outbox.backoff(1, base=0.01).total_seconds() >= 0.2 for _ in range(100))


def test_R44_backoff_cap_is_configurable() -> None:
    assert all(outbox.backoff(20, cap=10).total_seconds() <= 10 for _ in range(100))


# --- installations served in turn (R44) -----------------------------------------------------


def test_R44_claims_serve_installations_round_robin_not_the_busiest_first(
    sessions: sessionmaker[Session], new_installation: Callable[[str], int]
) -> None:
    """A burst of one portal queued first must not hold the others back until it drains:
    a worker that claims after its last installation takes the installations in turn."""
    busy, quiet, other = (new_installation(p) for p in ("1", "2", "3"))
    for n in range(6):
        _enqueue(sessions, busy, key=f"busy:{n % 2}", at=NOW + n * MINUTE / 60)
    for n in range(3):
        _enqueue(sessions, quiet, at=NOW + MINUTE + n * MINUTE / 60)
        _enqueue(sessions, other, key="other", at=NOW + MINUTE + n * MINUTE / 60)

    served: list[int] = []
    last = 0
    for worker in range(12):
        with sessions() as session:
            claimed = outbox.claim(session, worker_id=f"w{worker}", now=NOW + 2 * MINUTE,
                                   after_installation=last)
        assert claimed is not None
        _complete(sessions, claimed.id, f"w{worker}", NOW + 2 * MINUTE)
        served.append(claimed.installation_id)
        last = claimed.installation_id
    with sessions() as session:
        assert outbox.claim(session, worker_id="w", now=NOW + 2 * MINUTE,
                            after_installation=last) is None
    assert served == [busy, quiet, other] * 3 + [busy] * 3


def test_R44_R15_round_robin_keeps_each_conversation_in_order(
    sessions: sessionmaker[Session], new_installation: Callable[[str], int]
) -> None:
    first, second = new_installation("1"), new_installation("2")
    ids = {inst: [_enqueue(sessions, inst, key=f"c{inst}", at=NOW + n * MINUTE)
                  for n in range(3)] for inst in (first, second)}
    order: dict[int, list[int]] = {first: [], second: []}
    last = 0
    while True:
        with sessions() as session:
            claimed = outbox.claim(session, worker_id="w", now=NOW + 5 * MINUTE,
                                   after_installation=last)
        if claimed is None:
            break
        order[claimed.installation_id].append(claimed.id)
        _complete(sessions, claimed.id, "w", NOW + 5 * MINUTE)
        last = claimed.installation_id
    assert order == ids


def test_R44_a_claim_in_turn_is_one_statement_even_when_it_wraps_around(
    migrated_engine: Engine, sessions: sessionmaker[Session],
    new_installation: Callable[[str], int],
) -> None:
    """The round robin's "next installation, else wrap around" is one statement (issue 17
    item 3: it was two for every claim by a worker serving the last installation)."""
    first, last = new_installation("1"), new_installation("2")
    wanted = _enqueue(sessions, first)
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(migrated_engine, "before_cursor_execute", count)
    try:
        with migrated_engine.begin() as connection:
            claimed = outbox.claim_on(connection, worker_id="w", now=NOW,
                                      after_installation=last)
    finally:
        event.remove(migrated_engine, "before_cursor_execute", count)
    assert claimed is not None and claimed.id == wanted
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(reads) == 1, reads


def test_R44_a_claim_in_turn_locks_only_the_entry_it_takes(
    migrated_engine: Engine, sessions: sessionmaker[Session],
    new_installation: Callable[[str], int],
) -> None:
    """The wrap-around half of the claim is not run when the next installation has work:
    on PostgreSQL it would otherwise lock (FOR UPDATE SKIP LOCKED) an entry it does not
    take, hiding it from the other workers until the claim commits."""
    if migrated_engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises claims (BEGIN IMMEDIATE): no row locks to see")
    first, second = new_installation("1"), new_installation("2")
    first_entry, second_entry = _enqueue(sessions, first), _enqueue(sessions, second)
    with migrated_engine.begin() as holding:
        taken = outbox.claim_on(holding, worker_id="a", now=NOW, after_installation=first)
        assert taken is not None and taken.id == second_entry
        # Meanwhile, with the first claim not committed, another worker's claim.
        with migrated_engine.begin() as other:
            meanwhile = outbox.claim_on(other, worker_id="b", now=NOW)
    assert meanwhile is not None and meanwhile.id == first_entry


def test_R44_a_claim_skips_installations_whose_bucket_is_full_and_a_release_gives_back(
    sessions: sessionmaker[Session], new_installation: Callable[[str], int]
) -> None:
    """The worker skips installations whose rate bucket has no slot near enough, and gives
    back an entry it claimed before finding its bucket full: claimable again at once, in its
    conversation's order, with no attempt counted."""
    full, free = new_installation("1"), new_installation("2")
    head = _enqueue(sessions, full, key="c", at=NOW)
    _enqueue(sessions, full, key="c", at=NOW + MINUTE)
    waiting = _enqueue(sessions, free, at=NOW)
    with sessions() as session:
        skipped = outbox.claim(session, worker_id="w", now=NOW + 2 * MINUTE,
                               skip_installations=[full])
    assert skipped is not None and skipped.id == waiting

    claimed = _claim(sessions, "w", NOW + 2 * MINUTE)
    assert claimed is not None and claimed.id == head
    with sessions.begin() as session:
        outbox.release(session, entry_id=head, worker_id="w")
    assert _entry(sessions, head).attempts == 0
    again = _claim(sessions, "other", NOW + 2 * MINUTE)
    assert again is not None and (again.id, again.attempt) == (head, 1)
