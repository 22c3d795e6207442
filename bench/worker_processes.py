"""Benchmark: publication throughput with 1, 2 and 4 worker PROCESSES on one PostgreSQL.

    .venv/bin/python bench/worker_processes.py [--messages 400] [--workers 1,2,4] [--repeat 3]

Everything runs on loopback as separate OS processes started through the CLI, as in
production: `sandbox` (both emulators, one process), `web`, and K x `worker`, configured by
environment variables only. For each K, side by side in one run (the sequence of Ks repeated
--repeat times, interleaved, medians reported):

  1. a fresh database and a fresh web process; both sandboxes reset; the demo installed and
     number 1001 "Support France" connected (as `bench/ingest_and_publish.py` does);
  2. with no worker running, N customer messages over 40 phone numbers sent through the
     sandbox Aircall's customer endpoint, which delivers them to the web app as webhooks;
  3. K worker processes started and held at a gate (a table lock) until every slot of every
     process is waiting with its claim; the gate opens, and the drain is timed until no
     outbox entry is pending; the workers are stopped with SIGTERM;
  4. correctness: every message published exactly once (our database and the sandbox
     HubSpot), each conversation in its order, every worker exited cleanly.

Then the outbox claim query (db/outbox.py) is profiled with EXPLAIN (ANALYZE, BUFFERS) on two
synthetic backlogs, as shipped and with candidate indexes created only in the benchmark's
own database.

PostgreSQL must run at 127.0.0.1:5432 with trust auth for user postgres. Every database the
run creates is dropped at the end; every child process is killed, even on error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import structlog
from psycopg import sql
from sqlalchemy import event, select

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.cli import install_on_sandbox
from whatsapp_helpdesk.connect.popup import connect_number
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import PUBLISH_INBOUND
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Installation, Number
from whatsapp_helpdesk.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_SERVER = "postgres@127.0.0.1:5432"
DB_PREFIX = "whatsapp_helpdesk_bench_procs"
PORTAL = 4242
SUPPORT_FR = 1001  # the sandbox Aircall's WhatsApp number "Support France"
CLI = [sys.executable, "-m", "whatsapp_helpdesk.cli"]
SLOTS = 4  # WORKER_CONCURRENCY, the default: deliveries one worker process runs at once
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- databases ------------------------------------------------------------------------------


def fresh_pg(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://{PG_SERVER}/{name}"


def drop_pg(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def libpq_url(database: str) -> str:
    return f"postgresql://{PG_SERVER}/{database}"


# --- child processes ------------------------------------------------------------------------


def free_port() -> int:
    # Bound then released: a small race with other programs, acceptable on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Ports:
    hubspot: int
    aircall: int

    @property
    def hubspot_url(self) -> str:
        return f"http://127.0.0.1:{self.hubspot}"

    @property
    def aircall_url(self) -> str:
        return f"http://127.0.0.1:{self.aircall}"


def child_env(database_url: str, ports: Ports, web_port: int) -> dict[str, str]:
    """The service's configuration, by environment variables only, in sandbox mode."""
    env = {key: value for key, value in os.environ.items()
           # Any real credential or API base would take the service out of sandbox mode.
           if not key.upper().startswith(("HUBSPOT_", "AIRCALL_"))}
    env.update(
        DATABASE_URL=database_url,
        PORT=str(web_port),
        PUBLIC_URL=f"http://127.0.0.1:{web_port}",
        SANDBOX_HUBSPOT_PORT=str(ports.hubspot),
        SANDBOX_AIRCALL_PORT=str(ports.aircall),
        REORDER_GRACE_SECONDS="0",  # publish at once: the grace delay is not throughput
        LOG_LEVEL="WARNING",
        WORKER_CONCURRENCY=str(SLOTS),
        # The sandbox's limit is lifted (run_round): our own pacing under HubSpot's 110 / 10 s
        # would otherwise make every K publish at ~11/s, the limit and not the workers
        # (bench/pacing.py measures the pacing).
        CLIENT_PACING="false",
    )
    return env


