"""Benchmark: webhook ingest and publication throughput, side by side in one run.

    .venv/bin/python bench/ingest_and_publish.py [--messages 300]

Starts both sandboxes and the web app on loopback (as the e2e tests do), then measures:
  1. ingest: Aircall `message.received` deliveries/s answered 2xx (stored + outbox, one
     transaction each), 8 concurrent senders, on SQLite and on PostgreSQL;
  2. publish: messages/s drained by a worker into the sandbox HubSpot, with 1 and with 4
     concurrent slots (messages spread over 20 conversations), on PostgreSQL.
Figures are printed with their ratios; absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness.stack import PORTAL, SUPPORT_FR, Served, _bound_socket, connect_demo_number  # noqa: E402
from worker_processes import fresh_pg  # noqa: E402

from whatsapp_helpdesk.bootstrap import build_services  # noqa: E402
from whatsapp_helpdesk.cli import install_on_sandbox  # noqa: E402
from whatsapp_helpdesk.db.migrate import upgrade  # noqa: E402
from whatsapp_helpdesk.sandbox.aircall import create_app as aircall_app  # noqa: E402
from whatsapp_helpdesk.sandbox.hubspot import create_app as hubspot_app  # noqa: E402
from whatsapp_helpdesk.settings import Settings  # noqa: E402
from whatsapp_helpdesk.web.app import create_app as bridge_app  # noqa: E402
from whatsapp_helpdesk.worker.runner import Worker  # noqa: E402


def run_stack(database_url: str, messages: int, concurrency_levels: list[int]) -> dict[str, float]:
    socks = [_bound_socket() for _ in range(3)]
    hub, air, web = (f"http://127.0.0.1:{s.getsockname()[1]}" for s in socks)
    settings = Settings(database_url=database_url, public_url=web,
                        sandbox_hubspot_port=socks[0].getsockname()[1],
                        sandbox_aircall_port=socks[1].getsockname()[1],
                        reorder_grace_seconds=0, log_level="WARNING", _env_file=None)
    services = build_services(settings)
    upgrade(services.engine)
    servers = [Served(socks[0], hubspot_app(public_base_url=hub)).start(),
               Served(socks[1], aircall_app(public_base_url=air)).start(),
               Served(socks[2], bridge_app(services)).start()]
    figures: dict[str, float] = {}
    try:
        asyncio.run(install_on_sandbox(settings))
        with httpx.Client(base_url=hub) as h:
            h.post("/_sandbox/config", json={"rate_limit_max": 1_000_000})
            channel = services.channel_id()
            token = h.post(f"/_sandbox/portals/{PORTAL}/channel-connections",
                           json={"channelId": channel}).json()["accountToken"]

        connect_demo_number(settings, token)
        # Our own webhook token: read it back from the sandbox Aircall.
        with httpx.Client(base_url=air) as a:
            webhook_token = a.get("/_sandbox/webhooks").json()["webhooks"][0]["token"]

        def body(i: int) -> bytes:
            return json.dumps({
                "resource": "message", "event": "message.received", "timestamp": 1_764_000_000,
                "token": webhook_token,
                "data": {"id": uuid.uuid4().hex, "direction": "inbound", "channel": "whatsapp",
                         "status": "received", "type": "text", "body": f"bench {i}",
                         "external_number": f"+3361234{i % 20:04d}",
                         "created_at": 1_764_000_000_000 + i,
                         "number": {"id": SUPPORT_FR, "digits": "+33 1 76 36 06 95"}},
            }).encode()

        for level in concurrency_levels:
            with httpx.Client(base_url=web, timeout=30) as client, ThreadPoolExecutor(8) as pool:
                start = time.perf_counter()
                codes = list(pool.map(lambda i: client.post(
                    "/webhooks/aircall", content=body(i),
                    headers={"content-type": "application/json"}).status_code, range(messages)))
                ingest = time.perf_counter() - start
            assert set(codes) == {200}, set(codes)
            figures.setdefault("ingest_per_s", messages / ingest)

            async def drain(level: int = level) -> None:
                s = build_services(settings)
                await Worker(s, concurrency=level, poll_interval=0.01).run_until_idle(timeout=600)
            start = time.perf_counter()
            asyncio.run(drain())
            figures[f"publish_per_s_c{level}"] = messages / (time.perf_counter() - start)
    finally:
        for server in reversed(servers):
            server.stop()
        services.engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    tmp = Path("var/bench")
    tmp.mkdir(parents=True, exist_ok=True)
    sqlite_file = tmp / f"bench-{uuid.uuid4().hex[:6]}.sqlite3"
    sqlite = run_stack(f"sqlite:///{sqlite_file}", args.messages, [1])
    pg = run_stack(fresh_pg("whatsapp_helpdesk_bench"), args.messages, [1, 4])
    print(f"messages per run: {args.messages}")
    print(f"ingest (webhook → stored, 8 senders)   SQLite {sqlite['ingest_per_s']:7.1f}/s   "
          f"PostgreSQL {pg['ingest_per_s']:7.1f}/s   PG/SQLite = "
          f"{pg['ingest_per_s'] / sqlite['ingest_per_s']:.2f}")
    print(f"publish (worker → HubSpot, PostgreSQL)  1 slot {pg['publish_per_s_c1']:7.1f}/s   "
          f"4 slots {pg['publish_per_s_c4']:7.1f}/s   4/1 = "
          f"{pg['publish_per_s_c4'] / pg['publish_per_s_c1']:.2f}")
    print(f"publish on SQLite, 1 slot: {sqlite['publish_per_s_c1']:.1f}/s")


if __name__ == "__main__":
    main()
