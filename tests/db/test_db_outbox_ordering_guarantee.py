"""Decision 0006, the ordering guarantee (issue 11 item 8, R15), on SQLite and PostgreSQL.

A message that fails because HubSpot's grant was revoked is retried later (re-queued once
the admin re-authorises): like an entry waiting for a retry, it holds back the rest of its
conversation, so nothing overtakes it. It used not to: a successor claimed between the
failure and the re-authorisation was published before it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.connect.reauth import requeue_auth_revoked
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import OutboxEntry

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _enqueue(sessions: sessionmaker[Session], installation_id: int, key: str,
             at: datetime, kind: str = "publish_inbound") -> int:
    with sessions.begin() as session:
        entry = outbox.enqueue(session, installation_id=installation_id, kind=kind, now=NOW,
                               ordering_key=key, ordering_at=at)
        session.flush()
        return entry.id


def _claim(sessions: sessionmaker[Session], worker: str, now: datetime) -> int | None:
    with sessions() as session:
        claimed = outbox.claim(session, worker_id=worker, now=now)
    return claimed.id if claimed else None


def _fail(sessions: sessionmaker[Session], entry_id: int, worker: str,
          failure_kind: str | None) -> None:
    with sessions.begin() as session:
        outbox.fail(session, entry_id=entry_id, worker_id=worker, now=NOW, error="no grant",
                    failure_kind=failure_kind)


def _complete(sessions: sessionmaker[Session], entry_id: int, worker: str) -> None:
    with sessions.begin() as session:
        outbox.complete(session, entry_id=entry_id, worker_id=worker, now=NOW)


def test_R15_issue11_entry_awaiting_reauth_is_not_overtaken_by_its_successors(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    first = _enqueue(sessions, installation_id, "conversation:1", NOW)
    second = _enqueue(sessions, installation_id, "conversation:1", NOW + MINUTE)
    elsewhere = _enqueue(sessions, installation_id, "conversation:2", NOW)
    assert _claim(sessions, "w1", NOW) == first
    _fail(sessions, first, "w1", outbox.AUTH_REVOKED)

    # Until the admin re-authorises, the conversation waits; the others go on.
    assert _claim(sessions, "w2", NOW + MINUTE) == elsewhere
    _complete(sessions, elsewhere, "w2")
    assert _claim(sessions, "w3", NOW + MINUTE) is None

    with sessions.begin() as session:
        assert requeue_auth_revoked(session, installation_id, NOW + 2 * MINUTE) == 1
    worked = []
    for _ in range(2):
        entry_id = _claim(sessions, "w4", NOW + 2 * MINUTE)
        assert entry_id is not None
        _complete(sessions, entry_id, "w4")
        worked.append(entry_id)
    assert worked == [first, second]


def test_R15_issue11_reauth_requeues_every_conversation_in_its_order(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    """Everything failed while the grant was revoked goes again, each conversation in
    provider-timestamp order, whatever order the failures came in."""
    entries = {(conv, n): _enqueue(sessions, installation_id, f"conversation:{conv}",
                                   NOW + n * MINUTE) for conv in (1, 2) for n in range(3)}
    with sessions.begin() as session:  # as the worker left them
        for entry_id in entries.values():
            row = session.get(OutboxEntry, entry_id)
            assert row is not None
            row.state, row.failure_kind = outbox.FAILED, outbox.AUTH_REVOKED
    permanent = _enqueue(sessions, installation_id, "conversation:3", NOW)
    assert _claim(sessions, "w", NOW) == permanent
    _fail(sessions, permanent, "w", None)  # failed for another reason: left alone

    with sessions.begin() as session:
        assert requeue_auth_revoked(session, installation_id, NOW + 5 * MINUTE) == 6
    order = []
    while (entry_id := _claim(sessions, "w", NOW + 5 * MINUTE)) is not None:
        _complete(sessions, entry_id, "w")
        order.append(entry_id)
    by_conversation = {conv: [e for e in order if e in {entries[(conv, n)] for n in range(3)}]
                       for conv in (1, 2)}
    assert by_conversation == {conv: [entries[(conv, n)] for n in range(3)] for conv in (1, 2)}
    with sessions() as session:
        row = session.get(OutboxEntry, permanent)
        assert row is not None and row.state == outbox.FAILED


def test_R44_a_message_that_failed_for_good_does_not_hold_back_its_conversation(
    sessions: sessionmaker[Session], installation_id: int
) -> None:
    """The other half of the guarantee: one bad message must not silence a customer."""
    first = _enqueue(sessions, installation_id, "conversation:1", NOW)
    second = _enqueue(sessions, installation_id, "conversation:1", NOW + MINUTE)
    assert _claim(sessions, "w1", NOW) == first
    _fail(sessions, first, "w1", None)
    assert _claim(sessions, "w2", NOW) == second
