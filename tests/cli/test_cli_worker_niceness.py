"""Issue 17 item 2: the worker gives the CPU to the web's acknowledgements.

`whatsapp-helpdesk worker` (and so `serve`'s worker child) lowers its own scheduling
priority to WORKER_NICENESS (default 10) before it starts a thread, so every thread of it
runs at that niceness; 0 leaves it as started, and a process started nicer stays so. It
also takes the scheduling policy WORKER_CPU_POLICY (default `batch`: Linux's SCHED_BATCH, so
that its own wake-ups never take the core from a running web process; `idle`: SCHED_IDLE, a
waking web process takes the core from it at once; `normal`: as started), never a more
favoured one than it was started under.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from harness.pages import wait_for

# Every variable the service reads: the worker gets a clean sandbox-mode environment.
_OURS = ("DATABASE_URL", "PUBLIC_URL", "SECRET_KEY", "HOST", "PORT", "HUBSPOT_", "AIRCALL_",
         "SANDBOX_", "TICKET_", "REORDER_", "WORKER_", "LOG_LEVEL", "SPOOL_")


def _threads_stat(pid: int, field: int) -> list[int]:
    """One numeric field (`man 5 proc`, from 1) of each thread's /proc stat."""
    values = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
        values.append(int(stat.rsplit(")", 1)[1].split()[field - 3]))
    return values


def _threads_niceness(pid: int) -> list[int]:
    """The niceness of each thread of a process (Linux keeps it per thread)."""
    return _threads_stat(pid, 19)


def _threads_policy(pid: int) -> list[int]:
    """The scheduling policy of each thread of a process (os.SCHED_* values)."""
    return _threads_stat(pid, 41)


def _started_at(niceness: int) -> Callable[[], None] | None:
    return None if niceness == 0 else lambda: os.setpriority(os.PRIO_PROCESS, 0, niceness)


def _started_under(policy: int) -> Callable[[], None]:
    return lambda: os.sched_setscheduler(0, policy, os.sched_param(0))


def _start_worker(tmp_path: Path, settings: dict[str, str],
                  preexec: Callable[[], None] | None) -> subprocess.Popen[bytes]:
    """`whatsapp-helpdesk worker` with these settings, once its threads run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/worker.sqlite3", LOG_LEVEL="WARNING",
               # Nothing listens there: the worker's calls fail fast, it keeps running.
               SANDBOX_HUBSPOT_PORT="9", SANDBOX_AIRCALL_PORT="9", **settings)
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "whatsapp_helpdesk.cli", "worker"], cwd=tmp_path, env=env,
            stdout=sink, stderr=subprocess.STDOUT, preexec_fn=preexec,
            # A session, so a scheduling group (autogroup), of its own: under SCHED_IDLE it
            # would otherwise run only when the test processes beside it leave the core.
            start_new_session=True)
    # Up and working: the database migrated and the event loop's helper threads started.
    wait_for(lambda: worker.poll() is not None or len(_threads_policy(worker.pid)) > 1,
             timeout=60, what="the worker to start its threads")
    assert worker.poll() is None, log.read_text()[-3000:]
    return worker


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE") or not Path("/proc/self/task").is_dir(),
                    reason="Linux's scheduling policies, read from /proc")
@pytest.mark.parametrize(("setting", "started_under", "expected"), [
    (None, "SCHED_OTHER", "SCHED_BATCH"),  # the default
    ("idle", "SCHED_OTHER", "SCHED_IDLE"),
    ("normal", "SCHED_OTHER", "SCHED_OTHER"),  # as started
    ("batch", "SCHED_IDLE", "SCHED_IDLE"),  # never raised
], ids=["default", "idle", "normal", "never-raised"])
def test_issue17_the_worker_runs_every_thread_under_its_policy(
        tmp_path: Path, setting: str | None, started_under: str, expected: str) -> None:
    worker = _start_worker(
        tmp_path, {} if setting is None else {"WORKER_CPU_POLICY": setting},
        _started_under(getattr(os, started_under)))
    try:
        assert set(_threads_policy(worker.pid)) == {getattr(os, expected)}
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
@pytest.mark.parametrize(("setting", "started_at", "expected"), [
    (None, 0, 10),  # the default
    ("3", 0, 3),
    ("0", 0, 0),  # as started
    ("10", 12, 12),  # never raised: an unprivileged process could not undo it
], ids=["default", "three", "zero", "never-raised"])
def test_issue17_the_worker_runs_every_thread_at_its_niceness(
        tmp_path: Path, setting: str | None, started_at: int, expected: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OURS)}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/worker.sqlite3", LOG_LEVEL="WARNING",
               # Nothing listens there: the worker's calls fail fast, it keeps running.
               SANDBOX_HUBSPOT_PORT="9", SANDBOX_AIRCALL_PORT="9")
    if setting is not None:
        env["WORKER_NICENESS"] = setting
    log = tmp_path / "worker.log"
    with log.open("w") as sink:
        worker = subprocess.Popen(
            [sys.executable, "-m", "whatsapp_helpdesk.cli", "worker"], cwd=tmp_path, env=env,
            stdout=sink, stderr=subprocess.STDOUT, preexec_fn=_started_at(started_at),
            start_new_session=True)  # a scheduling group of its own: see _start_worker
    try:
        # Up and working: the database migrated and the event loop's helper threads started.
        wait_for(lambda: worker.poll() is not None or len(_threads_niceness(worker.pid)) > 1,
                 timeout=60, what="the worker to start its threads")
        assert worker.poll() is None, log.read_text()[-3000:]
        assert set(_threads_niceness(worker.pid)) == {expected}
    finally:
        worker.terminate()
        worker.wait(timeout=30)
