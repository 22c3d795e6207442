"""Benchmark: Aircall `message.received` ingest against a bare endpoint, side by side (R40, R44).

    .venv/bin/python bench/ingest.py [--seconds 5] [--rounds 3] [--connections 32]
        [--databases sqlite,postgresql] [--worker] [--hubspot-latency-ms 500]
        [--open-seconds 10] [--ab-niceness 0 10]

For each database: starts both sandboxes in a process of their own pinned to core 0 (they
stand for HubSpot and Aircall, elsewhere), installs and connects a number, then serves, each
in its own process pinned to core 1 (taskset), the bridge exactly as `whatsapp-helpdesk web`
runs it and a bare endpoint (one POST route answering a constant JSON body) on the same
server stack (`cli.web_server_options`). The load generator runs here, pinned to core 0: a
closed loop of keep-alive connections for `--seconds` against each (interleaved), then open
loops (`--open-seconds`, default `--seconds`) at half the bridge's measured maximum rate and
at half its stored (sustainable) rate for the ack p50/p99, with the CPU each party used
meanwhile and how long the web process waited for a core. Every request must be answered (a
missing answer is counted and reported).
With INGEST_MODE=spool (the default, decision 0011) a 2xx means "fsync'ed to the spool" and
the web process stores the spool in the database afterwards: after each bridge round the
bench waits until every 2xx so far is a row, and prints that "stored" rate too (rows over the
time from the round's start until the last one is in the database); the bare endpoint is run
only once the bridge has drained, so that the drain never shares its core. `--mode direct`
measures the group-commit path (answered after the database commit).
With `--worker` a `whatsapp-helpdesk worker` process runs on core 1 too, publishing what is
ingested (at its WORKER_NICENESS, default 10); `--hubspot-latency-ms` makes the sandbox
HubSpot answer that late; `--ab-niceness LOW HIGH` adds a half-rate run during which the
worker's niceness is switched every second, latencies split by it.
Read the ratios of one run, not the absolute numbers (2 shared cores).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness.stack import PORTAL, SUPPORT_FR, _bound_socket, connect_demo_number  # noqa: E402
from stored_rows import StoredRows  # noqa: E402
from worker_processes import drop_pg, fresh_pg  # noqa: E402

from whatsapp_helpdesk.bootstrap import build_services  # noqa: E402
from whatsapp_helpdesk.cli import install_on_sandbox, web_server_options  # noqa: E402
from whatsapp_helpdesk.db.migrate import upgrade  # noqa: E402
from whatsapp_helpdesk.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXE = ROOT / ".venv" / "bin" / "whatsapp-helpdesk"



def serve_bare(port: int) -> None:
    """The bare endpoint: the same server and options as the bridge, no work at all."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def webhook(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"result": "stored"})

    app = Starlette(routes=[Route("/webhooks/aircall", webhook, methods=["POST"])])
    settings = Settings(port=port, _env_file=None)
    uvicorn.run(app, **web_server_options(settings))


# --- the load generator: raw HTTP/1.1 keep-alive on asyncio, cheap enough for one core -----


class Load:
    def __init__(self, port: int, make_body: callable) -> None:  # type: ignore[valid-type]
        self.port = port
        self.make_body = make_body
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.unanswered = 0
        self.sent = 0
        self.sent_at: list[float] = []  # when each answered request was sent (perf_counter)

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        body = self.make_body()
        head = (f"POST /webhooks/aircall HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n")
        self.sent += 1
        start = time.perf_counter()
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("closed without a response")
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        self.latencies.append(time.perf_counter() - start)
        self.sent_at.append(start)
        status = int(status_line.split()[1])
        self.statuses[status] = self.statuses.get(status, 0) + 1

    async def closed_loop(self, connections: int, seconds: float) -> float:
        deadline = time.perf_counter() + seconds

        async def one() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                while time.perf_counter() < deadline:
                    try:
                        await self._request(reader, writer)
                    except (ConnectionError, asyncio.IncompleteReadError):
                        self.unanswered += 1
                        writer.close()
                        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            finally:
                writer.close()

        start = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
        return len(self.latencies) / (time.perf_counter() - start)

    async def open_loop(self, rate: float, seconds: float, connections: int) -> None:
        """Requests sent at a fixed rate whatever the answers (an idle connection is used,
        a new one opened when none is idle): latency includes any queueing."""
        idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        for _ in range(connections):
            idle.append(await asyncio.open_connection("127.0.0.1", self.port))
        tasks: set[asyncio.Task[None]] = set()

        async def fire() -> None:
            conn = idle.pop() if idle else await asyncio.open_connection("127.0.0.1", self.port)
            try:
                await asyncio.wait_for(self._request(*conn), 30)
                idle.append(conn)
            except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
                self.unanswered += 1
                conn[1].close()

        start = time.perf_counter()
        n = int(rate * seconds)
        for i in range(n):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(fire())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
        for _, writer in idle:
            writer.close()


