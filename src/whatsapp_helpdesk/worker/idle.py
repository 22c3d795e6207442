"""When an idle worker may skip its next poll of the outbox (SQLite), issue 17 item 3.

An idle worker's polls were most of its CPU (each one a thread hop, a pooled connection, a
read transaction of the claim index: ~10 ms of CPU per second, docs/performance.md). On
SQLite nothing in the outbox changes without a commit, and SQLite tells cheaply whether one
happened: `PRAGMA data_version` on a connection of our own changes whenever another
connection (the web process, one of our own pooled ones) committed since. So after a poll
found nothing due, until the next pending entry's own due time (or lease end, from the
same read: `outbox.look`), a slot asks only that: one statement on the event loop, a few
microseconds, no thread hop. Anything else (PostgreSQL, an in-memory database) polls as
before.

The database file's identity (device, inode) is part of the stamp: a file replaced under
the worker (a restore, the test harness's outage) is a change. And the skipping never lasts
longer than `MAX_QUIET`, a safety net for what a stamp cannot see (the system clock set
back, say).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

# The longest a poll is skipped in a row, whatever the stamps say.
MAX_QUIET = 5.0
# The longest the first skip after a change: the change may have been the sandbox clock's
# offset moved by another process, which this one reads up to 0.5 s late
# (bootstrap.StoredClockOffset caches it), so a poll that just found nothing due may have
# looked at the old time.
FIRST_QUIET_AFTER_A_CHANGE = 0.6

Stamp = tuple[int, int, int]  # device, inode, data_version


class CommitWatch:
    """`stamp()` changes when the database file got a commit from another connection."""

    def __init__(self, path: str):
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._file: tuple[int, int] | None = None

    @classmethod
    def of(cls, engine: Engine) -> CommitWatch | None:
        url = engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        if url.database.startswith("file:") or url.query.get("uri"):
            return None  # URI file names (shared memory…): not worth the cases
        return cls(url.database)

    def stamp(self) -> Stamp | None:
        """None when it cannot tell (the file is missing or unreadable): poll."""
        try:
            info = os.stat(self._path)
            file = (info.st_dev, info.st_ino)
            if self._connection is None or file != self._file:
                self.close()
                # Opened by this thread (the event loop's) and used by it only; autocommit,
                # so that it holds no read transaction between two looks.
                self._connection = sqlite3.connect(self._path, isolation_level=None,
                                                   timeout=0.05)
                self._file = file
            version = self._connection.execute("PRAGMA data_version").fetchone()[0]
        except (OSError, sqlite3.Error):
            self.close()
            return None
        return (*file, int(version))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class IdleGate:
    """Whether the next poll may be skipped: armed by a poll that found nothing due, with
    the stamp taken before that poll read the outbox and the next pending entry's due time;
    disarmed by any change of the stamp, that time, or `MAX_QUIET`."""

    def __init__(self, watch: CommitWatch | None,
                 monotonic: Callable[[], float] = time.monotonic):
        self._watch = watch
        self._monotonic = monotonic
        self._armed: tuple[Stamp, float] | None = None  # stamp, until (monotonic)
        self._last_armed_with: Stamp | None = None

    def stamp(self) -> Stamp | None:
        return self._watch.stamp() if self._watch is not None else None

    def arm(self, stamp: Stamp | None, now: datetime, next_at: datetime | None) -> None:
        """After a poll that found nothing due at `now` (the outbox's clock); `stamp` taken
        before it read."""
        if stamp is None:
            return
        quiet = MAX_QUIET if next_at is None else min(
            MAX_QUIET, (next_at - now).total_seconds())
        if stamp != self._last_armed_with:
            quiet = min(quiet, FIRST_QUIET_AFTER_A_CHANGE)
        self._last_armed_with = stamp
        if quiet > 0:
            self._armed = (stamp, self._monotonic() + quiet)

    def disarm(self) -> None:
        self._armed = None

    def may_skip(self) -> bool:
        if self._armed is None:
            return False
        stamp, until = self._armed
        if self._monotonic() < until and self.stamp() == stamp:
            return True
        self._armed = None
        return False

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
