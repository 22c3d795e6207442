"""A busy port (issue 15 item 8; R40, R41): `serve`, `web` and `sandbox` stop at once with
the port, the process holding it when it can be told, and the variable that moves it,
instead of waiting 30 s and naming another port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# Every variable the service reads: the test gives it a clean sandbox-mode environment.
_OURS = ("DATABASE_URL", "PUBLIC_URL", "SECRET_KEY", "HOST", "PORT", "HUBSPOT_", "AIRCALL_",
         "SANDBOX_", "TICKET_", "REORDER_", "WORKER_", "LOG_LEVEL")
# Generous for a loaded 2-core machine, far below the 30 s the old wait took.
QUICK = 15.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def holder() -> Iterator[socket.socket]:
    """A port held by this test process: listening, never answering."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


def _run(command: str, tmp_path: Path, **env: int) -> tuple[subprocess.CompletedProcess[str],
                                                            float]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith(_OURS)}
    clean |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
              "PORT": str(_free_port()), "SANDBOX_HUBSPOT_PORT": str(_free_port()),
              "SANDBOX_AIRCALL_PORT": str(_free_port())}
    clean |= {name: str(value) for name, value in env.items()}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "whatsapp_helpdesk.cli", command], env=clean,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("command", "variable"),
    [
        ("web", "PORT"),
        ("sandbox", "SANDBOX_HUBSPOT_PORT"),
        ("sandbox", "SANDBOX_AIRCALL_PORT"),
        ("serve", "PORT"),
        ("serve", "SANDBOX_HUBSPOT_PORT"),
        ("serve", "SANDBOX_AIRCALL_PORT"),
    ],
)
def test_R41_busy_port_fails_at_once_naming_port_holder_and_variable(
    tmp_path: Path, holder: socket.socket, command: str, variable: str
) -> None:
    port = holder.getsockname()[1]
    done, took = _run(command, tmp_path, **{variable: port})

    assert done.returncode == 2, done.stderr
    assert took < QUICK
    message = done.stderr
    assert f"Port {port}" in message
    assert f"process {os.getpid()}" in message  # the holder: this test's own process
    assert f"{variable}=" in message
