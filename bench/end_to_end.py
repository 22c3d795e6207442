"""Benchmark: end to end at rising load, and the worker's CPU per publication and per reply.

    .venv/bin/python bench/end_to_end.py [--databases sqlite,postgresql] [--rates 2,5,10,20]
        [--seconds 10] [--conversations 40] [--profile DIR]

Everything runs on loopback as separate OS processes started through the CLI, as in
production (the helpers of bench/worker_processes.py): `sandbox` (both emulators), `web` and
one `worker`, configured by environment variables only. For each database:

  1. a fresh database and web process; both sandboxes reset; the demo installed and number
     1001 "Support France" connected; one worker process started;
  2. warm-up: one customer message per conversation, waited for in the sandbox HubSpot (this
     also gives each conversation its help-desk thread for the agent's replies); then the
     worker's idle CPU is read over a quiet stretch (its polling, paid whatever the load);
  3. for each rate R (messages per second, open loop: the n-th message goes at start + n/R,
     whenever the previous ones are answered), two phases of --seconds each:
       inbound  customer messages sent on the sandbox Aircall phone, timed until each is
                visible in its ticket in the sandbox HubSpot (`/_sandbox/portals/…/tickets`);
       reply    agent replies posted in the sandbox HubSpot's tickets, timed until each is
                on the customer's phone (`/_sandbox/customer/inbox` of the sandbox Aircall);
     latency is measured from each message's scheduled send time (so a late sender cannot
     hide a slow service), to the first poll that sees it: it is an upper bound, coarse by
     the poll interval (--poll, printed with the table);
  4. worker CPU (utime + stime of the worker process, /proc/<pid>/stat) over each phase,
     divided by the publications (inbound) or replies of that phase; each phase starts once
     the outbox has been empty for 2 s, so that the previous phase's tail is not counted.
     A reply is several jobs (send_reply, then the SENT and DELIVERED reports to HubSpot),
     all counted in "per reply".
     The idle worker's polls are part of that figure: "net of idle" also subtracts the
     idle rate of step 2 over the phase's length (an upper bound of their share: a busy
     worker polls less), i.e. what a publication or a reply costs on its own;
  5. the memory of the worker and web processes: their peak resident set (VmHWM of
     /proc/<pid>/status) when the last phase is over, i.e. under the run's highest load.

--profile DIR runs the worker under cProfile (CPU time, every thread's work on one) and
writes DIR/worker-<database>.prof when it stops (read with `python -m pstats`); the CPU
figures of such a run are not comparable.
PostgreSQL must run at 127.0.0.1:5432 with trust auth for user postgres. Every database the
run creates is dropped at the end; every child process is killed, even on error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import structlog
from sqlalchemy import create_engine, text
from worker_processes import (
    CLI,
    PORTAL,
    SUPPORT_FR,
    Children,
    Ports,
    _raise_on_sigterm,
    child_env,
    cpu_seconds,
    drop_pg,
    free_port,
    fresh_pg,
    install,
    phone,
    sandbox_process,
    wait_http,
)

from whatsapp_helpdesk.settings import Settings

DB_PREFIX = "whatsapp_helpdesk_bench_e2e"
PROFILED_CLI = "--profiled-cli"
AIRCALL_COMPANY = 1  # the demo's company in the sandbox Aircall, joined to portal 4242
PHASE_TIMEOUT = 60.0  # after the last send, how long the stragglers are waited for


# --- the load and what the phone and the help desk show --------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p99 of 20 samples is the largest: no interpolation)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered))) - 1))]


def open_loop(rate: float, count: int, send: Callable[[int], None]) -> list[float]:
    """send(i) at start + i/rate; returns the scheduled times (monotonic)."""
    start = time.monotonic() + 0.05
    scheduled = [start + i / rate for i in range(count)]
    for i, at in enumerate(scheduled):
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        send(i)
    return scheduled


class Watcher(threading.Thread):
    """Polls `look` (which returns the keys visible now) until every key of `expected` has
    been seen; records the monotonic time of the answer that first showed each one."""

    def __init__(self, look: Callable[[set[str]], set[str]], poll: float):
        super().__init__(daemon=True)
        self.look, self.poll = look, poll
        self.expected: set[str] = set()
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def expect(self, key: str) -> None:
        with self.lock:
            self.expected.add(key)

    def outstanding(self) -> set[str]:
        with self.lock:
            return self.expected - self.seen.keys()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                asked = time.monotonic()
                waiting = self.outstanding()
                if waiting:
                    visible = self.look(waiting)
                    answered = time.monotonic()
                    with self.lock:
                        for key in visible & waiting:
                            self.seen[key] = answered
                self.stopping.wait(max(0.0, self.poll - (time.monotonic() - asked)))
        except BaseException as exc:  # reported by the phase, not lost in a thread
            self.error = exc


@dataclass
class Phase:
    rate: float
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    worker_cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0
    seconds: float = 0.0
    lost: int = 0

    @property
    def cpu_ms_per_item(self) -> float:
        return 1000 * self.worker_cpu_s / max(1, self.sent)

    def net_cpu_ms_per_item(self, idle_cpu_ms_per_s: float) -> float:
        """`cpu_ms_per_item` without the idle worker's polls over the phase (at most all
        of its CPU)."""
        idle_s = min(self.worker_cpu_s, idle_cpu_ms_per_s / 1000 * self.seconds)
        return 1000 * (self.worker_cpu_s - idle_s) / max(1, self.sent)


class Stack:
    """The sandboxes, web and worker of one database, and the conversations' threads."""

    def __init__(self, ports: Ports, children: Children, conversations: int, poll: float,
                 database_url: str):
        self.ports, self.children = ports, children
        self.database = create_engine(database_url)
        self.conversations, self.poll = conversations, poll
        self.aircall = httpx.Client(base_url=ports.aircall_url, timeout=30)
        self.hubspot = httpx.Client(base_url=ports.hubspot_url, timeout=30)
        self.watch_aircall = httpx.Client(base_url=ports.aircall_url, timeout=30)
        self.watch_hubspot = httpx.Client(base_url=ports.hubspot_url, timeout=30)
        self.threads: dict[str, str] = {}  # customer phone -> help-desk thread id
        self.sequence = 0

    def close(self) -> None:
        self.database.dispose()
        for client in (self.aircall, self.hubspot, self.watch_aircall, self.watch_hubspot):
            client.close()

    def _tickets(self) -> list[dict[str, Any]]:
        response = self.watch_hubspot.get(f"/_sandbox/portals/{PORTAL}/tickets")
        response.raise_for_status()
        return response.json()["tickets"]

    def _incoming_visible(self, _waiting: set[str]) -> set[str]:
        return {m["text"] for t in self._tickets() for m in t["messages"]
                if str(m.get("direction", "")).upper().startswith("INCOMING")}

    def _on_phones(self, _waiting: set[str]) -> set[str]:
        # The company's whole message list, one request per look: asking phone by phone
        # made the sandbox's CPU, not the service, the limit once many replies were waiting.
        response = self.watch_aircall.get(f"/_sandbox/companies/{AIRCALL_COMPANY}/messages")
        response.raise_for_status()
        return {f"+{m['raw_digits']}|{m['body']}" for m in response.json()["messages"]
                if m.get("direction") == "outbound"}

    def wait_quiet(self, quiet: float = 2.0, timeout: float = 120.0) -> None:
        """Until no outbox entry has been pending for `quiet` seconds: the previous phase's
        tail (a reply's SENT and DELIVERED reports come after the phone shows it) must not
        be counted in the next phase's CPU."""
        deadline, quiet_since = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            with self.database.connect() as connection:
                pending = connection.execute(text(
                    "SELECT count(*) FROM outbox WHERE state = 'pending'")).scalar()
            if pending:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet:
                return
            self.children.check_alive()
            time.sleep(0.1)
        raise RuntimeError(f"outbox not quiet after {timeout:.0f} s")

    def _worker_pid(self) -> int:
        return self.children.procs["worker"].pid

    def _run_phase(self, rate: float, count: int, send: Callable[[int], str],
                   look: Callable[[set[str]], set[str]]) -> Phase:
        self.wait_quiet()
        phase = Phase(rate=rate, sent=count)
        watcher = Watcher(look, self.poll)
        keys: list[str] = []

        def send_one(i: int) -> None:
            key = send(i)
            keys.append(key)
            watcher.expect(key)

        cpu_before = cpu_seconds(self._worker_pid())
        sandbox_before = cpu_seconds(self.children.procs["sandbox"].pid)
        started = time.monotonic()
        watcher.start()
        try:
            scheduled = open_loop(rate, count, send_one)
            deadline = time.monotonic() + PHASE_TIMEOUT
            while watcher.outstanding() and time.monotonic() < deadline:
                self.children.check_alive()
                if watcher.error is not None:
                    raise watcher.error
                time.sleep(0.05)
        finally:
            watcher.stopping.set()
            watcher.join()
        phase.seconds = time.monotonic() - started
        phase.worker_cpu_s = cpu_seconds(self._worker_pid()) - cpu_before
        phase.sandbox_cpu_s = cpu_seconds(self.children.procs["sandbox"].pid) - sandbox_before
        phase.latencies_ms = [1000 * (watcher.seen[k] - at)
                              for k, at in zip(keys, scheduled, strict=True) if k in watcher.seen]
        phase.lost = count - len(phase.latencies_ms)
        return phase

    def inbound(self, rate: float, count: int, label: str) -> Phase:
        def send(i: int) -> str:
            text = f"e2e {label} #{i}"
            self.aircall.post("/_sandbox/customer/messages", json={
                "from": phone(i % self.conversations), "number_id": SUPPORT_FR, "text": text,
            }).raise_for_status()
            return text

        return self._run_phase(rate, count, send, self._incoming_visible)

    def replies(self, rate: float, count: int, label: str) -> Phase:
        customers = sorted(self.threads)

        def send(i: int) -> str:
            customer = customers[i % len(customers)]
            text = f"e2e reply {label} #{i}"
            self.hubspot.post(
                f"/_sandbox/portals/{PORTAL}/threads/{self.threads[customer]}/replies",
                json={"text": text}).raise_for_status()
            return f"{customer}|{text}"

        return self._run_phase(rate, count, send, self._on_phones)

    def learn_threads(self) -> None:
        for ticket in self._tickets():
            for message in ticket["messages"]:
                for sender in message.get("senders") or []:
                    value = (sender.get("deliveryIdentifier") or {}).get("value")
                    if value and ticket.get("threadId"):
                        self.threads[value] = ticket["threadId"]
        missing = {phone(c) for c in range(self.conversations)} - self.threads.keys()
        if missing:
            raise RuntimeError(f"no help-desk thread for {len(missing)} conversations")

    def idle_cpu_ms_per_s(self, seconds: float) -> float:
        before, started = cpu_seconds(self._worker_pid()), time.monotonic()
        time.sleep(seconds)  # the quiet stretch being measured, not a wait for a condition
        return 1000 * (cpu_seconds(self._worker_pid()) - before) / (time.monotonic() - started)


