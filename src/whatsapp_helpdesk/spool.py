"""A local, durable, append-only spool of webhook deliveries (R53).

While the database is unreachable, the web process keeps each authenticated delivery here
before it answers 2xx, and replays the spool into the database, in order, when it returns.
With INGEST_MODE=spool it also keeps inbound messages here while the database answers, and
drains them into it continuously (docs/decisions/0011-spool-first-ingest.md): appends come in
groups (`append_many`: one write, one fsync) and replay in batches (`replay_batches`).

On disk: one directory shared by the web processes of one database; each process appends
to segment files of its own (`spool-<time_ns>-<pid>-<random>.log`), holding an exclusive
`flock` on each for as long as it lives, so a segment nobody holds the lock of belongs to a
dead process and any live process may replay it. A record is

    magic "WHS1" | payload length (u32) | CRC-32 of the payload (u32) | spooled at, ms (u64)
    | payload (UTF-8 JSON)

written with one `write` and `fsync`ed before `append` returns. A crash half-way through a
write leaves a torn last record: its length, magic or CRC do not match, and it is ignored
(it was never acknowledged, so the provider retries it). Replay progress is a cursor file
next to the segment (`<segment>.ack`, the byte offset of the next record), replaced
atomically after each replayed record: a crash mid-replay re-does at most the one record
whose cursor was not yet written (with `replay_batches`, the one batch), and the database's
dedupe constraints absorb it.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"WHS1"
HEADER = struct.Struct(">4sIIQ")
SEGMENT_GLOB = "spool-*.log"
ACK_SUFFIX = ".ack"


class SpoolFull(Exception):
    """The spool holds its maximum: the delivery is refused so that the provider retries."""


@dataclass(frozen=True)
class SpooledRecord:
    payload: dict[str, Any]
    spooled_at: float  # UNIX seconds
    end_offset: int  # byte offset just after the record in its segment


@dataclass(frozen=True)
class SpoolStatus:
    records: int
    bytes: int
    oldest_spooled_at: float | None


def encode_payload(payload: dict[str, Any]) -> bytes:
    """A record's payload as it is written (sorted keys, no spaces)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")


def encode_record(payload: dict[str, Any], spooled_at: float) -> bytes:
    return frame_record(encode_payload(payload), spooled_at)


def frame_record(body: bytes, spooled_at: float) -> bytes:
    """A payload already encoded (`encode_payload`, or built to the same bytes) framed."""
    return HEADER.pack(MAGIC, len(body), zlib.crc32(body), int(spooled_at * 1000)) + body


