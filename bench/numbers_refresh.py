"""Benchmark: "Refresh numbers from Aircall" at 50, 500 and 5,000 numbers (issue 17 item 7).

    .venv/bin/python bench/numbers_refresh.py [--sizes 50 500 5000] [--scale 20]
        [--limit 60] [--share 0.5]

For each size: a fresh SQLite database, both sandboxes and the web app on loopback (as the
end-to-end tests run them), the demo installed, the sandbox Aircall's demo company given
numbers up to the size (no webhooks), then one refresh queued and worked by one worker until
the dashboard would say it is done. The sandbox Aircall enforces its real limit (`--limit`
requests per window per company, default 60, Aircall's documented safe figure) and the
worker paces under the same limit with `NUMBERS_REFRESH_BUDGET_SHARE` (`--share`).

A refresh of 5,000 numbers at 30 calls a minute takes hours, so the window is scaled: the
sandbox's `rate_limit_window_seconds` and our AIRCALL_RATE_WINDOW_SECONDS are both
60 / `--scale` s, the limit unchanged; every rate is `--scale` times Aircall's, and a
duration at Aircall's real rate is the measured one times `--scale`. (The pacing's fixed
jitter margin, 0.25 s a window, does not shrink with it: at scale 20 the paced interval is
5 % longer than a pure scaling would give, so the scaled-back figure is slightly high.)

Prints, per size: numbers read, Aircall calls (and 429s), the most calls any window saw over
the limit, the measured duration, and the duration scaled back to Aircall's minute.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, select

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.cli import install_on_sandbox
from whatsapp_helpdesk.connect.numbers_refresh import request_refresh
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Installation, Number
from whatsapp_helpdesk.sandbox.aircall import create_app as aircall_app
from whatsapp_helpdesk.sandbox.hubspot import create_app as hubspot_app
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.app import create_app as bridge_app
from whatsapp_helpdesk.worker.runner import Worker

DEMO_COMPANY = 1


class Served:
    def __init__(self, app: Any):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server: uvicorn.Server | None = None

    def start(self, app: Any = None) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app or self.app, log_level="critical", ws="none", access_log=False)
        )
        threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        ).start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        assert self.server is not None
        self.server.should_exit = True


def most_in_any_window(times: list[float], window: float) -> int:
    times, most, first = sorted(times), 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def run_size(size: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    window = 60.0 / args.scale
    hub, air, web = Served(None), Served(None), Served(None)
    settings = Settings(
        database_url=f"sqlite:///{workdir}/numbers-{size}.db",
        public_url=web.url,
        sandbox_hubspot_port=hub.port,
        sandbox_aircall_port=air.port,
        spool_dir=str(workdir / f"spool-{size}"),
        aircall_rate_limit=args.limit,
        aircall_rate_window_seconds=window,
        numbers_refresh_budget_share=args.share,
        _env_file=None,  # type: ignore[call-arg]
    )
    services = build_services(settings)
    upgrade(services.engine)
    hub.start(hubspot_app(public_base_url=hub.url))
    air.start(aircall_app(public_base_url=air.url))
    web.start(bridge_app(services))
    control = httpx.Client(base_url=air.url, timeout=60)
    try:
        asyncio.run(install_on_sandbox(settings))
        with services.sessions() as session:
            installation_id = session.scalars(select(Installation.id)).one()
            have = session.scalar(select(func.count()).select_from(Number)) or 0
        if size > have:
            control.post(
                f"/_sandbox/companies/{DEMO_COMPANY}/numbers",
                json={"count": size - have, "notify": False},
            ).raise_for_status()
        control.post(
            "/_sandbox/config",
            json={
                "rate_limit_per_minute": args.limit,
                "rate_limit_window_seconds": window,
            },
        ).raise_for_status()
        # A fresh window, so that the install's calls do not count against the refresh.
        control.post("/_sandbox/clock", json={"advance_seconds": window}).raise_for_status()
        since = control.get("/_sandbox/clock").json()["now_unix"]
        request_refresh(services, installation_id)
        started = time.monotonic()

        async def work() -> None:
            worker_services = build_services(settings)
            try:
                await Worker(worker_services, concurrency=1).run_until_idle(timeout=86_400)
            finally:
                await worker_services.aclose()
                worker_services.engine.dispose()

        asyncio.run(work())
        elapsed = time.monotonic() - started
        calls = control.get(
            f"/_sandbox/companies/{DEMO_COMPANY}/api-calls", params={"since": since}
        ).json()["calls"]
        with services.sessions() as session:
            read = (
                session.scalar(
                    select(func.count())
                    .select_from(Number)
                    .where(Number.synced_at.is_not(None), Number.removed_at.is_(None))
                )
                or 0
            )
        return {
            "size": size,
            "read": read,
            "calls": len(calls),
            "rate_limited": sum(c["rate_limited"] for c in calls),
            "peak": most_in_any_window([c["at"] for c in calls], window) / args.limit,
            "seconds": elapsed,
            "real_seconds": elapsed * args.scale,
        }
    finally:
        control.close()
        for served in (web, air, hub):
            served.stop()
        services.engine.dispose()


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--share", type=float, default=0.5)
    args = parser.parse_args()
    print(
        f"Aircall limit {args.limit} / min per company, refresh share {args.share}, "
        f"window scaled 60 s -> {60 / args.scale:g} s (x{args.scale:g})",
        file=sys.stderr,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-numbers-") as tmp:
        for size in args.sizes:
            row = run_size(size, args, Path(tmp))
            rows.append(row)
            print(f"  {size} numbers done in {row['seconds']:.1f} s", file=sys.stderr)
    print(
        "| numbers | read | Aircall calls | calls / number | 429s | busiest window / limit "
        "| measured (scaled) | at Aircall's minute |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['size']:,} | {row['read']:,} | {row['calls']:,} | "
            f"{row['calls'] / max(row['read'], 1):.2f} | {row['rate_limited']} | "
            f"{row['peak']:.2f} | {row['seconds']:.1f} s | {_duration(row['real_seconds'])} |"
        )


if __name__ == "__main__":
    main()