# --- one database ---------------------------------------------------------------------------


@dataclass
class Result:
    database: str
    idle_cpu_ms_per_s: float = 0.0
    steps: list[tuple[Phase, Phase]] = field(default_factory=list)
    # Peak resident memory of each process over the whole run, MiB (issue 17 item 8).
    max_rss_mib: dict[str, float] = field(default_factory=dict)


def max_rss_mib(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), MiB; 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    kib = next((int(line.split()[1]) for line in status.splitlines()
                if line.startswith("VmHWM:")), 0)
    return kib / 1024


def run_database(name: str, database_url: str, args: argparse.Namespace, ports: Ports,
                 children: Children) -> Result:
    result = Result(database=name)
    web_port = free_port()
    # Pacing stays on (its booking is part of a publication's cost), with both providers'
    # limits out of the way: bench/pacing.py measures the limits, this one the service.
    env = child_env(database_url, ports, web_port) | {
        "HUBSPOT_RATE_LIMIT": "1000000", "AIRCALL_RATE_LIMIT": "1000000"}
    stack = Stack(ports, children, args.conversations, args.poll, database_url)
    try:
        children.start("web", "web", env)  # migrates the fresh database on start
        wait_http(f"http://127.0.0.1:{web_port}/healthz", children)
        for url in (ports.hubspot_url, ports.aircall_url):
            httpx.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
            httpx.post(f"{ports.hubspot_url}/_sandbox/config", json={"rate_limit_max": 1_000_000},
                   timeout=10).raise_for_status()
        httpx.post(f"{ports.aircall_url}/_sandbox/config",
                   json={"rate_limit_per_minute": 1_000_000}, timeout=10).raise_for_status()
        settings = Settings(database_url=database_url, public_url=env["PUBLIC_URL"],
                            port=web_port, sandbox_hubspot_port=ports.hubspot,
                            sandbox_aircall_port=ports.aircall, reorder_grace_seconds=0,
                            log_level="WARNING", _env_file=None)  # type: ignore[call-arg]
        install(settings, ports)
        argv = CLI
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
            out = Path(args.profile).resolve() / f"worker-{name.lower()}.prof"
            argv = [sys.executable, str(Path(__file__).resolve()), PROFILED_CLI, str(out)]
        children.start("worker", "worker", env, argv=argv)

        warm = stack.inbound(args.conversations, args.conversations, f"{name} warm-up")
        if warm.lost:
            raise RuntimeError(f"warm-up: {warm.lost} messages never reached the help desk")
        stack.learn_threads()
        stack.wait_quiet()
        result.idle_cpu_ms_per_s = stack.idle_cpu_ms_per_s(args.idle_seconds)
        for rate in args.rates:
            count = max(1, round(rate * args.seconds))
            inbound = stack.inbound(rate, count, f"{name} {rate}/s")
            replies = stack.replies(rate, count, f"{name} {rate}/s")
            result.steps.append((inbound, replies))
            idle = result.idle_cpu_ms_per_s
            print(f"  {name} {rate:g}/s: in p50 {percentile(inbound.latencies_ms, .5):.0f} ms,"
                  f" {inbound.cpu_ms_per_item:.1f} CPU ms/publication "
                  f"({inbound.net_cpu_ms_per_item(idle):.1f} net of idle); reply p50 "
                  f"{percentile(replies.latencies_ms, .5):.0f} ms, "
                  f"{replies.cpu_ms_per_item:.1f} CPU ms/reply "
                  f"({replies.net_cpu_ms_per_item(idle):.1f})", file=sys.stderr)
        result.max_rss_mib = {child: max_rss_mib(children.procs[child].pid)
                              for child in ("worker", "web")}
        codes = children.stop("worker")
        if codes["worker"] != 0:
            raise RuntimeError(f"worker exit code {codes['worker']} on SIGTERM")
    finally:
        stack.close()
        for child in ("worker", "web"):
            if child in children.procs:
                children.stop(child)
    return result