def read_records(path: Path, offset: int = 0, *, headers_only: bool = False
                 ) -> Iterator[SpooledRecord]:
    """The complete records of a segment from `offset`; stops at the first torn or
    corrupt record (a crash mid-write), which is never acknowledged and so never lost."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        handle.seek(offset)
        while True:
            header = handle.read(HEADER.size)
            if len(header) < HEADER.size:
                return
            magic, length, crc, spooled_ms = HEADER.unpack(header)
            if magic != MAGIC:
                return
            if headers_only:
                here = handle.tell()
                end = handle.seek(0, os.SEEK_END)
                if end - here < length:
                    return
                handle.seek(here + length)
                yield SpooledRecord({}, spooled_ms / 1000, here + length)
                continue
            body = handle.read(length)
            if len(body) < length or zlib.crc32(body) != crc:
                return
            try:
                payload = json.loads(body)
            except ValueError:
                return
            yield SpooledRecord(payload, spooled_ms / 1000, handle.tell())


def read_cursor(segment: Path) -> int:
    try:
        return int(segment.with_name(segment.name + ACK_SUFFIX).read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def write_cursor(segment: Path, offset: int) -> None:
    """Atomically: a crash leaves the old cursor or the new one, never half of one (or,
    after a power loss, possibly an older or an empty one: read as 0).

    Not fsynced: a cursor is written after its records are durably in the database, and a
    cursor that lags only re-delivers records, which the database's dedupe constraints
    absorb (the crash case above). Its fsync was the drain's second per batch, beside the
    database commit's (issue 17 item 2); it never made the rename durable anyway (the
    directory was not synced)."""
    ack = segment.with_name(segment.name + ACK_SUFFIX)
    temporary = ack.with_name(ack.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, str(offset).encode())
    finally:
        os.close(fd)
    os.replace(temporary, ack)


# How long the spool's size as last read from the files (plus what this process appended
# since) stands in for reading the directory again on an append (issue 17 item 1).
PENDING_REREAD_SECONDS = 1.0


def _fsync_directory(directory: Path) -> None:
    # A new file's directory entry is durable only once the directory itself is synced.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """This process's side of the spool directory: append, status, replay."""

    def __init__(self, directory: Path, max_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()  # appends and seals of this process's segments
        self._replay_lock = threading.Lock()  # one replay at a time in this process
        self._active: tuple[Path, int] | None = None  # segment being appended to, its fd
        self._sealed: list[tuple[Path, int]] = []  # own segments awaiting replay, fd held
        self._unreplayed = 0  # records of this process's segments not replayed yet
        self._replayed = threading.Condition(self._lock)  # notified as _unreplayed falls
        # pending_bytes() as last read, plus what this process appended since (never less
        # than what this process's view of the files holds: replay only lowers it).
        self._pending_estimate = 0
        self._pending_read_at = float("-inf")  # time.monotonic() of that read

    # --- writing -------------------------------------------------------------------------

    def append(self, payload: dict[str, Any]) -> None:
        """Durably keep one delivery; raises `SpoolFull`. Returns only after fsync."""
        self.append_many([payload])

    def append_many(self, payloads: list[dict[str, Any]]) -> None:
        """Durably keep several deliveries, in order, with ONE write and ONE fsync (group
        fsync: requests that arrived together share it); all or none is acknowledged: raises
        `SpoolFull` when they do not all fit. Returns only after the fsync."""
        self.append_encoded([encode_payload(payload) for payload in payloads])

    def append_encoded(self, payloads: list[bytes]) -> None:
        """`append_many` for payloads already encoded (`encode_payload`'s bytes): the fast
        ingest path builds them without a dict (docs/decisions/0011-spool-first-ingest.md)."""
        now = self._clock()
        records = b"".join(frame_record(payload, now) for payload in payloads)
        with self._lock:
            if not self._has_room(len(records)):
                raise SpoolFull(f"the spool holds its maximum of {self.max_bytes} bytes")
            if self._active is None:
                self._active = self._new_segment()
            _, fd = self._active
            view = memoryview(records)
            try:
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                self._pending_estimate += len(records) - len(view)
            self._unreplayed += len(payloads)

    def _has_room(self, size: int) -> bool:
        """Whether `size` more bytes fit under `max_bytes` (caller holds `_lock`). The files
        are read (`pending_bytes`: a directory listing, a stat and a cursor read per segment,
        each a system call that releases the GIL) at most once a second, and whenever the
        estimate says "full": the estimate only over-counts this process's side (replay
        lowers the real figure), so a refusal is always checked against the files; what
        other processes appended within the last second is what it may miss."""
        now = time.monotonic()
        if (now - self._pending_read_at >= PENDING_REREAD_SECONDS
                or self._pending_estimate + size > self.max_bytes):
            self._pending_estimate = self.pending_bytes()
            self._pending_read_at = now
        return self._pending_estimate + size <= self.max_bytes

    def unreplayed(self) -> int:
        """Records this process appended that are not replayed yet (its own backlog: no
        file is read)."""
        return self._unreplayed

    def wait_for_room(self, max_records: int, timeout: float) -> bool:
        """Whether this process's backlog is (or, within `timeout`, falls) below
        `max_records`."""
        with self._replayed:
            return self._replayed.wait_for(lambda: self._unreplayed < max_records, timeout)

    def _new_segment(self) -> tuple[Path, int]:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"spool-{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}.log"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_directory(self.directory)
        return path, fd

    # --- reading -------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """Every segment in the directory (any process's), oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(SEGMENT_GLOB), key=lambda p: p.name)

    def has_backlog(self) -> bool:
        """Whether anything waits for replay: new deliveries then queue behind it, so that
        they reach the database in the order they arrived."""
        return bool(self.segments())

    def pending_bytes(self) -> int:
        """Bytes not yet replayed (file sizes only: cheap enough for every append)."""
        total = 0
        for segment in self.segments():
            try:
                total += segment.stat().st_size - read_cursor(segment)
            except FileNotFoundError:
                continue
        return total

    def status(self) -> SpoolStatus:
        records, size, oldest = 0, 0, None
        for segment in self.segments():
            cursor = read_cursor(segment)
            for record in read_records(segment, cursor, headers_only=True):
                records += 1
                oldest = record.spooled_at if oldest is None else min(oldest, record.spooled_at)
            try:
                size += segment.stat().st_size - cursor
            except FileNotFoundError:
                continue
        return SpoolStatus(records, size, oldest)

    # --- replay --------------------------------------------------------------------------

    def replay(self, deliver: Callable[[dict[str, Any]], None]) -> int:
        """Hand every spooled record, oldest segment first and in order within each, to
        `deliver`; a record counts as replayed when `deliver` returns, and replay stops at
        the first exception (the database went away again), to resume from there later.
        Returns the number of records replayed."""
        def deliver_each(batch: list[SpooledRecord]) -> None:
            for record in batch:
                deliver(record.payload)

        return self.replay_batches(deliver_each, 1)

    def replay_batches(self, deliver_batch: Callable[[list[SpooledRecord]], None],
                       max_batch: int) -> int:
        """As `replay`, in batches of up to `max_batch` consecutive records of one segment:
        a batch counts as replayed when `deliver_batch` returns (the cursor moves past all of
        it at once), so `deliver_batch` must keep all of it or none (one transaction): a
        crash between its commit and the cursor re-delivers the batch, which the database's
        dedupe constraints absorb."""
        with self._replay_lock:
            with self._lock:
                # New deliveries go to a fresh segment while this one is replayed.
                if self._active is not None:
                    self._sealed.append(self._active)
                    self._active = None
                own = {path: fd for path, fd in self._sealed}
            replayed = 0
            for segment in self.segments():
                fd = own.get(segment)
                if fd is None:
                    fd = self._claim_orphan(segment)
                    if fd is None:
                        continue  # a live process's segment: it replays its own
                try:
                    offset = read_cursor(segment)
                    batch: list[SpooledRecord] = []
                    for record in read_records(segment, offset):
                        batch.append(record)
                        if len(batch) >= max_batch:
                            replayed += self._deliver_batch(segment, batch, deliver_batch,
                                                            segment in own)
                            batch = []
                    if batch:
                        replayed += self._deliver_batch(segment, batch, deliver_batch,
                                                        segment in own)
                except BaseException:
                    if segment not in own:
                        os.close(fd)
                    raise
                self._remove(segment, fd)
            return replayed

    def _deliver_batch(self, segment: Path, batch: list[SpooledRecord],
                       deliver_batch: Callable[[list[SpooledRecord]], None], own: bool) -> int:
        deliver_batch(batch)
        write_cursor(segment, batch[-1].end_offset)
        if own:
            with self._lock:
                self._unreplayed = max(0, self._unreplayed - len(batch))
                self._replayed.notify_all()
        return len(batch)

    def _claim_orphan(self, segment: Path) -> int | None:
        try:
            fd = os.open(segment, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if not segment.exists():  # replayed and removed by another process meanwhile
            os.close(fd)
            return None
        return fd

    def _remove(self, segment: Path, fd: int) -> None:
        # The segment goes before its lock is released, so no other process claims it.
        segment.with_name(segment.name + ACK_SUFFIX).unlink(missing_ok=True)
        segment.unlink(missing_ok=True)
        os.close(fd)
        with self._lock:
            self._sealed = [(p, f) for p, f in self._sealed if p != segment]

    def close(self) -> None:
        """Release this process's locks; unreplayed segments stay for any process to replay."""
        with self._lock:
            for _, fd in [*self._sealed, *([self._active] if self._active else [])]:
                os.close(fd)
            self._sealed, self._active = [], None
