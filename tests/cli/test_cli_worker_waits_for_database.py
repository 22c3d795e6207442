"""A worker started while its database is unreachable waits for it (R53), instead of exiting
with a traceback (rc 1; seen 13 times in one chaos run, where `serve`'s supervisor restarted
it over and over)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness.outage import DatabaseOutage
from harness.spawned import until

from whatsapp_helpdesk.db.session import make_engine

_OURS = ("DATABASE_URL", "PUBLIC_URL", "SECRET_KEY", "HOST", "PORT", "HUBSPOT_", "AIRCALL_",
         "SANDBOX_", "TICKET_", "REORDER_", "WORKER_", "LOG_LEVEL")


@pytest.mark.slow(seconds=9)
def test_R53_a_worker_started_during_an_outage_waits_then_works(
    migrated_database_url: str, tmp_path: Path,
) -> None:
    engine = make_engine(migrated_database_url)
    outage = DatabaseOutage(migrated_database_url, engine)
    outage.cut()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_OURS)}
    # As tests/conftest.py sets it: under SCHED_IDLE it would wait behind the test processes.
    env |= {"DATABASE_URL": migrated_database_url, "WORKER_CPU_POLICY": "normal"}
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "whatsapp_helpdesk.cli", "worker"], env=env, cwd=tmp_path,
            stdout=out, stderr=subprocess.STDOUT)
    try:
        until(lambda: log.read_text().count("worker.waiting_for_database") >= 2
              or worker.poll() is not None, timeout=60, what="the worker's second try", log=log)
        assert worker.poll() is None, log.read_text()[-2000:]
        assert "worker.started" not in log.read_text()

        outage.restore()
        until(lambda: "worker.started" in log.read_text() or worker.poll() is not None,
              timeout=60, what="the worker to start once the database answers", log=log)
        assert worker.poll() is None, log.read_text()[-2000:]
    finally:
        if outage.is_down:
            outage.restore()
        worker.terminate()
        worker.wait(timeout=30)
        engine.dispose()
