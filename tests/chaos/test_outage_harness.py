"""The SQLite outage of the test harness must never offer a reconnect an empty database.

A CI run failed when the spool was replayed into a fresh, empty SQLite file: restoring
used to remove the directory that stood in for the database and then rename the file
back, and a reconnect landing between the two created a new database at the path.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from harness.outage import DatabaseOutage
from sqlalchemy import create_engine


def test_a_reconnect_during_cut_and_restore_never_sees_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE installations (id INTEGER PRIMARY KEY)")
        setup.execute("INSERT INTO installations VALUES (1)")
    engine = create_engine(f"sqlite:///{path}")
    outage = DatabaseOutage(f"sqlite:///{path}", engine)
    seen_empty: list[str] = []
    stop = threading.Event()

    def reconnect_without_pause() -> None:
        while not stop.is_set():
            try:
                connection = sqlite3.connect(path, timeout=0.01)
            except sqlite3.OperationalError:
                continue  # unreachable: what an outage is for
            try:
                connection.execute("SELECT id FROM installations").fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    seen_empty.append(str(exc))
            finally:
                connection.close()

    threads = [threading.Thread(target=reconnect_without_pause) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(300):
            outage.cut()
            outage.restore()
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    assert seen_empty == []
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT id FROM installations").fetchall() == [(1,)]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("bridge.db-")) \
        == ["bridge.db"]
