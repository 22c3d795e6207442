"""What the tests that start the service's own processes (`serve`, `worker`) share: the
environment they do not pass on, a wait on a condition that shows the process's log when it
times out, and the supervisor's view of its children on `/healthz`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

# Our settings, which the test sets itself: none may leak in from the developer's shell.
NOT_INHERITED = re.compile(r"^(HUBSPOT_|AIRCALL_|DATABASE_URL|PUBLIC_URL|SECRET_KEY|HOST$|PORT$"
                           r"|SANDBOX_|SUPERVISOR_)")


def children(web: str) -> dict[str, dict[str, Any]]:
    """`serve`'s children by name, as /healthz lists them ({} until it answers)."""
    try:
        health = httpx.get(f"{web}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return {child["name"]: child for child in health.get("children", [])}


def until(condition: Callable[[], Any], *, timeout: float, what: str, log: Path) -> Any:
    """The condition's first truthy value, polled every 50 ms; past the timeout the test fails
    with the end of the process's log."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{log.read_text()[-3000:]}",
                        pytrace=False)
        time.sleep(0.05)
    return value
