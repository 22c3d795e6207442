"""The webhook spool's file format and replay bookkeeping (R53): records are fsynced before
`append` returns, a torn last record (a crash mid-write) is ignored, the spool is bounded,
replay is in order and resumes from its cursor, and a dead process's segment is replayed by
a live one while a live process's segment is left to it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from whatsapp_helpdesk import spool as spool_module
from whatsapp_helpdesk.spool import Spool, SpoolFull, read_cursor, read_records


def _payload(i: int) -> dict[str, Any]:
    return {"source": "aircall", "body": f"message {i}"}


def _replay_all(spool: Spool) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    spool.replay(seen.append)
    return seen


def test_R53_append_fsyncs_each_record_before_returning(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path, 1_000_000)
    synced: list[tuple[int, int]] = []  # (inode, size of that file when fsync was called)
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        status = os.fstat(fd)
        synced.append((status.st_ino, status.st_size))
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", recording_fsync)
    spool.append(_payload(1))
    [segment] = spool.segments()
    size_after_first = segment.stat().st_size
    spool.append(_payload(2))

    inode = segment.stat().st_ino
    # Each append synced the segment holding its own record, before returning.
    assert [size for ino, size in synced if ino == inode] == [
        size_after_first, segment.stat().st_size]
    spool.close()


def test_R53_records_come_back_in_order_and_the_segment_goes_after_replay(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    for i in range(5):
        spool.append(_payload(i))

    assert spool.status().records == 5
    assert _replay_all(spool) == [_payload(i) for i in range(5)]
    assert spool.segments() == [] and list(tmp_path.iterdir()) == []
    assert spool.status().records == 0 and not spool.has_backlog()


@pytest.mark.parametrize("cut", [1, 9, 20, 25])
def test_R53_a_torn_last_record_is_ignored(tmp_path: Path, cut: int) -> None:
    spool = Spool(tmp_path, 1_000_000)
    for i in range(3):
        spool.append(_payload(i))
    [segment] = spool.segments()
    spool.close()
    # A crash mid-write of the third record: its tail never reached the disk.
    with segment.open("r+b") as handle:
        handle.truncate(segment.stat().st_size - cut)

    assert [r.payload for r in read_records(segment)] == [_payload(0), _payload(1)]
    assert Spool(tmp_path, 1_000_000).status().records == 2
    assert _replay_all(Spool(tmp_path, 1_000_000)) == [_payload(0), _payload(1)]


def test_R53_a_corrupt_record_ends_the_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    spool.append(_payload(0))
    spool.append(_payload(1))
    [segment] = spool.segments()
    spool.close()
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0x01  # still valid JSON ("aircall" → "aircaml"), but not its CRC

    segment.write_bytes(bytes(data))

    assert [r.payload for r in read_records(segment)] == [_payload(0)]


def test_R53_the_spool_is_bounded_and_frees_room_when_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 300)
    kept = 0
    with pytest.raises(SpoolFull):
        for i in range(100):
            spool.append(_payload(i))
            kept += 1
    assert 0 < kept < 100
    assert spool.pending_bytes() <= 300

    assert _replay_all(spool) == [_payload(i) for i in range(kept)]
    spool.append(_payload(999))  # room again
    assert _replay_all(spool) == [_payload(999)]


def test_R53_replay_stops_at_a_failure_and_resumes_at_the_same_record(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    for i in range(4):
        spool.append(_payload(i))
    delivered: list[dict[str, Any]] = []

    def database_goes_away_at_the_third(payload: dict[str, Any]) -> None:
        if payload == _payload(2):
            raise ConnectionError("database unreachable")
        delivered.append(payload)

    with pytest.raises(ConnectionError):
        spool.replay(database_goes_away_at_the_third)
    [segment] = spool.segments()
    assert read_cursor(segment) > 0

    spool.replay(delivered.append)
    # Exactly once each, in order.
    assert delivered == [_payload(i) for i in range(4)]


def test_R53_a_crash_between_delivery_and_cursor_redoes_only_that_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, 1_000_000)
    for i in range(3):
        spool.append(_payload(i))
    delivered: list[dict[str, Any]] = []
    real_write_cursor = spool_module.write_cursor

    def crash_on_second_cursor(segment: Path, offset: int) -> None:
        if len(delivered) == 2:
            raise SystemExit("killed")
        real_write_cursor(segment, offset)

    monkeypatch.setattr(spool_module, "write_cursor", crash_on_second_cursor)
    with pytest.raises(SystemExit):
        spool.replay(delivered.append)
    monkeypatch.setattr(spool_module, "write_cursor", real_write_cursor)
    spool.close()  # the process died: its locks are gone

    Spool(tmp_path, 1_000_000).replay(delivered.append)
    # The second record is delivered again (the database's dedupe absorbs it); no other.
    assert delivered == [_payload(0), _payload(1), _payload(1), _payload(2)]


def test_R53_a_dead_process_segment_is_replayed_by_another_a_live_one_is_not(
    tmp_path: Path,
) -> None:
    dead, alive, replayer = (Spool(tmp_path, 1_000_000) for _ in range(3))
    dead.append(_payload(1))
    alive.append(_payload(2))
    dead.close()  # as when its process exits: the segment's lock is released

    assert _replay_all(replayer) == [_payload(1)]
    assert len(replayer.segments()) == 1  # the live process's own, left to it
    assert _replay_all(alive) == [_payload(2)]
    assert replayer.segments() == []
    alive.close()


def test_R53_a_killed_web_process_segment_is_replayed_by_a_live_one(tmp_path: Path) -> None:
    """Across real processes: while the writer lives its segment is its own; once it is
    SIGKILLed (no clean-up at all), another process replays what it had acknowledged."""
    import signal
    import subprocess
    import sys

    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from pathlib import Path\n"
         "from whatsapp_helpdesk.spool import Spool\n"
         "spool = Spool(Path(sys.argv[1]), 1_000_000)\n"
         "for i in range(3):\n"
         "    spool.append({'source': 'aircall', 'body': f'message {i}'})\n"
         "print('spooled', flush=True)\n"
         "time.sleep(120)\n",
         str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "spooled"
        survivor = Spool(tmp_path, 1_000_000)
        assert _replay_all(survivor) == []  # the writer is alive: its segment is left to it
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)

        assert _replay_all(survivor) == [_payload(i) for i in range(3)]
        assert survivor.segments() == []
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(timeout=10)


# --- Issue 17 items 1, 2 (decision 0011): group fsync and batched replay --------------------


def test_issue17_append_many_keeps_a_group_with_one_write_and_one_fsync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path, 1_000_000)
    spool.append(_payload(0))  # the segment (and its directory entry) exists already
    synced: list[int] = []  # size of the segment when each fsync was called
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", recording_fsync)
    spool.append_many([_payload(i) for i in range(1, 6)])

    [segment] = spool.segments()
    # One fsync for the five, once all five were written.
    assert synced == [segment.stat().st_size]
    assert [r.payload for r in read_records(segment)] == [_payload(i) for i in range(6)]
    assert spool.unreplayed() == 6
    spool.close()


def test_issue17_a_group_that_does_not_fit_is_refused_whole(tmp_path: Path) -> None:
    one = len(spool_module.encode_record(_payload(1), 0.0))
    spool = Spool(tmp_path, 3 * one)
    spool.append_many([_payload(1), _payload(2)])
    with pytest.raises(SpoolFull):
        spool.append_many([_payload(3), _payload(4)])
    assert [r.payload for r in read_records(spool.segments()[0])] == [_payload(1), _payload(2)]
    assert spool.unreplayed() == 2
    spool.close()


def test_issue17_batched_replay_moves_the_cursor_past_whole_batches_only(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1_000_000)
    spool.append_many([_payload(i) for i in range(7)])
    batches: list[list[dict[str, Any]]] = []

    def fail_on_third(batch: list[Any]) -> None:
        if len(batches) == 2:
            raise ConnectionError("database gone")
        batches.append([record.payload for record in batch])

    with pytest.raises(ConnectionError):
        spool.replay_batches(fail_on_third, 3)
    assert batches == [[_payload(0), _payload(1), _payload(2)],
                       [_payload(3), _payload(4), _payload(5)]]
    [segment] = spool.segments()
    # The failed batch is not acknowledged: the next replay starts at its first record.
    assert [r.payload for r in read_records(segment, read_cursor(segment))] == [_payload(6)]
    assert spool.unreplayed() == 1

    rest: list[dict[str, Any]] = []
    assert spool.replay_batches(lambda b: rest.extend(r.payload for r in b), 3) == 1
    assert rest == [_payload(6)] and spool.segments() == [] and spool.unreplayed() == 0


def test_issue17_wait_for_room_returns_once_the_replay_frees_some(tmp_path: Path) -> None:
    import threading

    spool = Spool(tmp_path, 1_000_000)
    spool.append_many([_payload(i) for i in range(4)])
    assert not spool.wait_for_room(4, timeout=0.01)
    waited: list[bool] = []
    waiter = threading.Thread(target=lambda: waited.append(spool.wait_for_room(4, timeout=30)))
    waiter.start()
    spool.replay_batches(lambda batch: None, 2)
    waiter.join(30)
    assert waited == [True]


def test_issue17_a_replayed_batch_costs_no_fsync_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain's durable step is the database's commit; its cursor only saves re-doing
    batches the dedupe absorbs (the crash test above). Its fsync was a second per batch,
    one more wait of the single drain thread (issue 17 item 2). A cursor written without
    it still moves past whole batches only, and replay resumes from it."""
    spool = Spool(tmp_path, 1_000_000)
    spool.append_many([_payload(i) for i in range(6)])
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", recording_fsync)
    seen: list[dict[str, Any]] = []

    def two_then_fail(batch: list[Any]) -> None:
        if len(seen) == 4:
            raise ConnectionError("database gone")
        seen.extend(record.payload for record in batch)

    with pytest.raises(ConnectionError):
        spool.replay_batches(two_then_fail, 2)
    assert synced == []  # two batches replayed: no fsync (one each before)
    [segment] = spool.segments()
    assert [r.payload for r in read_records(segment, read_cursor(segment))] == [
        _payload(4), _payload(5)]
    spool.close()


