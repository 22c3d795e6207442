"""`serve`'s supervision of its children (issue 11 item 1).

A child (web, worker, sandbox) that exits while `serve` runs is started again after an
exponential back-off (capped; back to the shortest once a child has run a while), each exit
and restart is logged, and the children's state is written, atomically replaced, to a JSON
file whose path the children get in `SUPERVISOR_STATE_FILE` (the web's `/healthz` shows it).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

STATE_FILE_ENV = "SUPERVISOR_STATE_FILE"

Spawn = Callable[[Sequence[str], dict[str, str]], "subprocess.Popen[bytes]"]


def _popen(argv: Sequence[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(list(argv), env=env)


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0  # monotonic
    restarts: int = 0
    crashes_in_a_row: int = 0
    last_exit_code: int | None = None
    last_exit_at: str | None = None  # ISO 8601, UTC
    restart_due: float | None = None  # monotonic; None while running

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "running": self.restart_due is None and self.process is not None,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "last_exit_at": self.last_exit_at,
        }


@dataclass
class Supervisor:
    env: dict[str, str]
    state_path: Path
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    # A child that ran this long before it exited is not crash-looping: its next back-off
    # starts from the shortest again.
    stable_after: float = 60.0
    spawn: Spawn = _popen
    monotonic: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str]) -> Child:
        child = Child(name=name, argv=list(argv))
        self.children.append(child)
        self._launch(child)
        return child

    def _launch(self, child: Child) -> None:
        child.process = self.spawn(child.argv, {**self.env, STATE_FILE_ENV: str(self.state_path)})
        child.started_at = self.monotonic()
        child.restart_due = None
        self.write_state()

    def backoff(self, crashes_in_a_row: int) -> float:
        doublings = min(max(crashes_in_a_row - 1, 0), 16)  # bounded: no float overflow
        return min(self.backoff_cap, self.backoff_base * 2.0 ** doublings)

    def tick(self) -> None:
        """Notice exited children, and start again those whose back-off is over."""
        now = self.monotonic()
        for child in self.children:
            if child.restart_due is None:
                assert child.process is not None
                code = child.process.poll()
                if code is None:
                    continue
                ran = now - child.started_at
                child.crashes_in_a_row = 1 if ran >= self.stable_after else (
                    child.crashes_in_a_row + 1)
                delay = self.backoff(child.crashes_in_a_row)
                child.last_exit_code = code
                child.last_exit_at = self.wall_clock().isoformat()
                child.restart_due = now + delay
                log.warning("serve.child_exited", child=child.name, pid=child.pid,
                            exit_code=code, ran_seconds=round(ran, 1),
                            restart_in_seconds=delay)
                self.write_state()
            elif now >= child.restart_due:
                old_pid = child.pid
                child.restarts += 1
                self._launch(child)
                log.warning("serve.child_restarted", child=child.name, old_pid=old_pid,
                            pid=child.pid, restarts=child.restarts)

    def write_state(self) -> None:
        """Replace the state file atomically: a reader sees the old or the new, never half."""
        state = {"supervisor_pid": os.getpid(),
                 "children": [child.state() for child in self.children]}
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent, prefix=".supervisor-",
                                   suffix=".json")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(state, out)
            os.replace(tmp, self.state_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every running child, then wait; a child that will not stop is killed."""
        running = [c.process for c in self.children
                   if c.process is not None and c.process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.state_path.unlink(missing_ok=True)


def read_state(path: str) -> dict[str, Any] | None:
    """The supervisor's last written state, or None when there is no supervisor."""
    if not path:
        return None
    try:
        state: dict[str, Any] = json.loads(Path(path).read_text())
        return state
    except (FileNotFoundError, json.JSONDecodeError):
        return None
