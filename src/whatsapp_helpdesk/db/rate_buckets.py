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

from sqlalchemy import (
    Connection,
    Engine,
    Float,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)
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
        greatest = func.greatest if postgres else func.max  # SQLite's scalar max()
        insert = pg_insert if postgres else sqlite_insert
        # Built once with bound parameters: building them again on every call (and the
        # cache key SQLAlchemy derives from a new statement) was about half of a booking's
        # CPU (issue 17 item 3).
        key = bindparam("bucket_key", type_=String())
        now, seconds = bindparam("now", type_=Float()), bindparam("seconds", type_=Float())
        self._book = (
            update(BUCKETS)
            .where(BUCKETS.c.key == key,
                   BUCKETS.c.next_slot_at - now <= bindparam("max_wait", type_=Float()))
            .values(next_slot_at=greatest(BUCKETS.c.next_slot_at, now) + seconds)
            .returning(BUCKETS.c.next_slot_at))
        self._hold = (update(BUCKETS).where(BUCKETS.c.key == key)
                      .values(next_slot_at=greatest(BUCKETS.c.next_slot_at, now)))
        self._next_slot = select(BUCKETS.c.next_slot_at).where(BUCKETS.c.key == key)
        self._create_bucket = (
            insert(BUCKETS).values(key=key, next_slot_at=bindparam("first_slot_at"))
            .on_conflict_do_nothing(index_elements=["key"]).returning(BUCKETS.c.key))

    def acquire(self, key: str, limit: Limit, *, max_wait: float) -> Permit:
        with self._engine.begin() as connection:
            return self.acquire_on(connection, key, limit, max_wait=max_wait)

    def acquire_on(self, connection: Connection, key: str, limit: Limit, *,
                   max_wait: float) -> Permit:
        """`acquire` in the caller's transaction (the worker's claim, issue 17 item 3: a
        transaction fewer per job). A permit not granted wrote nothing: the caller may roll
        back or commit alike."""
        now = self._clock()
        for _ in range(2):  # a second time only if another process created the bucket
            # The same rule as pacing.book: the slot starts at max(next slot, now),
            # booked only if that is at most `max_wait` away.
            booked = connection.execute(self._book, {
                "bucket_key": key, "now": now, "max_wait": max_wait,
                "seconds": limit.interval}).scalar()
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
                held = connection.execute(self._hold, {"bucket_key": key, "now": until})
                if rows_changed(held) or self._create(connection, key, until):
                    return

    def _next_slot_at(self, connection: Connection, key: str) -> float | None:
        return connection.execute(self._next_slot, {"bucket_key": key}).scalar()

    def _create(self, connection: Connection, key: str, next_slot_at: float) -> bool:
        """False when another process created the bucket first (then book in it)."""
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT DO NOTHING.
        return connection.execute(self._create_bucket, {
            "bucket_key": key, "first_slot_at": next_slot_at}).scalar() is not None
