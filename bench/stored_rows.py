"""How many Aircall deliveries the bench's database holds: polled every 20 ms while the web
process's drain stores a round's deliveries (bench/ingest.py `wait_stored`).

It was `SELECT count(*) FROM webhook_events WHERE source = 'aircall'` at every poll: a
count over every row the run had stored (tens of thousands), 50 times a second, on the
database server the drain writes to — the statement that pg_stat_activity samples showed
beside the drain's inserts under load (docs/performance.md, 17:54 UTC), the bench's own and
not the drain's, and a cost that grew with the table. Now a poll reads the highest id (one
step down the primary key) and counts only when that many rows can be there, and then only
the rows past the last settled point (an index range over the rows of one round).
"""

from __future__ import annotations

from sqlalchemy import Engine, text

_MAX_ID = text("SELECT coalesce(max(id), 0) FROM webhook_events")
# Only the primary key in the WHERE: a range past `after`, whatever the planner makes of an
# index on source (SQLite took (source, scope, dedupe_key) and counted every Aircall row).
_COUNT_PAST = text("SELECT count(CASE WHEN source = 'aircall' THEN 1 END), "
                   "coalesce(max(id), :after) FROM webhook_events WHERE id > :after")


class StoredRows:
    """The Aircall rows stored, for a run in which only the drain of one web process (one
    thread, one transaction at a time, so ids commit in order) inserts them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.floor_id = 0  # every Aircall row up to here is counted in floor_rows
        self.floor_rows = 0
        self.settle()

    def settle(self) -> int:
        """Count every row now there and start later counts from here; call it only when no
        delivery is being stored (after `reached` returned True for all that was sent)."""
        with self.engine.connect() as connection:
            rows, last = connection.execute(_COUNT_PAST, {"after": self.floor_id}).one()
        self.floor_rows += int(rows)
        self.floor_id = int(last)
        return self.floor_rows

    def reached(self, rows: int) -> bool:
        """Whether at least `rows` Aircall rows are stored. New rows have ids past
        `floor_id`, so fewer ids than rows still missing means not yet, without counting."""
        missing = rows - self.floor_rows
        if missing <= 0:
            return True
        with self.engine.connect() as connection:
            if int(connection.execute(_MAX_ID).scalar_one()) - self.floor_id < missing:
                return False
            counted, _ = connection.execute(_COUNT_PAST, {"after": self.floor_id}).one()
        return int(counted) >= missing