class Children:
    """Every process the benchmark starts, each in its own process group, so that stopping
    one stops whatever it may have spawned, and nothing outlives the benchmark."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: str, env: dict[str, str], *,
              argv: Sequence[str] = CLI) -> subprocess.Popen[bytes]:
        """`argv`: what runs `command` (the CLI; bench/end_to_end.py puts a profiler first)."""
        log = (self.log_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [*argv, command], env=env, stdout=log, stderr=subprocess.STDOUT,
            # cwd: the log directory, so that no `.env` file of the checkout is read.
            cwd=self.log_dir, start_new_session=True,
        )
        log.close()  # the child holds its own copy of the descriptor
        self.procs[name] = proc
        return proc

    def stop(self, *names: str, timeout: float = 15.0) -> dict[str, int | None]:
        """SIGTERM (a graceful stop, as a process manager does), SIGKILL after `timeout`."""
        for name in names:
            self._signal(self.procs[name], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name in names:
            proc = self.procs.pop(name)
            try:
                codes[name] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                proc.wait()
                codes[name] = None  # did not stop on SIGTERM
            # The leader may be gone while a grandchild lingers in its group.
            self._signal(proc, signal.SIGKILL)
        return codes

    def stop_all(self) -> None:
        self.stop(*list(self.procs))

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def print_logs(self) -> None:
        """Every child's log tail to stderr, those already stopped too (a benchmark that
        failed says why)."""
        for log in sorted(self.log_dir.glob("*.log")):
            print(f"--- {log.stem} log (tail)\n{self.tail(log.stem)}", file=sys.stderr)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)


def wait_http(url: str, children: Children, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children.check_alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (/proc, no dependency)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, to tell a saturated CPU from waiting."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


# --- one round ------------------------------------------------------------------------------


@dataclass
class Round:
    workers: int
    messages: int
    seconds: float = 0.0
    startup_seconds: float = 0.0
    load_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU-seconds during the drain
    machine_busy: float = 0.0  # share of all cores busy during the drain
    share: list[int] = field(default_factory=list)  # entries done by each worker process
    problems: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds


def install(settings: Settings, ports: Ports) -> None:
    """The demo installed as a fresh service does, then 1001 connected from HubSpot."""
    asyncio.run(install_on_sandbox(settings))
    services = build_services(settings)
    try:
        with httpx.Client(base_url=ports.hubspot_url, timeout=10) as hubspot:
            token = hubspot.post(f"/_sandbox/portals/{PORTAL}/channel-connections",
                                 json={"channelId": services.channel_id()}).json()["accountToken"]
        with services.sessions() as session:
            installation_id = session.scalars(select(Installation.id)).one()
            number_id = session.scalars(select(Number.id).where(
                Number.aircall_number_id == str(SUPPORT_FR))).one()

        async def connect() -> None:
            try:
                await connect_number(services, installation_id=installation_id,
                                     number_id=number_id, account_token=token)
            finally:
                await services.aclose()

        asyncio.run(connect())
    finally:
        services.engine.dispose()


def phone(conversation: int) -> str:
    return f"+3361200{conversation:04d}"  # French mobiles, valid for the sandbox


def message_text(workers: int, index: int) -> str:
    return f"bench k{workers} #{index}"


def load_messages(ports: Ports, database: str, workers: int, messages: int,
                  conversations: int) -> None:
    """The customers write while no worker runs: the backlog the workers will drain."""
    with httpx.Client(base_url=ports.aircall_url, timeout=30) as aircall:
        # One at a time, round robin over the phones: each conversation's messages get
        # increasing provider timestamps, so their order is well defined (R15).
        for index in range(messages):
            response = aircall.post("/_sandbox/customer/messages", json={
                "from": phone(index % conversations), "number_id": SUPPORT_FR,
                "text": message_text(workers, index)})
            response.raise_for_status()
        deadline = time.monotonic() + 60
        while (deliveries := aircall.get("/_sandbox/deliveries").json())["pending"]:
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox Aircall deliveries still pending after 60 s")
            time.sleep(0.05)
    failed = [d for d in deliveries["deliveries"] if d.get("outcome") != "success"]
    if failed:
        raise RuntimeError(f"{len(failed)} webhook deliveries did not succeed: {failed[:3]}")
    # A 2xx means "spooled" (decision 0011): the web's drain queues the publications a moment
    # later, so the count is awaited, not read once.
    deadline = time.monotonic() + 60
    with psycopg.connect(libpq_url(database), autocommit=True) as conn:
        while (stored := conn.execute(
                "SELECT count(*) FROM outbox WHERE state = 'pending' AND kind = %s",
                (PUBLISH_INBOUND,)).fetchone()[0]) < messages and time.monotonic() < deadline:
            time.sleep(0.05)
    if stored != messages:
        raise RuntimeError(f"{stored} publications queued for {messages} messages")


def close_gate(gate: psycopg.Connection[Any]) -> None:
    """Hold the backlog back while the worker processes start; commit `gate` to release it.

    A worker process spends a second or more importing and checking migrations before its
    first claim, and K of them start slower than one on a small machine: timing from the
    spawn would measure start-up, not throughput. The claim's FOR UPDATE needs a ROW SHARE
    lock on the table, which EXCLUSIVE refuses, so every claim waits here (SKIP LOCKED skips
    locked rows, not a locked table) and all workers start together; no row is touched."""
    gate.execute("LOCK TABLE outbox IN EXCLUSIVE MODE")


def wait_workers_at_gate(conn: psycopg.Connection[Any], gate: psycopg.Connection[Any],
                         names: list[str], slots: int, children: Children,
                         timeout: float = 60.0) -> None:
    """Until every slot of every worker process waits at the gate: a backend of that process
    (its application_name, given in its DATABASE_URL) blocked by the gate's own backend.

    Asked of pg_blocking_pids, not of the query text: pg_stat_activity keeps only the first
    track_activity_query_size bytes (1 kB by default) of a query, and the claim outgrew them,
    cutting off the "SKIP LOCKED" the check once looked for; the gate then never opened."""
    deadline = time.monotonic() + timeout
    gate_pid = gate.info.backend_pid
    while time.monotonic() < deadline:
        children.check_alive()
        waiting = dict(conn.execute(
            "SELECT application_name, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND %s = ANY(pg_blocking_pids(pid)) "
            "GROUP BY application_name", (gate_pid,)).fetchall())
        conn.commit()
        if all(waiting.get(name, 0) >= slots for name in names):
            return
        time.sleep(0.05)
    raise RuntimeError(f"worker processes not all waiting at the gate after {timeout:.0f} s")


def backend_pids(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()").fetchall()
    conn.commit()
    return [row[0] for row in rows]


def round_robin_proxy(backends: list[int]) -> Any:
    """The chaos suite's TCP proxy (tests/chaos/processes.py, in this checkout), which
    spreads connections over the web processes as a load balancer does."""
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
    from tests.chaos.processes import RoundRobinProxy

    return RoundRobinProxy(backends)


def run_round(workers: int, args: argparse.Namespace, ports: Ports,
              children: Children) -> Round:
    result = Round(workers=workers, messages=args.messages)
    # The pid: two runs of this benchmark at once (two sessions on one machine) must not
    # drop each other's database, which ends the other run's connections, its gate with them.
    database = f"{DB_PREFIX}_{os.getpid()}_k{workers}"
    database_url = fresh_pg(database)
    web_ports = [free_port() for _ in range(args.web)]
    web_names = ["web"] + [f"web-{i}" for i in range(1, args.web)]
    # Several web processes sit behind a round-robin TCP proxy (the chaos suite's): the one
    # PUBLIC_URL the sandbox Aircall delivers webhooks to, as a load balancer would be.
    proxy = round_robin_proxy(web_ports) if args.web > 1 else None
    web_port = proxy.port if proxy is not None else web_ports[0]
    env = child_env(database_url, ports, web_port)
    try:
        for name, port in zip(web_names, web_ports, strict=True):
            # The first migrates the fresh database on start; the others wait for it.
            children.start(name, "web", env | {"PORT": str(port)})
            wait_http(f"http://127.0.0.1:{port}/healthz", children)
        if proxy is not None:
            proxy.start()
        for url in (ports.hubspot_url, ports.aircall_url):
            httpx.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
        # After the reset (which restores the defaults): the sandbox's rate limit is not
        # what this benchmark measures.
        httpx.post(f"{ports.hubspot_url}/_sandbox/config", json={"rate_limit_max": 1_000_000},
                   timeout=10).raise_for_status()
        settings = Settings(database_url=database_url, public_url=env["PUBLIC_URL"],
                            port=web_port, sandbox_hubspot_port=ports.hubspot,
                            sandbox_aircall_port=ports.aircall, reorder_grace_seconds=0,
                            log_level="WARNING", _env_file=None)  # type: ignore[call-arg]
        install(settings, ports)

        started = time.perf_counter()
        load_messages(ports, database, workers, args.messages, args.conversations)
        result.load_seconds = time.perf_counter() - started

        with psycopg.connect(libpq_url(database)) as conn, \
                psycopg.connect(libpq_url(database)) as gate:
            close_gate(gate)
            names = [f"bench-worker-{i}" for i in range(workers)]
            started = time.perf_counter()
            for name in names:
                children.start(name, "worker", env | {
                    "DATABASE_URL": f"{database_url}?application_name={name}"})
            wait_workers_at_gate(conn, gate, names, SLOTS, children)
            result.startup_seconds = time.perf_counter() - started

            pids = {name: children.procs[name].pid for name in [*names, "sandbox", *web_names]}
            pg_pids = backend_pids(conn)
            cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            pg_before = sum(cpu_seconds(pid) for pid in pg_pids)
            machine_before = machine_cpu()

            gate.commit()  # open the gate
            started = time.perf_counter()
            deadline = started + args.timeout
            while conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'"
                               ).fetchone()[0]:
                conn.commit()  # a fresh snapshot on the next poll
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"outbox not drained after {args.timeout:.0f} s")
                children.check_alive()
                time.sleep(0.01)
            result.seconds = time.perf_counter() - started
            conn.commit()

            machine_after = machine_cpu()
            cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            result.cpu = {
                "sandbox": cpu["sandbox"], "web": sum(cpu[name] for name in web_names),
                "workers": sum(cpu[name] for name in names),
                "postgres": sum(cpu_seconds(pid) for pid in pg_pids) - pg_before,
            }
            busy = machine_after[0] - machine_before[0]
            result.machine_busy = busy / max(1, machine_after[1] - machine_before[1])
            codes = children.stop(*names)
            result.problems += [f"{name} exit code {code} on SIGTERM"
                                for name, code in codes.items() if code != 0]
        verify(result, database, ports)
    finally:
        # Every process of the round stops before its database is dropped: DROP … WITH
        # (FORCE) would otherwise end their connections, and their logs would fill with
        # AdminShutdown crashes that hide what went wrong first.
        children.stop(*[name for name in children.procs if name != "sandbox"])
        if proxy is not None:
            proxy.stop()
        drop_pg(database)
    return result


def verify(result: Round, database: str, ports: Ports) -> None:
    """Every message published exactly once, each conversation in its order (R15)."""
    n = result.messages
    with psycopg.connect(libpq_url(database)) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM messages "
                                     "WHERE direction = 'inbound' GROUP BY status").fetchall())
        if statuses != {"published": n}:
            result.problems.append(f"message statuses {statuses}, expected {n} published")
        # The publications only: the install also queues its read of the numbers
        # (refresh_numbers, issue 17 item 7), which is not what this checks.
        entries = conn.execute("SELECT kind, state, count(*), max(attempts) FROM outbox "
                               "WHERE kind = %s GROUP BY kind, state",
                               (PUBLISH_INBOUND,)).fetchall()
        if entries != [(PUBLISH_INBOUND, "done", n, 1)]:
            result.problems.append(f"outbox (kind, state, count, max attempts) {entries}")
        attempts = dict(conn.execute("SELECT outcome, count(*) FROM delivery_attempts "
                                     "GROUP BY outcome").fetchall())
        if attempts != {"ok": n}:
            result.problems.append(f"delivery attempts by outcome {attempts}")
        # FIFO across processes: an entry started only after its predecessor in the same
        # conversation had finished.
        overtaken = conn.execute("""
            SELECT count(*) FROM (
                SELECT a.started_at, lag(o.finished_at) OVER (
                    PARTITION BY o.ordering_key ORDER BY o.ordering_at, o.id) AS previous_done
                FROM outbox o JOIN delivery_attempts a ON a.outbox_id = o.id
                WHERE o.ordering_key IS NOT NULL) AS t
            WHERE started_at < previous_done""").fetchone()[0]
        if overtaken:
            result.problems.append(f"{overtaken} entries started before their predecessor")
        # Which worker process did what: locked_by is "host:pid:object" and stays after done.
        result.share = sorted((row[0] for row in conn.execute(
            "SELECT count(*) FROM outbox GROUP BY split_part(locked_by, ':', 2)")), reverse=True)
    tickets = httpx.get(f"{ports.hubspot_url}/_sandbox/portals/{PORTAL}/tickets",
                        timeout=30).json()["tickets"]
    texts = [m["text"] for t in tickets for m in t["messages"]
             if str(m.get("direction", "")).upper().startswith("INCOMING")]
    expected = {message_text(result.workers, i) for i in range(n)}
    if len(texts) != n or set(texts) != expected:
        result.problems.append(f"sandbox HubSpot holds {len(texts)} customer messages "
                               f"({len(set(texts))} distinct), expected {n}")


# --- the claim query under EXPLAIN ----------------------------------------------------------


class _Captured(Exception):  # noqa: N818 - a signal, not an error
    def __init__(self, statement: str, parameters: dict[str, Any]):
        super().__init__("captured")
        self.statement, self.parameters = statement, parameters


def claim_sql(database_url: str, now: datetime) -> tuple[str, dict[str, Any]]:
    """The exact SQL and parameters `outbox.claim` sends, captured before it runs (so that
    nothing is claimed), rather than a copy of the statement that could drift from it."""
    services = build_services(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]

    def capture(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        if "SKIP LOCKED" in statement:
            raise _Captured(statement, dict(parameters))

    event.listen(services.engine, "before_cursor_execute", capture)
    try:
        with services.sessions() as session:
            outbox.claim(session, worker_id="bench-explain", now=now)
    except _Captured as captured:
        return captured.statement, captured.parameters
    finally:
        services.engine.dispose()
    raise RuntimeError("outbox.claim sent no FOR UPDATE SKIP LOCKED query")


def fill_backlog(conn: psycopg.Connection[Any], *, pending: int, keys: int, done: int,
                 in_flight: int) -> None:
    """A backlog as the ingest writes it: round robin over the conversations, in time order,
    behind a history of finished entries (the outbox is never pruned)."""
    installation = conn.execute(
        "INSERT INTO installations (hubspot_portal_id, aircall_company_id, hubspot_scopes, "
        "aircall_scopes, created_at, updated_at) VALUES ('4242', '1', '', '', now(), now()) "
        "RETURNING id").fetchone()[0]
    insert = """
        INSERT INTO outbox (installation_id, kind, payload, ordering_key, ordering_at, state,
                            attempts, available_at, created_at, finished_at)
        SELECT %(installation)s, %(kind)s, '{}', 'conversation:' || (g %% %(keys)s), t,
               %(state)s, %(attempts)s, t, t, %(finished)s
        FROM generate_series(1, %(rows)s) AS g,
             LATERAL (SELECT %(start)s::timestamptz + g * %(step)s::interval) AS x(t)"""
    common = {"installation": installation, "kind": PUBLISH_INBOUND, "keys": keys}
    conn.execute(insert, common | {"state": outbox.DONE, "attempts": 1, "rows": done,
                                   "start": "2026-01-01", "step": "1 second",
                                   "finished": datetime(2026, 6, 1, tzinfo=UTC)})
    conn.execute(insert, common | {"state": outbox.PENDING, "attempts": 0, "rows": pending,
                                   "start": "2026-06-01", "step": "10 milliseconds",
                                   "finished": None})
    # Busy workers: the oldest entries of `in_flight` conversations are being worked.
    conn.execute("""
        UPDATE outbox SET locked_by = 'elsewhere', locked_until = now() + interval '60 s',
                          attempts = 1
        WHERE id IN (SELECT id FROM outbox WHERE state = 'pending'
                     ORDER BY available_at, id LIMIT %s)""", (in_flight,))
    conn.commit()


@dataclass
class Explained:
    label: str
    planning_ms: float
    execution_ms: float  # inf: cancelled by the statement timeout
    plan: list[str]

    @property
    def indexes(self) -> list[str]:
        return sorted(set(re.findall(r" using (\w+)", " ".join(self.plan))))

    @property
    def seq_scans(self) -> list[str]:
        return sorted(set(re.findall(r"Seq Scan on (\w+)", " ".join(self.plan))))

    @property
    def buffers(self) -> int | None:
        """Pages touched by the whole query (the top node's count)."""
        found = re.search(r"shared hit=(\d+)", "\n".join(self.plan))
        return int(found.group(1)) if found else None

    @property
    def subplan_runs(self) -> int | None:
        """How many times the per-conversation NOT EXISTS ran: the candidates examined."""
        for line, following in zip(self.plan, self.plan[1:], strict=False):
            if re.fullmatch(r"\s*SubPlan \d+", line):  # the node, not a Filter naming it
                found = re.search(r"loops=(\d+)", following)
                return int(found.group(1)) if found else None
        return 0


def explain(conn: psycopg.Connection[Any], label: str, statement: str,
            parameters: dict[str, Any], *, generic: bool = False, runs: int = 7,
            timeout_ms: int = 2000) -> Explained:
    """EXPLAIN (ANALYZE, BUFFERS) of the claim, median of `runs` (the first warms the cache),
    each rolled back so that the row lock it takes is released and nothing changes.

    generic=True: the plan PostgreSQL would use if it switched the prepared statement to a
    generic plan, made without the parameter values (psycopg prepares a query run 5 times on
    one connection; PostgreSQL then chooses custom or generic plans by estimated cost).
    A run longer than `timeout_ms` is cancelled and reported as such, with its plan."""
    names = re.findall(r"%\((\w+)\)s", statement)
    if generic:
        numbered = re.sub(r"%\((\w+)\)s",
                          lambda m: f"${names.index(m.group(1)) + 1}", statement)
        conn.execute(sql.SQL("PREPARE bench_claim AS {}").format(sql.SQL(numbered)))
        conn.execute("SET plan_cache_mode = force_generic_plan")
        target = sql.SQL("EXECUTE bench_claim({})").format(
            sql.SQL(", ").join(sql.Literal(parameters[n]) for n in names))
        values: dict[str, Any] | None = None
    else:
        target, values = sql.SQL(statement), parameters
    conn.execute(f"SET statement_timeout = {int(timeout_ms)}")
    conn.commit()  # SETs are transactional: else the first rollback would undo them
    runs_seen: list[Explained] = []
    try:
        for _ in range(runs):
            try:
                plan = [row[0] for row in conn.execute(
                    sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(target), values)]
            except psycopg.errors.QueryCanceled:
                conn.rollback()
                plan = [row[0] for row in conn.execute(
                    sql.SQL("EXPLAIN {}").format(target), values)]
                conn.rollback()
                return Explained(label, float("nan"), float("inf"), plan)
            conn.rollback()
            timing = {key: float(value) for key, value in re.findall(
                r"(Planning|Execution) Time: ([\d.]+) ms", "\n".join(plan))}
            runs_seen.append(Explained(label, timing["Planning"], timing["Execution"], plan))
    finally:
        conn.rollback()
        if generic:
            conn.execute("DEALLOCATE bench_claim")
        conn.execute("RESET ALL")
        conn.commit()
    measured = runs_seen[1:] or runs_seen
    return Explained(label, statistics.median(r.planning_ms for r in measured),
                     statistics.median(r.execution_ms for r in measured), runs_seen[-1].plan)


@dataclass
class AsRun:
    """The claim as a worker runs it: through SQLAlchemy and psycopg, on one connection."""

    median_ms: float  # whole claim() call after the statement was prepared
    custom_plans: int
    generic_plans: int


def claim_as_worker(database_url: str, claims: int = 15) -> AsRun:
    """`claims` calls of outbox.claim() on one connection, inside a transaction rolled back
    at the end (each claim's own commit becomes a savepoint), so the backlog is unchanged.
    Then pg_prepared_statements tells whether psycopg prepared the query and which plans
    PostgreSQL chose for it."""
    from sqlalchemy.orm import Session

    services = build_services(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
    durations: list[float] = []
    try:
        with services.engine.connect() as connection:
            outer = connection.begin()
            session = Session(bind=connection, join_transaction_mode="create_savepoint")
            for _ in range(claims):
                started = time.perf_counter()
                outbox.claim(session, worker_id="bench-as-worker", now=datetime.now(UTC))
                durations.append(1000 * (time.perf_counter() - started))
            generic, custom = connection.exec_driver_sql(
                "SELECT coalesce(sum(generic_plans), 0), coalesce(sum(custom_plans), 0) "
                "FROM pg_prepared_statements WHERE statement LIKE '%%SKIP LOCKED%%'").one()
            outer.rollback()
    finally:
        services.engine.dispose()
    return AsRun(statistics.median(durations[5:] or durations), custom, generic)


# Candidate indexes, each tried alone and created only in the benchmark's database. Both let
# the planner walk the pending entries in the claim's own order (available_at, id) and stop
# at the first claimable one (the LIMIT 1), instead of reading a batch from ix_outbox_claim
# (state, available_at) to sort it by id.
CANDIDATES = {
    # Partial: small (pending entries only), but unusable by a generic plan, where
    # `state = $1` does not prove the index predicate.
    "+ partial (available_at, id)": (
        ["CREATE INDEX bench_pending_order ON outbox (available_at, id) "
         "WHERE state = 'pending'"],
        ["DROP INDEX bench_pending_order"]),
    # ix_outbox_claim with id appended, in its place: no extra index to maintain.
    "+ (state, available_at, id)": (
        ["CREATE INDEX bench_claim_order ON outbox (state, available_at, id)",
         "DROP INDEX ix_outbox_claim"],
        ["CREATE INDEX ix_outbox_claim ON outbox (state, available_at)",
         "DROP INDEX bench_claim_order"]),
}


@dataclass(frozen=True)
class Backlog:
    label: str
    pending: int
    keys: int
    in_flight: int
    done: int

    def describe(self) -> str:
        return (f"{self.label}: {self.pending} pending over {self.keys} conversations, "
                f"{self.in_flight} in flight, {self.done} done")


def profile_claim(backlog: Backlog) -> tuple[list[Explained], AsRun]:
    database = f"{DB_PREFIX}_{os.getpid()}_explain"
    database_url = fresh_pg(database)
    try:
        services = build_services(Settings(database_url=database_url, _env_file=None))  # type: ignore[call-arg]
        upgrade(services.engine)
        services.engine.dispose()
        with psycopg.connect(libpq_url(database)) as conn:
            fill_backlog(conn, pending=backlog.pending, keys=backlog.keys, done=backlog.done,
                         in_flight=backlog.in_flight)
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE outbox")
            conn.autocommit = False
            statement, parameters = claim_sql(database_url, datetime.now(UTC))
            results = [explain(conn, "as shipped", statement, parameters),
                       explain(conn, "as shipped, generic plan", statement, parameters,
                               generic=True)]
            as_run = claim_as_worker(database_url)
            for label, (create, undo) in CANDIDATES.items():
                for ddl in create:
                    conn.execute(ddl)
                conn.execute("ANALYZE outbox")
                conn.commit()
                results += [explain(conn, label, statement, parameters),
                            explain(conn, f"{label}, generic plan", statement, parameters,
                                    generic=True)]
                for ddl in undo:
                    conn.execute(ddl)
                conn.commit()
        return results, as_run
    finally:
        drop_pg(database)


# --- main -----------------------------------------------------------------------------------


def _raise_on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(143)  # so that the finally blocks stop the children


@contextlib.contextmanager
def sandbox_process(children: Children) -> Iterator[Ports]:
    ports = Ports(hubspot=free_port(), aircall=free_port())
    # The sandbox needs no database; a URL that cannot be reached makes sure it uses none.
    env = child_env("postgresql+psycopg://nobody@127.0.0.1:1/none", ports, free_port())
    children.start("sandbox", "sandbox", env)
    for url in (ports.hubspot_url, ports.aircall_url):
        wait_http(f"{url}/_sandbox/clock", children)
    yield ports


def print_rounds(rounds: list[Round], args: argparse.Namespace) -> None:
    levels = list(dict.fromkeys(r.workers for r in rounds))
    by_level = {k: [r for r in rounds if r.workers == k] for k in levels}
    median = {k: statistics.median(r.per_second for r in by_level[k]) for k in levels}
    base = levels[0]
    print(f"\npublication: {args.messages} messages over {args.conversations} conversations, "
          f"WORKER_CONCURRENCY={SLOTS}, {args.web} web process(es), {os.cpu_count()} CPUs, "
          f"{args.repeat} interleaved repetition(s), medians")
    print("procs  msgs/s  (min-max)      ratio  start-up s  machine busy  CPU ms/msg: workers "
          "postgres sandbox web  entries per process (last)")
    for k in levels:
        runs = by_level[k]

        def cpu_ms(part: str, runs: list[Round] = runs) -> float:
            return 1000 * statistics.median(r.cpu[part] / r.messages for r in runs)

        low, high = min(r.per_second for r in runs), max(r.per_second for r in runs)
        print(f"{k:5d}  {median[k]:6.1f}  ({low:5.1f}-{high:5.1f})  "
              f"{median[k] / median[base]:5.2f}  "
              f"{statistics.median(r.startup_seconds for r in runs):10.2f}  "
              f"{statistics.median(r.machine_busy for r in runs):12.0%}  "
              f"{cpu_ms('workers'):19.1f} {cpu_ms('postgres'):8.1f} {cpu_ms('sandbox'):7.1f} "
              f"{cpu_ms('web'):3.1f}  {'/'.join(map(str, runs[-1].share))}")
    for k in levels[1:]:
        ratios = [mine.per_second / theirs.per_second
                  for mine, theirs in zip(by_level[k], by_level[base], strict=True)]
        print(f"  {k}/{base} per repetition: {' '.join(f'{x:.2f}' for x in ratios)}")
    problems = [f"{r.workers} process(es): {p}" for r in rounds for p in r.problems]
    print("  checks: " + ("; ".join(problems) or (
        f"in every round all {args.messages} messages published exactly once, each "
        "conversation in its order; every worker exited 0 on SIGTERM")))


def print_profile(profiles: list[tuple[Backlog, tuple[list[Explained], AsRun]]],
                  show_plans: bool) -> None:
    print("\nclaim query (db/outbox.py), EXPLAIN (ANALYZE, BUFFERS), median of 6 runs")
    for backlog, (results, as_run) in profiles:
        print(f"  {backlog.describe()}")
        print(f"    {'variant':42s} planning ms  execution ms  speed-up  buffers  "
              "NOT EXISTS runs  indexes (seq scans)")
        base = results[0].execution_ms
        for r in results:
            timing = (f"{r.planning_ms:11.3f}  {r.execution_ms:12.3f}  "
                      f"{base / r.execution_ms:7.1f}x" if r.execution_ms != float("inf")
                      else f"{'':11s}  {'> 2000':>12s}  cancelled")
            print(f"    {r.label:42s} {timing}  {r.buffers or '-':>7}  "
                  f"{r.subplan_runs if r.subplan_runs is not None else '-':>15}  "
                  f"{', '.join(r.indexes)} ({', '.join(r.seq_scans) or 'none'})")
        print(f"    as a worker runs it (SQLAlchemy + psycopg, one connection): "
              f"{as_run.median_ms:.2f} ms per claim() call; prepared statement's plans: "
              f"{as_run.custom_plans} custom, {as_run.generic_plans} generic")
        if show_plans:
            for r in results:
                print(f"\n    plan, {r.label}:")
                print("\n".join(f"      {line}" for line in r.plan))
    print("  candidate indexes (benchmark database only, one at a time):")
    for label, (create, _undo) in CANDIDATES.items():
        print(f"    {label}: {'; '.join(create)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--workers", default="1,2,4",
                        help="worker process counts, comma-separated, run in this order")
    parser.add_argument("--web", type=int, default=1,
                        help="web processes (behind a round-robin proxy when more than one)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="repetitions of the whole sequence, interleaved (medians shown)")
    parser.add_argument("--timeout", type=float, default=120.0, help="per drain, seconds")
    parser.add_argument("--explain-pending", type=int, default=10_000)
    parser.add_argument("--explain-keys", type=int, default=1_000)
    parser.add_argument("--explain-done", type=int, default=50_000)
    parser.add_argument("--skip-explain", action="store_true")
    parser.add_argument("--plans", action="store_true", help="print the full query plans")
    args = parser.parse_args()
    # This process installs the demo itself: it must be in sandbox mode like its children.
    for key in [k for k in os.environ if k.upper().startswith(("HUBSPOT_", "AIRCALL_"))]:
        del os.environ[key]
    # The flows this process runs itself (install, connect) log at INFO: keep the figures
    # readable, as the children do with LOG_LEVEL=WARNING.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-worker-processes-") as log_dir:
        children = Children(Path(log_dir))
        try:
            with sandbox_process(children) as ports:
                for repetition in range(args.repeat):
                    for workers in (int(k) for k in args.workers.split(",")):
                        rounds.append(run_round(workers, args, ports, children))
                        print(f"  repetition {repetition + 1}, {workers} worker process(es): "
                              f"{rounds[-1].per_second:.1f} msgs/s (backlog loaded in "
                              f"{rounds[-1].load_seconds:.1f} s)", file=sys.stderr)
        except BaseException:
            children.print_logs()
            raise
        finally:
            children.stop_all()
    print_rounds(rounds, args)
    if not args.skip_explain:
        backlogs = [
            # Many conversations with a few entries each; 4 processes x 4 slots busy on the
            # oldest ones.
            Backlog("spread", args.explain_pending, args.explain_keys, in_flight=4 * SLOTS,
                    done=args.explain_done),
            # A few busy conversations, every one of them in flight: the poll of an idle
            # slot, which finds nothing only after examining every pending entry.
            Backlog("skewed", args.explain_pending, 10, in_flight=10, done=args.explain_done),
        ]
        print_profile([(b, profile_claim(b)) for b in backlogs], args.plans)
    if any(r.problems for r in rounds):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