# --- main -----------------------------------------------------------------------------------


def print_results(results: list[Result], args: argparse.Namespace) -> None:
    print(f"\nend to end: one worker process (WORKER_CONCURRENCY default), "
          f"{args.conversations} conversations, {args.seconds:g} s per phase, open loop, "
          f"poll every {1000 * args.poll:.0f} ms (latencies are upper bounds by that much); "
          f"{os.cpu_count()} CPUs, shared")
    print("database    rate/s  customer->help desk ms p50  p99  lost | agent->phone ms p50"
          "  p99  lost | worker CPU ms: /publication  /reply | net of idle: /publication"
          "  /reply | sandbox CPU ms/msg in, out")
    for result in results:
        idle = result.idle_cpu_ms_per_s
        for inbound, reply in result.steps:
            print(f"{result.database:10s}  {inbound.rate:6g}  "
                  f"{percentile(inbound.latencies_ms, .5):27.0f} "
                  f"{percentile(inbound.latencies_ms, .99):4.0f}  {inbound.lost:4d} | "
                  f"{percentile(reply.latencies_ms, .5):19.0f} "
                  f"{percentile(reply.latencies_ms, .99):4.0f}  {reply.lost:4d} | "
                  f"{inbound.cpu_ms_per_item:27.1f} {reply.cpu_ms_per_item:7.1f} | "
                  f"{inbound.net_cpu_ms_per_item(idle):26.1f} "
                  f"{reply.net_cpu_ms_per_item(idle):7.1f} | "
                  f"{1000 * inbound.sandbox_cpu_s / inbound.sent:22.1f}, "
                  f"{1000 * reply.sandbox_cpu_s / reply.sent:.1f}")
        print(f"{result.database:10s}  idle worker: {result.idle_cpu_ms_per_s:.1f} CPU ms per "
              "second (polling; included in the per-message figures above, subtracted over each "
              "phase's length in \"net of idle\")")
        print(f"{result.database:10s}  peak memory (VmHWM): worker "
              f"{result.max_rss_mib.get('worker', 0):.1f} MiB, web "
              f"{result.max_rss_mib.get('web', 0):.1f} MiB")