def profile_in_process(label: str, settings: Settings, body: callable,  # type: ignore[valid-type]
                       deliveries: int, batch: int, drain: bool = False) -> None:
    """The webhook handler without HTTP, under cProfile: where a delivery's CPU goes; with
    `drain`, the drain's (the deliveries spooled first, then stored on this thread)."""
    import cProfile
    import pstats

    from whatsapp_helpdesk.logging_redaction import configure_logging
    from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

    configure_logging(settings.log_level)  # as the web process logs (LOG_LEVEL)
    spool = WebhookSpool(build_services(settings))
    spool.refresh_digests()
    if settings.ingest_mode == "spool":
        spool.start()  # the fast path spools only while a drain runs (in its own thread)
    bodies = [body() for _ in range(deliveries)]
    if drain:
        # The drain: the deliveries spooled as the fast path spools them, then stored by
        # the drain's own code (replay_once) on this thread: once timed (its CPU clock),
        # once more under the profiler.
        spool.stop()
        spool._thread = threading.current_thread()  # fast_path_record wants a drain
        for profiled in (False, True):
            for start in range(0, len(bodies), batch):
                records = [spool.fast_path_record(body()) for _ in bodies[start:start + batch]]
                assert all(records)
                assert spool.append_fast(records).status_code == 200  # type: ignore[arg-type]
            spool.last_fast_activity = float("-inf")
            profiler = cProfile.Profile()
            cpu, wall = time.thread_time(), time.perf_counter()
            if profiled:
                profiler.enable()
            stored = spool.replay_once()
            profiler.disable()
            cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
            assert stored == deliveries, stored
            print(f"{label}: drain {cpu / deliveries * 1000:.3f} ms CPU per stored delivery"
                  f"{' under the profiler' if profiled else ''}, {deliveries / wall:.0f} "
                  "rows/s (wall clock, fsync waits included)", flush=True)
        spool._thread = None
        spool.stop()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        return
    profiler = cProfile.Profile()
    cpu = time.thread_time()  # this thread's: the acknowledgements, not the drain
    profiler.enable()
    # In batches of `batch`, as the web process's writer takes them under load (0010), or
    # with INGEST_MODE=spool as the fast path acknowledges them (0011): spooled in groups.
    for start in range(0, len(bodies), batch):
        if settings.ingest_mode == "spool":
            records = [spool.fast_path_record(b) for b in bodies[start:start + batch]]
            assert all(records)
            assert spool.append_fast(records).status_code == 200  # type: ignore[arg-type]
            continue
        for outcome in spool.receive_aircall_batch(bodies[start:start + batch]):
            assert not isinstance(outcome, Exception) and outcome.status_code == 200
    profiler.disable()
    cpu = time.thread_time() - cpu
    spool.stop()
    print(f"{label}: {cpu / deliveries * 1000:.2f} ms CPU per delivery under the profiler "
          f"(batches of {batch})")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) of a process: on a loaded shared machine the
    CPU per request is steadier than the rate, which depends on the share of the core."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def waited_for_cpu_seconds(pid: int) -> float:
    """Time the threads of a process spent runnable but not running (Linux's schedstat,
    summed over its live threads): how long it queued for a core behind other work."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread gone meanwhile
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


# In --ab-niceness, past the highest niceness: Linux's SCHED_IDLE policy instead, and
# SCHED_BATCH at niceness 10 (WORKER_CPU_POLICY's `idle` and `batch`).
SCHED_IDLE_VALUE = 20
SCHED_BATCH_VALUE = 21


class AlternatingNiceness:
    """The worker's threads switched between two niceness values every `period` seconds
    while a fixed-rate run goes on (`--ab-niceness`): each request is then put down to the
    niceness the worker had when it was sent, so that the two are compared side by side in
    the same seconds of a noisy machine. Going back to the lower niceness needs root
    (CAP_SYS_NICE); the bench runs as root here."""

    def __init__(self, worker_pid: int, web_pid: int, values: tuple[int, int],
                 period: float, count_done: Callable[[], int] | None = None) -> None:
        self.worker_pid, self.web_pid = worker_pid, web_pid
        self.values, self.period = values, period
        self.switches: list[tuple[float, int]] = []  # (perf_counter, niceness from then on)
        self.web_waited = {value: 0.0 for value in values}  # the web's wait for a core
        self.elapsed = {value: 0.0 for value in values}
        # The worker's side of each value: its CPU, and outbox entries done (`count_done`).
        self.worker_cpu = {value: 0.0 for value in values}
        self.done = {value: 0 for value in values}
        self._count_done = count_done or (lambda: 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _renice(self, value: int) -> None:
        for task in Path(f"/proc/{self.worker_pid}/task").iterdir():
            with contextlib.suppress(OSError):  # a thread gone meanwhile
                tid = int(task.name)
                if value == SCHED_IDLE_VALUE:
                    os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
                    continue
                policy = os.SCHED_BATCH if value == SCHED_BATCH_VALUE else os.SCHED_OTHER
                if os.sched_getscheduler(tid) != policy:
                    os.sched_setscheduler(tid, policy, os.sched_param(0))
                os.setpriority(os.PRIO_PROCESS, tid, 10 if value == SCHED_BATCH_VALUE else value)

    def _run(self) -> None:
        turn = 0
        while True:
            value = self.values[turn % 2]
            self._renice(value)
            done, cpu = self._count_done(), cpu_seconds(self.worker_pid)
            started, waited = time.perf_counter(), waited_for_cpu_seconds(self.web_pid)
            self.switches.append((started, value))
            stopped = self._stop.wait(self.period)
            self.web_waited[value] += waited_for_cpu_seconds(self.web_pid) - waited
            self.elapsed[value] += time.perf_counter() - started
            self.worker_cpu[value] += cpu_seconds(self.worker_pid) - cpu
            self.done[value] += self._count_done() - done
            if stopped:
                return
            turn += 1

    def __enter__(self) -> AlternatingNiceness:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def worker_figures(self, value: int) -> str:
        elapsed = max(1e-9, self.elapsed[value])
        return (f"; the worker {self.worker_cpu[value] / elapsed:.2f} cores, "
                f"{self.done[value] / elapsed:.0f} outbox entries done/s")

    def split(self, load: Load) -> dict[int, list[float]]:
        """The answered requests' latencies by the worker's niceness when each was sent."""
        by_value: dict[int, list[float]] = {value: [] for value in self.values}
        starts = [at for at, _ in self.switches]
        for sent, latency in zip(load.sent_at, load.latencies, strict=True):
            index = bisect.bisect_right(starts, sent) - 1
            if index >= 0:
                by_value[self.switches[index][1]].append(latency)
        return by_value


class AlternatingPause(AlternatingNiceness):
    """`--ab-worker`: the worker stopped (SIGSTOP, value 1) and let run (SIGCONT, value 0)
    every `period` seconds instead of reniced: what the worker's presence does to the
    acknowledgements, side by side in the same stretch of a noisy machine. A worker
    stopped inside a write transaction holds SQLite's lock meanwhile: the drain waits then,
    the acknowledgements do not (they never wait on the drain below the backlog bound)."""

    def _renice(self, value: int) -> None:
        os.kill(self.worker_pid, signal.SIGSTOP if value else signal.SIGCONT)

    def __exit__(self, *_: object) -> None:
        super().__exit__()
        os.kill(self.worker_pid, signal.SIGCONT)


def database_backends(services: object) -> list[int]:
    """The PostgreSQL server processes serving the bench's database (the web's, the
    worker's; not this query's own), to count their CPU; none on SQLite."""
    engine = services.engine  # type: ignore[attr-defined]
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as conn:
        return [int(pid) for pid in conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")).scalars()]


class CpuShares:
    """Who used the CPU over a stretch of the run, as fractions of one core: the web
    process's acknowledging threads (all of it but the drain thread), its drain thread, the
    worker, the database's server processes (PostgreSQL), the sandboxes and this process
    (the load generator); and how long the web process's threads waited for a core while
    runnable. Read from /proc (and the drain's own counter in /metrics), so that a slow
    acknowledgement can be put down to whoever had the core."""

    def __init__(self, web: str, pids: dict[str, int], services: object) -> None:
        self.web, self.pids, self.services = web, pids, services

    def _snapshot(self) -> dict[str, float]:
        shot = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        shot["web waited for a core"] = waited_for_cpu_seconds(self.pids["web"])
        shot["drain"] = drain_cpu_seconds(self.web)
        shot["web acks"] = shot.pop("web") - shot["drain"]
        shot["load generator"] = cpu_seconds(os.getpid())
        for pid in database_backends(self.services):
            with contextlib.suppress(OSError):  # a backend gone meanwhile
                shot[f"pg {pid}"] = cpu_seconds(pid)
        return shot

    def start(self) -> None:
        self._before, self._started = self._snapshot(), time.perf_counter()

    def stop(self) -> dict[str, float]:
        after, elapsed = self._snapshot(), time.perf_counter() - self._started
        shares = {name: (after[name] - self._before.get(name, 0.0)) / elapsed
                  for name in after if not name.startswith("pg ")}
        shares["postgresql"] = sum(after[name] - self._before.get(name, 0.0)
                                   for name in after if name.startswith("pg ")) / elapsed
        return shares


def batch_totals(web: str, histogram: str = "whatsapp_helpdesk_ingest_batch_deliveries"
                 ) -> tuple[float, float]:
    """(deliveries, transactions) of the web process's writer so far, from its /metrics;
    with `histogram` the spool's group fsyncs: (deliveries, fsyncs)."""
    sums = {line.split()[0]: float(line.split()[1])
            for line in httpx.get(f"{web}/metrics", timeout=30).text.splitlines()
            if line.startswith(f"{histogram}_")}
    return (sums.get(f"{histogram}_sum", 0.0), sums.get(f"{histogram}_count", 0.0))


FSYNC_GROUPS = "whatsapp_helpdesk_spool_append_group_deliveries"


def drain_cpu_seconds(web: str) -> float:
    """CPU time of the web process's drain thread so far (its /metrics); NaN when the
    process does not report it (before the second pass of decision 0011)."""
    for line in httpx.get(f"{web}/metrics", timeout=30).text.splitlines():
        if line.startswith("whatsapp_helpdesk_spool_drain_cpu_seconds_total "):
            return float(line.split()[1])
    return float("nan")


MARKER_MODE = 0o741  # the marker's fchmod, easy to find in a trace


def trace_marker(directory: str | None, name: str, pids: dict[str, int]) -> float | None:
    """With --latencies-out: an fchmod (mode 0741) of a file of the bench's own, seen by a
    system-wide `perf trace -e fsync,fdatasync,fchmod`, at the perf_counter returned: the
    origin that puts each request's sending (dumped by `dump_latencies`) on the trace's
    time line. Beside it, which thread and file each of `pids`' threads and descriptors
    are, to name the trace's fsyncs."""
    if directory is None:
        return None
    names: dict[str, dict[str, str]] = {}
    for role, pid in pids.items():
        with contextlib.suppress(OSError):
            names[role] = {
                **{f"tid {task.name}": (task / "comm").read_text().strip()
                   for task in Path(f"/proc/{pid}/task").iterdir()},
                **{f"fd {fd.name}": os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()
                   if not os.readlink(fd).startswith(("socket:", "pipe:", "anon_inode:"))}}
    (Path(directory) / f"{name}.names").write_text(json.dumps(names, indent=1))
    fd = os.open(Path(directory) / f"{name}.marker", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        at = time.perf_counter()
        os.fchmod(fd, MARKER_MODE)
    finally:
        os.close(fd)
    return at


def dump_latencies(directory: str, name: str, origin: float, load: Load) -> None:
    """Each answered request of a fixed-rate run: seconds from the marker to its sending,
    and its latency (ms), one pair a line."""
    with (Path(directory) / f"{name}.tsv").open("w") as out:
        out.write(f"# origin {origin:.6f} (perf_counter: CLOCK_MONOTONIC, as perf's -k 1)\n")
        for sent, latency in zip(load.sent_at, load.latencies, strict=True):
            out.write(f"{sent - origin:.6f}\t{latency * 1000:.3f}\n")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    wait_http(f"http://127.0.0.1:{port}/", process)


def wait_http(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120  # a loaded shared machine starts a process slowly
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def outbox_states(services: object) -> dict[str, int]:
    """Outbox entries by state: the worker's delivery (entries done) and its backlog
    (pending), read between runs."""
    with services.engine.connect() as conn:  # type: ignore[attr-defined]
        return {str(state): int(n) for state, n in conn.execute(text(
            "SELECT state, count(*) FROM outbox GROUP BY state"))}


def stored_rows(services: object) -> int:
    """Every Aircall row (an exact count: between runs, not while the drain stores)."""
    with services.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(text("SELECT count(*) FROM webhook_events "
                                     "WHERE source = 'aircall'")).scalar_one())


def wait_stored(stored: StoredRows, rows: int, timeout: float = 600) -> float:
    """Until the database holds `rows` Aircall deliveries (the web process's drain, polled
    cheaply: bench/stored_rows.py); when that was seen."""
    deadline = time.monotonic() + timeout
    while not stored.reached(rows):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the spool was not drained in {timeout:.0f} s")
        time.sleep(0.02)
    seen = time.perf_counter()
    stored.settle()
    return seen


def run_database(label: str, database_url: str, args: argparse.Namespace) -> dict[str, float]:
    socks = [_bound_socket() for _ in range(2)]
    hub_port, air_port = (s.getsockname()[1] for s in socks)
    hub, air = f"http://127.0.0.1:{hub_port}", f"http://127.0.0.1:{air_port}"
    for sock in socks:
        sock.close()  # the sandbox process binds them
    web_sock, bare_sock = _bound_socket(), _bound_socket()
    web_port, bare_port = web_sock.getsockname()[1], bare_sock.getsockname()[1]
    web_sock.close()
    bare_sock.close()
    web = f"http://127.0.0.1:{web_port}"
    env_values = {"DATABASE_URL": database_url, "PUBLIC_URL": web, "PORT": str(web_port),
                  "SANDBOX_HUBSPOT_PORT": str(hub_port), "SANDBOX_AIRCALL_PORT": str(air_port),
                  "REORDER_GRACE_SECONDS": "0", "LOG_LEVEL": "WARNING",
                  "INGEST_MODE": args.mode}
    settings = Settings(**{k.lower(): v for k, v in env_values.items()}, _env_file=None,
                        spool_dir=tempfile.mkdtemp(prefix="bench-ingest-spool-"))
    services = build_services(settings)
    upgrade(services.engine)
    processes: list[subprocess.Popen[bytes]] = []
    workdir = tempfile.mkdtemp(prefix="bench-ingest-")  # no .env, its own spool
    env = {**os.environ, **env_values}
    # The sandboxes stand for HubSpot and Aircall, elsewhere on the network: a process of
    # their own beside the load generator (core 0), so that the worker's publications
    # neither hold the load generator's GIL (which would delay the answers it times) nor
    # take the service's core.
    sandbox = subprocess.Popen(["taskset", "-c", "0", str(EXE), "sandbox"], env=env,
                               cwd=workdir)
    try:
        for url in (hub, air):
            wait_http(f"{url}/_sandbox/clock", sandbox)
        asyncio.run(install_on_sandbox(settings))
        with httpx.Client(base_url=hub) as h:
            h.post("/_sandbox/config", json={"rate_limit_max": 1_000_000})
            if args.hubspot_latency_ms:
                h.post("/_sandbox/faults", json={
                    "path_prefix": "/", "mode": "slow",
                    "delay_seconds": args.hubspot_latency_ms / 1000})
            token = h.post(f"/_sandbox/portals/{PORTAL}/channel-connections",
                           json={"channelId": services.channel_id()}).json()["accountToken"]

        connect_demo_number(settings, token)
        with httpx.Client(base_url=air) as a:
            webhook_token = a.get("/_sandbox/webhooks").json()["webhooks"][0]["token"]

        counter = iter(range(10**9))

        def body() -> bytes:
            i = next(counter)
            return json.dumps({
                "resource": "message", "event": "message.received", "timestamp": 1_764_000_000,
                "token": webhook_token,
                "data": {"id": uuid.uuid4().hex, "direction": "inbound", "channel": "whatsapp",
                         "status": "received", "type": "text", "body": f"bench {i}",
                         "external_number": f"+3361234{i % 200:04d}",
                         "created_at": 1_764_000_000_000 + i,
                         "number": {"id": SUPPORT_FR, "digits": "+33 1 76 36 06 95"}},
            }).encode()

        if args.profile:
            profile_in_process(label, settings, body, args.profile, args.batch,
                               args.profile_drain)
            return {}
        pin = ["taskset", "-c", "1"]
        processes.append(subprocess.Popen([*pin, str(EXE), "web"], env=env, cwd=workdir))
        processes.append(subprocess.Popen(
            [*pin, sys.executable, __file__, "--serve-bare", str(bare_port)], env=env,
            cwd=workdir))
        wait_port(web_port, processes[0])
        wait_port(bare_port, processes[1])
        if args.worker:
            processes.append(subprocess.Popen([*pin, str(EXE), "worker"], env=env, cwd=workdir))

        trace_pids = {"bench": os.getpid(), "web": processes[0].pid, "sandboxes": sandbox.pid,
                      **({"worker": processes[2].pid} if args.worker else {})}
        os.sched_setaffinity(0, {0})
        figures: dict[str, float] = {}
        bridge_rates, bare_rates, stored_rates = [], [], []
        total_cpu_bridge = 0.0
        drain_while_acking = 0.0
        stored = StoredRows(services.engine)
        answered_so_far = stored.floor_rows
        drain_cpu_start = drain_cpu_seconds(web)
        bridge_lat: list[float] = []
        unanswered = 0
        non_2xx = 0
        loads: list[Load] = []
        cpu = {web_port: 0.0, bare_port: 0.0}
        answered = {web_port: 0, bare_port: 0}
        pids = {web_port: processes[0].pid, bare_port: processes[1].pid}
        for _ in range(args.rounds):  # interleaved, so drift hits both alike
            for port, rates in ((web_port, bridge_rates), (bare_port, bare_rates)):
                load = Load(port, body)
                before = cpu_seconds(pids[port])
                drain_before = drain_cpu_seconds(web) if port == web_port else 0.0
                started = time.perf_counter()
                rates.append(asyncio.run(load.closed_loop(args.connections, args.seconds)))
                cpu[port] += cpu_seconds(pids[port]) - before
                if port == web_port:
                    # The drain stores whenever arrivals pause for 20 ms (decision 0011):
                    # on a loaded machine, during the round too.
                    drain_while_acking += drain_cpu_seconds(web) - drain_before
                answered[port] += len(load.latencies)
                if port == web_port:
                    # Every 2xx of the round in the database before anything else runs.
                    ok = sum(n for s, n in load.statuses.items() if 200 <= s < 300)
                    answered_so_far += ok
                    drained = wait_stored(stored, answered_so_far)
                    stored_rates.append(ok / (drained - started))
                    total_cpu_bridge += cpu_seconds(pids[port]) - before
                unanswered += load.unanswered
                if port == web_port:
                    loads.append(load)
                    bridge_lat += load.latencies
                    non_2xx += sum(n for s, n in load.statuses.items() if not 200 <= s < 300)
        figures["bridge_cpu_ms"] = cpu[web_port] / max(1, answered[web_port]) * 1000
        figures["drain_while_acking_ms"] = drain_while_acking / max(1, answered[web_port]) * 1000
        figures["bare_cpu_ms"] = cpu[bare_port] / max(1, answered[bare_port]) * 1000
        figures["bridge"] = statistics.median(bridge_rates)
        figures["stored"] = statistics.median(stored_rates)
        figures["bridge_total_cpu_ms"] = total_cpu_bridge / max(1, answered[web_port]) * 1000
        figures["bare"] = statistics.median(bare_rates)
        figures["sat_p50"], figures["sat_p99"] = pct(bridge_lat, 0.5), pct(bridge_lat, 0.99)
        saturated_batches = batch_totals(web)
        saturated_fsyncs = batch_totals(web, FSYNC_GROUPS)
        figures["batch_saturated"] = saturated_batches[0] / max(1.0, saturated_batches[1])
        shares = CpuShares(web, {"web": processes[0].pid, "sandboxes": sandbox.pid,
                                 **({"worker": processes[2].pid} if args.worker else {})},
                           services)
        # Two fixed rates, open loop, each after the spool has drained: half the measured
        # maximum acknowledgement rate (issue 17 item 2), and half the *sustainable* rate,
        # the one acknowledging, storing (and, with --worker, the worker beside them) keep
        # up with: the stored rate. Above the latter the backlog grows during the run.
        half_loads: list[Load] = []
        point_shares: dict[str, dict[str, float]] = {}
        for point, rate in (("half", figures["bridge"] / 2),
                            ("half_sustainable", figures["stored"] / 2)):
            half = Load(web_port, body)
            marker = trace_marker(args.latencies_out, f"{label}-{point}", trace_pids)
            outbox_before = outbox_states(services)
            shares.start()
            started = time.perf_counter()
            asyncio.run(half.open_loop(rate, args.open_seconds or args.seconds,
                                       args.connections))
            elapsed = time.perf_counter() - started
            point_shares[point] = shares.stop()
            outbox_after = outbox_states(services)
            # The worker's side of the same seconds: publications done per second, and
            # the outbox still pending at the end (its backlog).
            figures[f"{point}_done_rate"] = (outbox_after.get("done", 0) - outbox_before.get(
                "done", 0)) / elapsed
            figures[f"{point}_outbox_pending"] = outbox_after.get("pending", 0)
            half_ok = sum(n for s, n in half.statuses.items() if 200 <= s < 300)
            figures[f"{point}_backlog"] = answered_so_far + half_ok - stored_rows(services)
            answered_so_far += half_ok
            wait_stored(stored, answered_so_far)
            figures[f"{point}_rate"] = rate
            figures[f"{point}_p50"], figures[f"{point}_p99"] = pct(half.latencies, 0.5), pct(
                half.latencies, 0.99)
            figures[f"{point}_sent"] = half.sent
            if marker is not None:
                dump_latencies(args.latencies_out, f"{label}-{point}", marker, half)
            unanswered += half.unanswered
            non_2xx += sum(n for s, n in half.statuses.items() if not 200 <= s < 300)
            half_loads.append(half)
        # The side-by-side runs' rate: half the acks (item 2's point) or half the stored rate.
        ab_rate = figures["bridge" if args.ab_rate == "acks" else "stored"] / 2
        # Side by side in the same stretch of a noisy machine, every other second: the
        # worker's two niceness values / policies (--ab-niceness), or the worker running
        # and stopped (--ab-worker).
        alternations: list[tuple[AlternatingNiceness, Callable[[int], str]]] = []
        count_done = lambda: outbox_states(services).get("done", 0)  # noqa: E731
        if args.ab_niceness is not None:
            alternations.append((AlternatingNiceness(
                processes[2].pid, processes[0].pid, tuple(args.ab_niceness), 1.0, count_done),
                lambda value: f"at niceness {value:2}"))
        if args.ab_worker:
            alternations.append((AlternatingPause(
                processes[2].pid, processes[0].pid, (0, 1), 1.0, count_done),
                lambda value: "stopped" if value else "running"))
        for alternating, state in alternations:
            half = Load(web_port, body)
            with alternating:
                asyncio.run(half.open_loop(ab_rate, args.open_seconds or args.seconds,
                                           args.connections))
            half_ok = sum(n for s, n in half.statuses.items() if 200 <= s < 300)
            answered_so_far += half_ok
            wait_stored(stored, answered_so_far)
            unanswered += half.unanswered
            non_2xx += sum(n for s, n in half.statuses.items() if not 200 <= s < 300)
            half_loads.append(half)
            for value, latencies in alternating.split(half).items():
                waited = alternating.web_waited[value] / max(1e-9, alternating.elapsed[value])
                print(f"{label:10}   at {ab_rate:.0f}/s, worker {state(value)} (every other "
                      f"second): {len(latencies)} answers, p50 {pct(latencies, 0.5):.1f} ms "
                      f"p99 {pct(latencies, 0.99):.1f} ms, the web waited for a core "
                      f"{waited:.2f} s/s" + alternating.worker_figures(value), flush=True)
        all_batches = batch_totals(web)
        figures["batch_half"] = (all_batches[0] - saturated_batches[0]) / max(
            1.0, all_batches[1] - saturated_batches[1])
        all_fsyncs = batch_totals(web, FSYNC_GROUPS)
        # NaN when the process does not report its group fsyncs (before decision 0011's
        # third pass).
        figures["fsync_saturated"] = saturated_fsyncs[0] / (saturated_fsyncs[1] or math.nan)
        figures["fsync_half"] = (all_fsyncs[0] - saturated_fsyncs[0]) / (
            all_fsyncs[1] - saturated_fsyncs[1] or math.nan)
        figures["unanswered"], figures["non_2xx"] = unanswered, non_2xx
        answered_2xx = sum(n for load in (*loads, *half_loads) for s, n in load.statuses.items()
                           if 200 <= s < 300)
        kept = stored_rows(services)
        # Every body is a new delivery: each 2xx must be a row (R11); more rows than 2xx
        # would be deliveries kept whose answer was lost.
        figures["kept"], figures["answered_2xx"] = kept, answered_2xx
        figures["drain_cpu_ms"] = (drain_cpu_seconds(web) - drain_cpu_start) / max(
            1, answered_2xx) * 1000
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))

        print(f"{label:10} [{args.mode}] bridge acks {figures['bridge']:7.0f} req/s  bare "
              f"{figures['bare']:7.0f} req/s  ratio {figures['bridge'] / figures['bare']:.3f}  "
              f"| stored {figures['stored']:5.0f} rows/s (ratio "
              f"{figures['stored'] / figures['bare']:.3f})  "
              f"saturated ack p50 {figures['sat_p50']:.1f} ms p99 {figures['sat_p99']:.1f} ms  "
              f"| at {figures['half_rate']:.0f}/s (half the acks): p50 "
              f"{figures['half_p50']:.1f} ms p99 {figures['half_p99']:.1f} ms, backlog at the end "
              f"{figures['half_backlog']:.0f}  | at {figures['half_sustainable_rate']:.0f}/s "
              f"(half the stored rate): p50 {figures['half_sustainable_p50']:.1f} ms p99 "
              f"{figures['half_sustainable_p99']:.1f} ms, backlog at the end "
              f"{figures['half_sustainable_backlog']:.0f}  "
              f"| unanswered {unanswered}  non-2xx {non_2xx}  "
              f"| kept {kept} rows for {answered_2xx} answers 2xx  "
              f"| deliveries per transaction: saturated {figures['batch_saturated']:.1f}, half "
              f"{figures['batch_half']:.1f}  | deliveries per spool fsync: saturated "
              f"{figures['fsync_saturated']:.1f}, half {figures['fsync_half']:.1f}  "
              f"| CPU per request: bridge "
              f"{figures['bridge_cpu_ms']:.2f} ms while acking (the drain's share "
              f"{figures['drain_while_acking_ms']:.2f}), "
              f"{figures['bridge_total_cpu_ms']:.2f} ms until stored (the drain thread "
              f"{figures['drain_cpu_ms']:.2f} ms per stored row), bare "
              f"{figures['bare_cpu_ms']:.2f} ms, ratio "
              f"{figures['bare_cpu_ms'] / max(1e-9, figures['bridge_cpu_ms']):.3f}",
              flush=True)
        for point, label_ in (("half", "half the acks"), ("half_sustainable", "half stored")):
            print(f"{label:10}   CPU at {label_}, cores: " + ", ".join(
                f"{name} {share:.2f}" for name, share in point_shares[point].items())
                + f"; outbox entries done {figures[f'{point}_done_rate']:.0f}/s, pending at "
                f"the end {figures[f'{point}_outbox_pending']:.0f}", flush=True)
        return figures
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        sandbox.terminate()
        sandbox.wait(timeout=30)
        services.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--batch", type=int, default=32,
                        help="with --profile: deliveries per transaction (1: one by one)")
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--mode", choices=("spool", "direct"), default="spool",
                        help="INGEST_MODE of the bridge (default: spool, the default)")
    parser.add_argument("--hubspot-latency-ms", type=int, default=0)
    parser.add_argument("--ab-niceness", type=int, nargs=2, metavar=("LOW", "HIGH"),
                        help="with --worker: one more run at half the acks, the worker's "
                        "niceness switched between LOW and HIGH every second, latencies by "
                        "niceness (needs root to go back to LOW; 20 stands for the SCHED_IDLE "
                        "policy, 21 for SCHED_BATCH at niceness 10)")
    parser.add_argument("--ab-worker", action="store_true",
                        help="with --worker: one more run at half the acks, the worker "
                        "stopped (SIGSTOP) every other second, latencies by its state")
    parser.add_argument("--ab-rate", choices=("acks", "stored"), default="acks",
                        help="the rate of the --ab-niceness / --ab-worker run: half the "
                        "acknowledgement rate (default) or half the stored rate")
    parser.add_argument("--open-seconds", type=float, default=0,
                        help="length of each fixed-rate (open loop) run (default: --seconds); "
                        "past DRAIN_MAX_LAG_SECONDS (5 s) the drain runs among the acks")
    parser.add_argument("--profile", type=int, default=0, metavar="DELIVERIES",
                        help="profile this many deliveries in-process instead of serving")
    parser.add_argument("--profile-drain", action="store_true",
                        help="with --profile: profile the drain storing them instead")
    parser.add_argument("--latencies-out", metavar="DIR",
                        help="write each fixed-rate run's requests (sent at, latency) to DIR, "
                        "with an fchmod marker for `perf trace -e fsync,fdatasync,fchmod -a`")
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    print(f"nproc {os.cpu_count()}  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  "
          f"worker {'on' if args.worker else 'off'}  hubspot latency {args.hubspot_latency_ms} ms"
          f"  {args.connections} connections, {args.rounds}×{args.seconds:g} s interleaved  "
          f"INGEST_MODE={args.mode}  WORKER_NICENESS="
          f"{os.environ.get('WORKER_NICENESS', '(default)')}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-db-"))
    for name in args.databases.split(","):
        if name == "sqlite":
            run_database("SQLite", f"sqlite:///{tmp / 'bench.sqlite3'}", args)
        else:
            # A name of this run's own: two benches at once on one server would drop each
            # other's database (fresh_pg drops it first).
            name = f"whatsapp_helpdesk_bench_ingest_{os.getpid()}"
            try:
                run_database("PostgreSQL", fresh_pg(name), args)
            finally:
                drop_pg(name)


if __name__ == "__main__":
    main()
