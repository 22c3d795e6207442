"""The pacing buckets in the database: the `RateLimiter` every worker process shares (R44).

One short transaction per API call: the bucket's row is read with `FOR UPDATE` on
PostgreSQL (two workers booking the same portal queue on the row, other portals' rows are
not touched); on SQLite `BEGIN IMMEDIATE` (db/session.py) serialises bookings. Times are
UNIX seconds of this machine's clock: workers on several machines need synchronised clocks,
as the outbox lease already does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db.models import RateBucket
from whatsapp_helpdesk.pacing import Limit, Permit, book


class DatabaseRateLimiter:
    def __init__(self, sessions: sessionmaker[Session], *,
                 clock: Callable[[], float] = time.time):
        self._sessions = sessions
        self._clock = clock

    def acquire(self, key: str, limit: Limit, *, max_wait: float) -> Permit:
        with self._sessions.begin() as session:
            bucket = self._locked(session, key)
            permit, bucket.next_slot_at = book(bucket.next_slot_at, self._clock(), limit,
                                               max_wait)
            return permit

    def hold_off(self, key: str, seconds: float) -> None:
        with self._sessions.begin() as session:
            bucket = self._locked(session, key)
            bucket.next_slot_at = max(bucket.next_slot_at, self._clock() + seconds)

    def _locked(self, session: Session, key: str) -> RateBucket:
        query = select(RateBucket).where(RateBucket.key == key)
        postgres = session.get_bind().dialect.name == "postgresql"
        if postgres:
            query = query.with_for_update()
        bucket = session.scalars(query).first()
        if bucket is None:
            # First call for this account: two processes may both get here; the loser's
            # insert does nothing and both then lock the one row.
            insert = pg_insert if postgres else sqlite_insert
            session.execute(insert(RateBucket).values(key=key, next_slot_at=0.0)
                            .on_conflict_do_nothing(index_elements=["key"]))
            bucket = session.scalars(query).one()
        return bucket
