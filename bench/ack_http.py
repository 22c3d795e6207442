"""Benchmark: the acknowledgement alone over HTTP against the bare endpoint (issue 17 item 1).

    .venv/bin/python bench/ack_http.py [--seconds 3] [--rounds 2] [--connections 32]

Between bench/ack_cpu.py (in-process, no uvicorn) and bench/ingest.py (the whole web
process, its drain included): the fast path exactly as bench/ack_cpu.py builds it (the
real `AircallFastPath`, `SpoolAppender` and spool append, its answers carrying the
security headers the web process sends), served by uvicorn with the web process's options
(`cli.web_server_options`) in a process pinned to core 1, and the bare endpoint of
bench/ingest.py likewise; bench/ingest.py's load generator on core 0, closed loops of
keep-alive connections, alternated. No database, no drain: what the acknowledgement costs
over HTTP, and the context switches of the serving process per request (the group fsync's
thread hand-overs are what the bare endpoint does not have). CPU per request is the
figure to read on a loaded machine; the rates are the share of the core each got.
Runs against another tree with PYTHONPATH=<tree>/src.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ack_cpu import body, bridge_app  # noqa: E402
from ingest import Load, cpu_seconds, serve_bare  # noqa: E402

from whatsapp_helpdesk.cli import web_server_options  # noqa: E402
from whatsapp_helpdesk.settings import Settings  # noqa: E402
from whatsapp_helpdesk.web.security_headers import SecurityHeaders  # noqa: E402


def serve_bridge(port: int) -> None:
    import uvicorn

    app, _ = bridge_app(Path(tempfile.mkdtemp(prefix="bench-ack-http-")))
    settings = Settings(port=port, _env_file=None)
    app._headers = SecurityHeaders(app, settings).headers_for("/webhooks/aircall")
    uvicorn.run(app, **web_server_options(settings))


def context_switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of every thread of a process."""
    voluntary = involuntary = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    voluntary += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    involuntary += int(line.split()[1])
    return voluntary, involuntary


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until the port accepts a connection (no request: the bridge answers only webhooks)."""
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server on port {port} exited ({process.returncode})")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve", choices=["bridge", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bridge":
        serve_bridge(args.port)
        return
    if args.serve == "bare":
        serve_bare(args.port)
        return
    ports = {"bridge": free_port(), "bare": free_port()}
    processes = {name: subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, __file__, "--serve", name, "--port", str(port)])
        for name, port in ports.items()}
    numbers = count()
    rates: dict[str, list[float]] = {name: [] for name in ports}
    cpu = dict.fromkeys(ports, 0.0)
    answered = dict.fromkeys(ports, 0)
    switches = {name: [0, 0] for name in ports}
    try:
        for name, port in ports.items():
            wait_listening(port, processes[name])
        os.sched_setaffinity(0, {0})
        for _ in range(args.rounds):
            for name, port in ports.items():
                pid = processes[name].pid
                load = Load(port, lambda: body(next(numbers)))
                cpu_before, switches_before = cpu_seconds(pid), context_switches(pid)
                rates[name].append(asyncio.run(load.closed_loop(args.connections,
                                                                args.seconds)))
                cpu[name] += cpu_seconds(pid) - cpu_before
                after = context_switches(pid)
                switches[name][0] += after[0] - switches_before[0]
                switches[name][1] += after[1] - switches_before[1]
                answered[name] += len(load.latencies)
                if load.unanswered or set(load.statuses) != {200}:
                    raise SystemExit(f"{name}: unanswered {load.unanswered}, "
                                     f"statuses {load.statuses}")
    finally:
        for process in processes.values():
            process.terminate()
            process.wait()
    per = {name: cpu[name] / max(1, answered[name]) * 1000 for name in ports}
    bridge, bare = statistics.median(rates["bridge"]), statistics.median(rates["bare"])
    print(f"{sys.argv[0]}: bridge {bridge:.0f} req/s, bare {bare:.0f} req/s, ratio "
          f"{bridge / bare:.3f} | CPU per request bridge {per['bridge']:.3f} ms, bare "
          f"{per['bare']:.3f} ms, ratio bare/bridge {per['bare'] / per['bridge']:.3f} | "
          "context switches per request (voluntary/involuntary): bridge "
          f"{switches['bridge'][0] / max(1, answered['bridge']):.2f}/"
          f"{switches['bridge'][1] / max(1, answered['bridge']):.2f}, bare "
          f"{switches['bare'][0] / max(1, answered['bare']):.2f}/"
          f"{switches['bare'][1] / max(1, answered['bare']):.2f} | load "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