def test_issue17_a_burst_of_appends_reads_the_spool_directory_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound is checked on every append, but the directory (a listing, a stat and a
    cursor read per segment: system calls that hand the GIL to the event loop and back, in
    the thread that acknowledges every webhook) is read at most once a second: in between,
    the size last read plus what this process appended stands in for it (issue 17 item 1).
    Every append of the burst read it before."""
    monkeypatch.setattr(spool_module, "PENDING_REREAD_SECONDS", 3600.0, raising=False)
    spool = Spool(tmp_path, 1_000_000)
    reads: list[int] = []
    real_segments = spool.segments

    def counting_segments() -> list[Path]:
        reads.append(1)
        return real_segments()

    monkeypatch.setattr(spool, "segments", counting_segments)
    for i in range(20):
        spool.append_many([_payload(i)])
    assert len(reads) == 1
    assert spool.unreplayed() == 20
    spool.close()


def test_issue17_the_size_estimate_never_refuses_an_append_the_files_have_room_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The estimate only over-counts (replay frees room it does not see), so a "full" from
    it is checked against the files: after a replay there is room again at once, not a
    second later; and a group that does not fit is still refused whole."""
    monkeypatch.setattr(spool_module, "PENDING_REREAD_SECONDS", 3600.0, raising=False)
    one = len(spool_module.encode_record(_payload(1), 0.0))
    spool = Spool(tmp_path, 3 * one)
    spool.append_many([_payload(1), _payload(2), _payload(3)])
    with pytest.raises(SpoolFull):
        spool.append_many([_payload(4)])
    assert _replay_all(spool) == [_payload(1), _payload(2), _payload(3)]
    spool.append_many([_payload(5), _payload(6)])  # room again, without waiting
    with pytest.raises(SpoolFull):
        spool.append_many([_payload(7), _payload(8)])
    assert _replay_all(spool) == [_payload(5), _payload(6)]
    spool.close()
