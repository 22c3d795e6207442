"""R53: `serve` started while its database is unreachable still starts (a real deployment).

Its web process is what keeps webhooks in the spool during an outage (or Aircall disables the
webhook after repeated failures), so a `serve` restarted by a process manager in the middle of
an outage must bring the web process up, and its worker must wait for the database rather than
exit. Before, `serve` migrated first and exited with a traceback: no web process at all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from harness.outage import DatabaseOutage
from harness.private_postgres import free_port
from harness.spawned import NOT_INHERITED, children, until

from whatsapp_helpdesk.db.session import make_engine

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing here may be called at start


@pytest.mark.slow(seconds=12)
def test_R53_serve_started_during_an_outage_serves_and_its_worker_waits(
    migrated_database_url: str, tmp_path: Path,
) -> None:
    engine = make_engine(migrated_database_url)
    outage = DatabaseOutage(migrated_database_url, engine)
    outage.cut()
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items()
           if not NOT_INHERITED.match(key) and not key.startswith(("WORKER_", "LOG_LEVEL"))}
    env |= {"DATABASE_URL": migrated_database_url, "PORT": str(port), "PUBLIC_URL": web,
            "SECRET_KEY": "a-long-random-value-for-this-test-only-0123456789",
            "HUBSPOT_CLIENT_ID": "client", "HUBSPOT_CLIENT_SECRET": "secret",
            "AIRCALL_CLIENT_ID": "client", "AIRCALL_CLIENT_SECRET": "secret",
            "HUBSPOT_API_BASE": NOWHERE, "HUBSPOT_AUTH_BASE": NOWHERE,
            "AIRCALL_API_BASE": NOWHERE, "AIRCALL_AUTH_BASE": NOWHERE, "LOG_LEVEL": "INFO",
            # As tests/conftest.py sets it: under SCHED_IDLE its worker would wait behind
            # the test processes.
            "WORKER_CPU_POLICY": "normal"}
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        serve = subprocess.Popen(
            [sys.executable, "-m", "whatsapp_helpdesk.cli", "serve"], cwd=tmp_path, env=env,
            stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        until(lambda: "Stop with Ctrl-C." in log.read_text() or serve.poll() is not None,
               timeout=60, what="`serve` to start", log=log)
        assert serve.poll() is None, log.read_text()[-3000:]
        assert "serve.started_without_database" in log.read_text()
        worker = until(lambda: children(web).get("worker"), timeout=30,
                        what="/healthz to list the worker", log=log)
        until(lambda: "worker.waiting_for_database" in log.read_text(), timeout=30,
               what="the worker to wait for the database", log=log)
        assert worker["running"] and worker["restarts"] == 0

        outage.restore()
        until(lambda: "worker.started" in log.read_text(), timeout=60,
               what="the worker to start once the database answers", log=log)
        assert children(web)["worker"]["restarts"] == 0, log.read_text()[-3000:]
    finally:
        if outage.is_down:
            outage.restore()
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=30)
        engine.dispose()
