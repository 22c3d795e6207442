"""The pacing buckets in the database: the `RateLimiter` every worker process shares (R44).

One short transaction per API call, in SQLAlchemy Core (the ORM's unit of work cost a few
milliseconds of worker CPU per call, measured by bench/pacing.py). The usual case is one
statement: an UPDATE that books the next slot only if it is near enough, returning it. On
PostgreSQL the UPDATE locks the bucket's row, and a concurrent booking of the same bucket
waits for it, then re-reads the row (READ COMMITTED re-evaluates the WHERE and SET on the
newest version); other buckets are not touched. On SQLite `BEGIN IMMEDIATE` (db/session.py)
serialises bookings. Only when nothing was booked does a second statement read how far the
next slot is (or create the bucket on its first use).

Times are UNIX seconds of this machine's clock: workers on several machines need
synchronised clocks, as the outbox lease already does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from sqlalchemy import Connection, Engine, Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from whatsapp_helpdesk.db.models import RateBucket
from whatsapp_helpdesk.db.session import rows_changed
from whatsapp_helpdesk.pacing import Limit, Permit

BUCKETS = cast(Table, RateBucket.__table__)  # a declarative model's table is a Table


class DatabaseRateLimiter:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time):
        self._engine = engine
        self._clock = clock
        postgres = engine.dialect.name == "postgresql"
        self._greatest = func.greatest if postgres else func.max  # SQLite's scalar max()
        self._insert = pg_insert if postgres else sqlite_insert

    def acquire(self, key: str, limit: Limit, *, max_wait: float) -> Permit:
        with self._engine.begin() as connection:
            now = self._clock()
            for _ in range(2):  # a second time only if another process created the bucket
                # The same rule as pacing.book: the slot starts at max(next slot, now),
                # booked only if that is at most `max_wait` away.
                booked = connection.execute(
                    update(BUCKETS)
                    .where(BUCKETS.c.key == key, BUCKETS.c.next_slot_at - now <= max_wait)
                    .values(next_slot_at=self._greatest(BUCKETS.c.next_slot_at, now)
                            + limit.interval)
                    .returning(BUCKETS.c.next_slot_at)
                ).scalar()
                if booked is not None:
                    start = booked - limit.interval
                    return Permit(wait=max(0.0, start - now), granted=True, at=start)
                next_slot_at = self._next_slot_at(connection, key)
                if next_slot_at is not None:
                    return Permit(wait=next_slot_at - now, granted=False)
                # The bucket's first call: a new row, with this call's slot booked.
                if self._create(connection, key, now + limit.interval):
                    return Permit(wait=0.0, granted=True, at=now)
            raise RuntimeError(f"rate bucket {key!r} could be neither booked nor created")

    def hold_off(self, key: str, seconds: float) -> None:
        with self._engine.begin() as connection:
            until = self._clock() + seconds
            for _ in range(2):
                held = connection.execute(
                    update(BUCKETS).where(BUCKETS.c.key == key)
                    .values(next_slot_at=self._greatest(BUCKETS.c.next_slot_at, until))
                )
                if rows_changed(held) or self._create(connection, key, until):
                    return

    @staticmethod
    def _next_slot_at(connection: Connection, key: str) -> float | None:
        return connection.execute(
            select(BUCKETS.c.next_slot_at).where(BUCKETS.c.key == key)).scalar()

    def _create(self, connection: Connection, key: str, next_slot_at: float) -> bool:
        """False when another process created the bucket first (then book in it)."""
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT DO NOTHING.
        return connection.execute(
            self._insert(BUCKETS).values(key=key, next_slot_at=next_slot_at)
            .on_conflict_do_nothing(index_elements=["key"]).returning(BUCKETS.c.key)
        ).scalar() is not None
