"""When an idle worker may skip its next poll of the outbox (SQLite), issue 17 item 3.

An idle worker's polls were most of its CPU (each one a thread hop, a pooled connection, a
read transaction of the claim index: ~10 ms of CPU per second, docs/performance.md). On
SQLite nothing in the outbox changes without a commit, and SQLite tells cheaply whether one
happened: `PRAGMA data_version` on a connection of our own changes whenever another
connection (the web process, one of our own pooled ones) committed since. So after a poll
found nothing due, until the next pending entry's own due time (or lease end, from the
same read: `outbox.look`), a slot asks only that: one statement on the event loop, a few
microseconds, no thread hop.

On PostgreSQL the stamp is a count of notifications: every transaction that adds work (an
enqueue, a dashboard's requeue, a sandbox clock jump) sends `NOTIFY` on
`outbox.WAKE_CHANNEL` as it commits, and the worker LISTENs on a connection of its own,
read on the event loop (`NotifyWatch`). While that connection is down (PostgreSQL
restarting) there is no stamp, and the slots poll as before until it listens again. An
in-memory SQLite database polls as before.

The database file's identity (device, inode) is part of the stamp: a file replaced under
the worker (a restore, the test harness's outage) is a change. And the skipping never lasts
longer than `MAX_QUIET`, a safety net for what a stamp cannot see (the system clock set
back, say).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog
from sqlalchemy import Engine

from whatsapp_helpdesk.db.outbox import WAKE_CHANNEL

log = structlog.get_logger(__name__)

# The longest a poll is skipped in a row, whatever the stamps say.
MAX_QUIET = 5.0
# The longest the first skip after a change: the change may have been the sandbox clock's
# offset moved by another process, which this one reads up to 0.5 s late
# (bootstrap.StoredClockOffset caches it), so a poll that just found nothing due may have
# looked at the old time.
FIRST_QUIET_AFTER_A_CHANGE = 0.6

# After the listening connection was lost, the wait before connecting again (the slots
# poll meanwhile).
RELISTEN_WAIT = 2.0

# SQLite: device, inode, data_version. PostgreSQL: the listening connection's generation,
# notifications received on it.
Stamp = tuple[int, ...]


class Watch(Protocol):
    def stamp(self) -> Stamp | None: ...

    def close(self) -> None: ...


def watch_of(engine: Engine) -> CommitWatch | NotifyWatch | None:
    """What tells an idle worker on this database that something was committed; None:
    nothing does (poll)."""
    if engine.url.get_backend_name() == "postgresql":
        return NotifyWatch(engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False))
    return CommitWatch.of(engine)


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


class NotifyWatch:
    """PostgreSQL: `stamp()` changes when a NOTIFY on `WAKE_CHANNEL` arrived; None while not
    listening. `start()` (on the running event loop) listens until `close()`."""

    def __init__(self, conninfo: str):
        self._conninfo = conninfo
        self._listening: tuple[int, int] | None = None  # generation, notifications
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())

    def stamp(self) -> Stamp | None:
        return self._listening

    async def _listen(self) -> None:
        # Here, not at the top: a worker on SQLite never loads the PostgreSQL driver (~0.1 s
        # of CPU at every start); on PostgreSQL the engine has loaded it already.
        import psycopg

        generation = 0
        while True:
            try:
                # Keepalives: a connection the server side lost without a word is noticed
                # (the gate's MAX_QUIET bounds the wait for new work meanwhile).
                async with await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True, connect_timeout=5, keepalives=1,
                        keepalives_idle=10, keepalives_interval=5,
                        keepalives_count=3) as connection:
                    await connection.execute(f"LISTEN {WAKE_CHANNEL}")
                    # A stamp from now on sees every commit after it: none before LISTEN.
                    generation += 1
                    received = 0
                    self._listening = (generation, received)
                    async for _notification in connection.notifies():
                        received += 1
                        self._listening = (generation, received)
            except psycopg.Error as exc:
                log.info("worker.listen_lost", error=str(exc))
            finally:
                self._listening = None
            await asyncio.sleep(RELISTEN_WAIT)

    def close(self) -> None:
        self._listening = None
        if self._task is not None:
            self._task.cancel()
            self._task = None


class IdleGate:
    """Whether the next poll may be skipped: armed by a poll that found nothing due, with
    the stamp taken before that poll read the outbox and the next pending entry's due time;
    disarmed by any change of the stamp, that time, or `MAX_QUIET`."""

    def __init__(self, watch: Watch | None,
                 monotonic: Callable[[], float] = time.monotonic):
        self._watch = watch
        self._monotonic = monotonic
        self._armed: tuple[Stamp, float] | None = None  # stamp, until (monotonic)
        self._last_armed_with: Stamp | None = None

    def start(self) -> None:
        """On the running event loop, before the first poll."""
        if isinstance(self._watch, NotifyWatch):
            self._watch.start()

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
