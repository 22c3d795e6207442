"""Issue 17 item 2: bench/ingest.py polls "are the round's deliveries stored yet?" every 20 ms
while the drain stores them. The poll was a count over every Aircall row of the run, on the
server the drain writes to (seen in pg_stat_activity under load, and taken for the drain's):
its cost grew with the table. A poll now does a constant amount of work until the rows can
all be there (SQLite's virtual-machine steps counted here), and counts only one round's rows."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path
from types import ModuleType

from sqlalchemy import Engine, create_engine, event, text

BENCH = Path(__file__).resolve().parents[2] / "bench" / "stored_rows.py"


def _probe_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_stored_rows", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE webhook_events (id INTEGER PRIMARY KEY, "
                                "source VARCHAR(16) NOT NULL, scope VARCHAR(100) NOT NULL, "
                                "dedupe_key VARCHAR(200) NOT NULL, "
                                "UNIQUE (source, scope, dedupe_key))"))
    return engine


def _insert(engine: Engine, first: int, count: int, source: str = "aircall") -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO webhook_events (source, scope, dedupe_key) "
                                "VALUES (:source, 'webhook:x', :key)"),
                           [{"source": source, "key": f"k{i}"} for i in range(first,
                                                                              first + count)])


class _Steps:
    """SQLite virtual-machine instructions run by the engine's connections meanwhile."""

    def __init__(self, engine: Engine) -> None:
        self.steps = 0
        event.listen(engine, "connect", self._watch)
        engine.dispose()

    def _watch(self, dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_progress_handler(self._count, 100)

    def _count(self) -> int:
        self.steps += 100
        return 0


def test_issue17_the_bench_polls_stored_rows_without_counting_the_table(tmp_path: Path) -> None:
    probe = _probe_module()
    engine = _engine(tmp_path / "bench.sqlite3")
    _insert(engine, 0, 20_000)  # earlier rounds
    stored = probe.StoredRows(engine)
    assert stored.floor_rows == 20_000
    _insert(engine, 20_000, 300)  # this round, so far
    _insert(engine, 0, 5, source="hubspot")  # not Aircall's: not counted
    steps = _Steps(engine)

    polls_before = steps.steps
    assert not stored.reached(20_000 + 1_000)
    # Before: a count over the 20,300 Aircall rows (~10^5 steps) at every poll.
    assert steps.steps - polls_before < 2_000, steps.steps - polls_before

    _insert(engine, 20_300, 700)
    polls_before = steps.steps
    assert stored.reached(20_000 + 1_000)
    # Counting one round's rows, not the run's.
    assert steps.steps - polls_before < 20_000, steps.steps - polls_before
    assert not stored.reached(20_000 + 1_001)
    assert stored.settle() == 21_000
    assert stored.reached(21_000)
