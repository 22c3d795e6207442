"""Reliability: SIGKILL workers in the middle of a burst; nothing lost, nothing doubled (R14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from harness.stack import Stack

# On SQLite and PostgreSQL (tests/conftest.py): claims and leases of killed workers.
pytestmark = pytest.mark.both_databases


def _worker(stack: Stack, *extra: str) -> subprocess.Popen[bytes]:
    settings = stack.settings
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "PUBLIC_URL": settings.public_url,
        "SANDBOX_HUBSPOT_PORT": str(settings.sandbox_hubspot_port),
        "SANDBOX_AIRCALL_PORT": str(settings.sandbox_aircall_port),
        "WORKER_LEASE_SECONDS": "2",
        "WORKER_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen([sys.executable, "-m", "whatsapp_helpdesk.cli", "worker", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow(seconds=12)
def test_R14_sigkill_workers_mid_burst_loses_and_duplicates_nothing(stack: Stack) -> None:
    stack.connect()
    # HubSpot answers slowly, so the kill lands while publishes are in flight.
    stack.hubspot.post("/_sandbox/faults", json={
        "path_prefix": "/conversations/custom-channels/2026-03", "method": "POST",
        "mode": "slow", "delay_seconds": 0.7, "times": None})
    texts = [f"message {i}" for i in range(8)]
    for text in texts:
        stack.customer_says(text)
    stack.wait_deliveries()
    workers = [_worker(stack), _worker(stack)]  # several processes on one database
    # Kill once the burst is under way: the first message is in HubSpot, the rest in flight
    # or waiting (a fixed wait came too early on a busy machine, or too late on a fast one).
    deadline = time.monotonic() + 30
    while not any(t["messages"] for t in stack.tickets()):
        assert time.monotonic() < deadline, "the workers never published anything"
        time.sleep(0.05)
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    published_before = sum(len(t["messages"]) for t in stack.tickets())
    assert published_before < len(texts), "the kill came too late to prove anything"
    stack.hubspot.delete("/_sandbox/faults")
    restarted = _worker(stack, "--once")
    assert restarted.wait(timeout=60) == 0
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == texts
