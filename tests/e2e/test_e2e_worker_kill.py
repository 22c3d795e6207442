"""Reliability: SIGKILL workers in the middle of a burst; nothing lost, nothing doubled (R14)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess

import pytest
from harness.forked import cli_processes
from harness.stack import Stack

# On SQLite and PostgreSQL (tests/conftest.py): claims and leases of killed workers.
pytestmark = pytest.mark.both_databases


def _worker(start: Callable[[list[str], dict[str, str]], BaseProcess], stack: Stack,
            *extra: str) -> BaseProcess:
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
    # `whatsapp-helpdesk worker` in a process of its own, forked from a server that has
    # imported the package once (harness/forked.py), rather than three `python -m` starts.
    return start(["worker", *extra], env)


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
    with cli_processes() as start:
        _burst_killed_then_restarted(start, stack, texts)
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == texts


def _burst_killed_then_restarted(start: Callable[[list[str], dict[str, str]], BaseProcess],
                                 stack: Stack, texts: list[str]) -> None:
    workers = [_worker(start, stack), _worker(start, stack)]  # several processes, one database
    # Kill once the burst is under way: the first message is in HubSpot, the rest in flight
    # or waiting (a fixed wait came too early on a busy machine, or too late on a fast one).
    deadline = time.monotonic() + 30
    while not any(t["messages"] for t in stack.tickets()):
        assert time.monotonic() < deadline, "the workers never published anything"
        time.sleep(0.05)
    for worker in workers:
        worker.kill()  # SIGKILL
        worker.join()
    published_before = sum(len(t["messages"]) for t in stack.tickets())
    assert published_before < len(texts), "the kill came too late to prove anything"
    stack.hubspot.delete("/_sandbox/faults")
    restarted = _worker(start, stack, "--once")
    restarted.join(timeout=60)
    assert restarted.exitcode == 0
