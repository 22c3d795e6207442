"""The chaos suite's moving parts: the service's OS processes and a round-robin TCP proxy in
front of the web processes (its private PostgreSQL cluster is harness/private_postgres.py).

Nothing here is shared with anything else on the machine: the cluster lives in a temporary
directory on its own port (stopping it affects nobody), every child runs in its own process
group and is killed at the end, even on error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from harness.private_postgres import free_port

CLI = [sys.executable, "-m", "whatsapp_helpdesk.cli"]


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str,
               interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not true after {timeout:.0f} s")


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False



# --- the service's processes -----------------------------------------------------------------


class Children:
    """The service's OS processes by name. Each is started with the same command and
    environment when restarted, in its own process group (SIGKILL reaches all of it)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.unexpected_exits: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with self.lock:
            self.specs[name] = (args, env)
            self._spawn(name)

    def _spawn(self, name: str) -> None:
        args, env = self.specs[name]
        with (self.log_dir / f"{name}.log").open("ab") as log:
            # cwd: the log directory, so that no `.env` of the checkout is read.
            self.procs[name] = subprocess.Popen(
                [*CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.log_dir, start_new_session=True)

    def kill(self, name: str) -> None:
        with self.lock:
            proc = self.procs.get(name)
            if proc is None:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self, name: str) -> None:
        with self.lock:
            self._spawn(name)

    def reap(self, expected_dead: set[str]) -> list[str]:
        """Names of processes that exited by themselves (not killed by the harness);
        recorded, and restarted as a process manager (systemd Restart=always) would."""
        died: list[str] = []
        with self.lock:
            for name, proc in self.procs.items():
                if name in expected_dead or proc.poll() is None:
                    continue
                self.unexpected_exits.append((name, proc.returncode))
                died.append(name)
                self._spawn(name)
        return died

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def stop_all(self) -> None:
        with self.lock:
            for proc in self.procs.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in self.procs.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self.procs.clear()

    def tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- one URL for the providers' webhooks -----------------------------------------------------


class RoundRobinProxy:
    """A TCP proxy in front of the web processes, as a load balancer would be: each new
    connection goes to the next backend; a backend that refuses the connection (killed,
    restarting) is skipped. A connection cut mid-request stays cut, as with a real proxy."""

    def __init__(self, backends: list[int]):
        self.backends = backends
        self.port = free_port()
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop)
        self._server = future.result(timeout=10)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    async def _handle(self, client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        for _ in range(len(self.backends)):
            port = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        if upstream is None:
            client_writer.close()
            return
        up_reader, up_writer = upstream

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    writer.close()

        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))
