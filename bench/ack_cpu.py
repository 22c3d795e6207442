"""Benchmark: the CPU of one webhook acknowledgement in-process, against the bare endpoint's
(issue 17 item 1), without HTTP: both ASGI apps driven by the same loop of fake requests.

    .venv/bin/python bench/ack_cpu.py [--requests 6400] [--concurrency 32] [--rounds 3]

The bridge's part is `AircallFastPath` (web/ingest_writer.py) in front of nothing: the body
read, the fast path's checks and record (web/webhook_spool.py `fast_path_record`), the
hand-over to the group-fsync thread, the real append (one write, one fsync per group, on
this machine's disk) and the answer built once. No drain runs (its CPU is the stored side's).
The bare endpoint is the one bench/ingest.py serves: a Starlette route answering a constant
JSON body. CPU is the process's (every thread: the appender's write and fsync included),
per request, alternating the two in rounds; uvicorn's own per-request work, the same for
both in bench/ingest.py, is not in it, so the ratio here is lower than over HTTP.
Runs against another tree with PYTHONPATH=<tree>/src.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from whatsapp_helpdesk.aircall import token_digest
from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.ingest_writer import AircallFastPath, SpoolAppender
from whatsapp_helpdesk.web.webhook_spool import WebhookSpool

TOKEN = "t" * 43
NUMBER = "123456"


def body(i: int) -> bytes:
    return json.dumps({
        "resource": "message", "event": "message.received", "timestamp": 1_764_000_000,
        "token": TOKEN,
        "data": {"id": uuid.uuid4().hex, "direction": "inbound", "channel": "whatsapp",
                 "status": "received", "type": "text", "body": f"bench {i}",
                 "external_number": f"+3361234{i % 200:04d}",
                 "created_at": 1_764_000_000_000 + i,
                 "number": {"id": int(NUMBER), "digits": "+33 1 76 36 06 95"}},
    }).encode()


def bare_app() -> Any:
    async def webhook(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"result": "stored"})

    return Starlette(routes=[Route("/webhooks/aircall", webhook, methods=["POST"])])


def bridge_app(directory: Path) -> tuple[Any, SpoolAppender]:
    settings = Settings(database_url=f"sqlite:///{directory / 'db.sqlite3'}",
                        spool_dir=str(directory / "spool"), _env_file=None)
    spool = WebhookSpool(build_services(settings))
    spool._digests = {token_digest(TOKEN): 1}
    spool._connected_numbers = frozenset({(1, NUMBER)})
    spool._thread = threading.current_thread()  # a drain "runs" (none stores here)
    spool.backlog_max_records = 10**9
    appender = SpoolAppender(spool)

    async def nothing_else(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("a delivery left the fast path")

    return AircallFastPath(nothing_else, webhook_spool=spool, appender=appender,
                           max_body=256 * 1024, headers=[(b"x-content-type-options",
                                                          b"nosniff")]), appender


async def drive(app: Any, bodies: list[bytes], concurrency: int) -> None:
    scope_base = {"type": "http", "method": "POST", "path": "/webhooks/aircall",
                  "raw_path": b"/webhooks/aircall", "root_path": "", "scheme": "http",
                  "query_string": b"", "http_version": "1.1", "server": ("127.0.0.1", 8000),
                  "client": ("127.0.0.1", 5000), "state": {}}
    queue = iter(bodies)

    async def client() -> None:
        for payload in queue:
            scope = {**scope_base, "headers": [
                (b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode())]}
            sent: list[Any] = []

            async def receive(payload: bytes = payload) -> dict[str, Any]:
                return {"type": "http.request", "body": payload, "more_body": False}

            async def send(message: dict[str, Any], sent: list[Any] = sent) -> None:
                sent.append(message)

            await app(scope, receive, send)
            assert sent[0]["status"] == 200, sent

    await asyncio.gather(*(client() for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-ack-cpu-"))
    bridge, appender = bridge_app(directory)
    apps = {"bridge": bridge, "bare": bare_app()}
    cpu: dict[str, list[float]] = {name: [] for name in apps}
    counter = iter(range(10**9))
    try:
        for _ in range(args.rounds):
            for name, app in apps.items():
                bodies = [body(next(counter)) for _ in range(args.requests)]
                started = time.process_time()
                asyncio.run(drive(app, bodies, args.concurrency))
                cpu[name].append((time.process_time() - started) / args.requests * 1e6)
    finally:
        appender.stop()
    bridge_us, bare_us = statistics.median(cpu["bridge"]), statistics.median(cpu["bare"])
    print(f"{sys.argv[0]}: {args.requests} requests x {args.rounds} rounds, "
          f"{args.concurrency} at once: CPU per request bridge {bridge_us:.1f} us "
          f"(rounds {', '.join(f'{v:.1f}' for v in cpu['bridge'])}), bare {bare_us:.1f} us "
          f"(rounds {', '.join(f'{v:.1f}' for v in cpu['bare'])}), ratio bare/bridge "
          f"{bare_us / bridge_us:.3f}")


if __name__ == "__main__":
    main()