def profiled_cli(out: str, argv: list[str]) -> int:
    """The CLI under cProfile, timed by this process's CPU clock (not the wall clock, which
    a busy machine inflates), with the thread hops done inline: cProfile sees only the
    thread that enabled it, and the worker does its database work in `asyncio.to_thread`.
    The same work on one thread, so that one profile holds all of it."""
    import asyncio
    import cProfile

    from whatsapp_helpdesk import cli

    async def inline(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    asyncio.to_thread = inline  # type: ignore[assignment]
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    try:
        return cli.main(argv)
    finally:
        profile.disable()
        profile.dump_stats(out)


def main() -> None:
    if sys.argv[1:2] == [PROFILED_CLI]:
        raise SystemExit(profiled_cli(sys.argv[2], sys.argv[3:]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rates", default="2,5,10,20",
                        type=lambda s: [float(r) for r in s.split(",")])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase and rate")
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--poll", type=float, default=0.1, help="seconds between looks")
    parser.add_argument("--idle-seconds", type=float, default=3.0)
    parser.add_argument("--profile", help="directory for the worker's cProfile output")
    parser.add_argument("--keep", help="a directory for the logs and the SQLite database, "
                        "kept after the run (default: a temporary one, removed)")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.upper().startswith(("HUBSPOT_", "AIRCALL_"))]:
        del os.environ[key]  # sandbox mode, like the children
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    signal.signal(signal.SIGTERM, _raise_on_sigterm)

    results: list[Result] = []
    with (contextlib.nullcontext(args.keep) if args.keep
          else tempfile.TemporaryDirectory(prefix="bench-end-to-end-")) as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        children = Children(Path(tmp))
        try:
            with sandbox_process(children) as ports:
                for database in args.databases.split(","):
                    if database == "sqlite":
                        url = f"sqlite:///{Path(tmp) / 'e2e.sqlite3'}"
                        results.append(run_database("SQLite", url, args, ports, children))
                    else:
                        name = f"{DB_PREFIX}_{os.getpid()}"  # two runs side by side
                        try:
                            url = fresh_pg(name)
                            results.append(run_database("PostgreSQL", url, args, ports,
                                                        children))
                        finally:
                            drop_pg(name)
        except BaseException:
            for name in list(children.procs):
                print(f"--- {name} log (tail)\n{children.tail(name)}", file=sys.stderr)
            raise
        finally:
            with contextlib.suppress(Exception):
                children.stop_all()
    print_results(results, args)
    if any(p.lost for r in results for step in r.steps for p in step):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
