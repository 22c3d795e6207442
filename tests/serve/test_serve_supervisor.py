"""Issue 11 item 1: `serve` supervises its children instead of stopping when one exits.

The supervisor's rules on fake processes and a fake clock: a child that exits is started
again after an exponential back-off (capped, back to the shortest after a stable run), and
its state (pid, restarts, last exit) is in the state file that the web's /healthz shows.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.supervisor import STATE_FILE_ENV, Supervisor
from whatsapp_helpdesk.web.app import create_app

_pids = itertools.count(1000)


class FakeProcess:
    def __init__(self, argv: Sequence[str], env: dict[str, str]):
        self.argv, self.env = list(argv), env
        self.pid = next(_pids)
        self.returncode: int | None = None
        self.terminated = False

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True
        self.returncode = -15

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.returncode = -9


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _supervisor(tmp_path: Path, clock: Clock, spawned: list[FakeProcess]) -> Supervisor:
    def spawn(argv: Sequence[str], env: dict[str, str]) -> FakeProcess:
        spawned.append(FakeProcess(argv, env))
        return spawned[-1]

    return Supervisor(env={"A": "1"}, state_path=tmp_path / "children.json",
                      backoff_base=1.0, backoff_cap=8.0, stable_after=60.0,
                      spawn=spawn, monotonic=clock,  # type: ignore[arg-type]
                      wall_clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))


def _healthz(settings: Settings) -> dict:
    services = build_services(settings)

    async def main() -> dict:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get("/healthz")).json()  # type: ignore[no-any-return]

    try:
        return asyncio.run(main())
    finally:
        services.engine.dispose()


def _state(tmp_path: Path) -> dict:
    return {c["name"]: c for c in json.loads((tmp_path / "children.json").read_text())
            ["children"]}


def test_issue11_crashed_child_is_restarted_with_capped_exponential_backoff(tmp_path) -> None:
    clock, spawned = Clock(), []
    supervisor = _supervisor(tmp_path, clock, spawned)
    supervisor.start("web", ["web"])
    supervisor.start("worker", ["worker"])
    assert spawned[1].env[STATE_FILE_ENV] == str(tmp_path / "children.json")
    delays = []
    for _ in range(6):  # the worker crash-loops: it dies at once every time
        spawned[-1].returncode = 1
        supervisor.tick()
        crashed_at = clock.now
        before = len(spawned)
        while len(spawned) == before:
            clock.now += 0.25
            supervisor.tick()
        delays.append(clock.now - crashed_at)
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [p.argv for p in spawned[2:]] == [["worker"]] * 6
    worker = _state(tmp_path)["worker"]
    assert worker["restarts"] == 6 and worker["pid"] == spawned[-1].pid and worker["running"]
    assert worker["last_exit_code"] == 1
    assert worker["last_exit_at"] == "2026-01-01T00:00:00+00:00"
    assert _state(tmp_path)["web"]["restarts"] == 0  # the others are left alone


def test_issue11_backoff_starts_again_from_the_shortest_after_a_stable_run(tmp_path) -> None:
    clock, spawned = Clock(), []
    supervisor = _supervisor(tmp_path, clock, spawned)
    supervisor.start("worker", ["worker"])
    for _ in range(3):  # three quick crashes: the next wait would be 8 s
        spawned[-1].returncode = 1
        supervisor.tick()
        clock.now += 10
        supervisor.tick()
    clock.now += 120  # then it runs well for two minutes, and dies (SIGKILL)
    spawned[-1].returncode = -9
    supervisor.tick()
    assert _state(tmp_path)["worker"]["running"] is False
    assert _state(tmp_path)["worker"]["last_exit_code"] == -9
    clock.now += 1.0
    supervisor.tick()
    assert len(spawned) == 5 and _state(tmp_path)["worker"]["running"]


def test_issue11_stop_terminates_every_running_child_and_removes_the_state(tmp_path) -> None:
    clock, spawned = Clock(), []
    supervisor = _supervisor(tmp_path, clock, spawned)
    supervisor.start("web", ["web"])
    supervisor.start("worker", ["worker"])
    supervisor.stop()
    assert len(spawned) == 2  # else the next line would hold of nothing
    assert all(p.terminated for p in spawned)
    assert not (tmp_path / "children.json").exists()


def test_issue11_healthz_shows_the_supervised_children(tmp_path) -> None:
    clock, spawned = Clock(), []
    supervisor = _supervisor(tmp_path, clock, spawned)
    supervisor.start("worker", ["worker"])
    spawned[-1].returncode = -9
    supervisor.tick()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/h.db",
                        supervisor_state_file=str(tmp_path / "children.json"),
                        _env_file=None)  # type: ignore[call-arg]
    health = _healthz(settings)
    assert health["status"] == "ok"
    assert health["children"] == [{
        "name": "worker", "pid": spawned[0].pid, "running": False, "restarts": 0,
        "last_exit_code": -9, "last_exit_at": "2026-01-01T00:00:00+00:00"}]


def test_issue11_healthz_without_serve_has_no_children(tmp_path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/h.db",
                        _env_file=None)  # type: ignore[call-arg]
    health = _healthz(settings)
    assert health["status"] == "ok" and "children" not in health


def test_issue11_soak_an_hour_of_quiet_then_a_crash_is_restarted_at_once(tmp_path) -> None:
    """`serve`'s loop through an hour of quiet (a tick every 0.5 s, on a fake clock): nothing
    restarted, nothing grows; then a crash is met with the shortest back-off."""
    clock, spawned = Clock(), []
    supervisor = _supervisor(tmp_path, clock, spawned)
    for name in ("sandbox", "web", "worker"):
        supervisor.start(name, [name])
    for _ in range(7200):
        clock.now += 0.5
        supervisor.tick()
    assert len(spawned) == 3
    assert all(c["restarts"] == 0 and c["running"] for c in _state(tmp_path).values())
    spawned[2].returncode = -9
    supervisor.tick()
    clock.now += 1.0
    supervisor.tick()
    assert len(spawned) == 4 and _state(tmp_path)["worker"]["restarts"] == 1
