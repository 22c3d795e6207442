"""A burst of 1 MB photos (R51, issue 14 item 6): the web process's ack latency is that of a
text message (downloads happen in the worker), and the worker's memory stays flat however
many photos go through it (files are streamed, never held whole).

    .venv/bin/python bench/media_burst.py --photos 20,100 --texts 200

One process serves both sandboxes, the web app and a file store standing in for Aircall's
pre-signed URLs (1 MB image/png bodies sent in 64 KiB chunks); the worker runs as its own
OS process (4 slots, as in production) so its peak resident memory (`ru_maxrss`) is its own.
For each burst size: a fresh SQLite database; the photos' webhooks are posted by 8 senders
and their acks timed; then the worker drains them while 8 senders post text webhooks, whose
acks are timed too; every photo must end up uploaded and published with its FILE attachment.
The baseline is the same worker draining text messages only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from harness.stack import PORTAL, SUPPORT_FR, Served, _bound_socket, connect_demo_number  # noqa: E402

from whatsapp_helpdesk.bootstrap import build_services  # noqa: E402
from whatsapp_helpdesk.cli import install_on_sandbox  # noqa: E402
from whatsapp_helpdesk.db.migrate import upgrade  # noqa: E402
from whatsapp_helpdesk.sandbox.aircall import create_app as aircall_app  # noqa: E402
from whatsapp_helpdesk.sandbox.hubspot import create_app as hubspot_app  # noqa: E402
from whatsapp_helpdesk.settings import Settings  # noqa: E402
from whatsapp_helpdesk.web.app import create_app as bridge_app  # noqa: E402

PHOTO_BYTES = 1024 * 1024
CHUNK = 64 * 1024
PNG_HEAD = b"\x89PNG\r\n\x1a\n"
CUSTOMERS = 16
WARM_UP = 16


def file_store() -> Starlette:
    """Aircall's file store: `/photo/<n>.png` is 1 MB of image/png, streamed."""

    async def photo(request: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield PNG_HEAD + b"\0" * (CHUNK - len(PNG_HEAD))
            for _ in range(PHOTO_BYTES // CHUNK - 1):
                yield b"\x7f" * CHUNK

        return StreamingResponse(body(), media_type="image/png",
                                 headers={"content-length": str(PHOTO_BYTES)})

    return Starlette(routes=[Route("/photo/{n}.png", photo)])


def webhook(token: str, i: int, *, photo_base: str | None) -> bytes:
    data: dict = {  # type: ignore[type-arg]
        "id": uuid.uuid4().hex, "direction": "inbound", "channel": "whatsapp",
        "status": "received", "type": "image" if photo_base else "text",
        "body": f"burst {i}", "external_number": f"+3361234{i % CUSTOMERS:04d}",
        "created_at": 1_764_000_000_000 + i,
        "number": {"id": SUPPORT_FR, "digits": "+33 1 76 36 06 95"},
    }
    if photo_base:
        data["media_details"] = [{"file_name": f"photo-{i}.png", "file_type": "image/png",
                                  "presigned_url": f"{photo_base}/photo/{i}.png"}]
    return json.dumps({"resource": "message", "event": "message.received",
                       "timestamp": 1_764_000_000, "token": token, "data": data}).encode()


def post_all(web: str, bodies: list[bytes]) -> list[float]:
    """Each webhook's ack latency in ms (8 concurrent senders)."""

    def one(client: httpx.Client, body: bytes) -> float:
        start = time.perf_counter()
        response = client.post("/webhooks/aircall", content=body,
                               headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        return (time.perf_counter() - start) * 1000

    with httpx.Client(base_url=web, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda b: one(client, b), bodies))


def child_worker(settings_json: str) -> None:
    """`--worker-child`: drain the outbox in this process, then print its peak RSS."""
    import resource

    from whatsapp_helpdesk.worker.runner import Worker

    settings = Settings(**json.loads(settings_json), _env_file=None)  # type: ignore[call-arg]

    async def main() -> None:
        services = build_services(settings)
        await Worker(services, concurrency=4, poll_interval=0.02).run_until_idle(timeout=900)

    import os
    import tracemalloc

    if os.environ.get("BENCH_TRACEMALLOC"):
        tracemalloc.start(12)
    start = time.perf_counter()
    asyncio.run(main())
    # Python's own allocations at their peak (tracing slows the worker several times over).
    traced = tracemalloc.get_traced_memory()[1] / 2**20 if tracemalloc.is_tracing() else 0.0
    print(json.dumps({"seconds": time.perf_counter() - start, "traced_peak_mb": traced,
                      "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run(photos: int, texts: int, tmp: Path) -> dict[str, float]:
    socks = [_bound_socket() for _ in range(4)]
    hub, air, web, store = (f"http://127.0.0.1:{s.getsockname()[1]}" for s in socks)
    fields = {"database_url": f"sqlite:///{tmp / f'media-{uuid.uuid4().hex[:6]}.sqlite3'}",
              "public_url": web, "sandbox_hubspot_port": socks[0].getsockname()[1],
              "sandbox_aircall_port": socks[1].getsockname()[1], "reorder_grace_seconds": 0,
              "log_level": "WARNING", "spool_dir": str(tmp / f"spool-{uuid.uuid4().hex[:6]}")}
    settings = Settings(**fields, _env_file=None)  # type: ignore[arg-type]
    services = build_services(settings)
    upgrade(services.engine)
    servers = [Served(socks[0], hubspot_app(public_base_url=hub)).start(),
               Served(socks[1], aircall_app(public_base_url=air)).start(),
               Served(socks[2], bridge_app(services)).start(),
               Served(socks[3], file_store()).start()]
    try:
        asyncio.run(install_on_sandbox(settings))
        with httpx.Client(base_url=hub) as h:
            h.post("/_sandbox/config", json={"rate_limit_max": 1_000_000})
            token = h.post(f"/_sandbox/portals/{PORTAL}/channel-connections",
                           json={"channelId": services.channel_id()}).json()["accountToken"]

        connect_demo_number(settings, token)
        with httpx.Client(base_url=air) as a:
            hook_token = a.get("/_sandbox/webhooks").json()["webhooks"][0]["token"]

        # Not timed: a fresh web app's first requests pay for connections and caches, which
        # would weigh on a burst of 20 and not on one of 200.
        post_all(web, [webhook(hook_token, 20_000 + i, photo_base=None) for i in range(WARM_UP)])
        photo_acks = post_all(web, [webhook(hook_token, i, photo_base=store if photos else None)
                                    for i in range(photos or texts)])
        worker = subprocess.Popen(
            [sys.executable, __file__, "--worker-child", json.dumps(fields)],
            stdout=subprocess.PIPE, text=True)
        # Text webhooks arrive while the worker streams the photos.
        text_acks = post_all(web, [webhook(hook_token, 10_000 + i, photo_base=None)
                                   for i in range(texts)])
        out, _ = worker.communicate(timeout=1200)
        assert worker.returncode == 0, out
        child = json.loads(out.strip().splitlines()[-1])
        from sqlalchemy import func, select

        from whatsapp_helpdesk.db.models import Message

        with services.sessions() as session:
            uploaded = session.scalar(select(func.count()).where(
                Message.media_state == "uploaded"))
            published = session.scalar(select(func.count()).where(
                Message.status == "published"))
        assert uploaded == photos, (uploaded, photos)
        assert published == (photos or texts) + texts + WARM_UP, published
    finally:
        for server in reversed(servers):
            server.stop()
        services.engine.dispose()
    return {"photo_ack_p50": statistics.median(photo_acks),
            "photo_ack_p95": _p95(photo_acks),
            "text_ack_p50": statistics.median(text_acks), "text_ack_p95": _p95(text_acks),
            "worker_seconds": child["seconds"], "worker_max_rss_mb": child["max_rss_mb"],
            "worker_traced_peak_mb": child["traced_peak_mb"]}


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker-child":
        child_worker(sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", default="20,100", help="burst sizes, comma-separated")
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--trace-memory", action="store_true",
                        help="also trace the worker's Python allocations (tracemalloc); slow")
    args = parser.parse_args()
    if args.trace_memory:
        import os

        os.environ["BENCH_TRACEMALLOC"] = "1"  # inherited by the worker process
    tmp = Path("var/bench")
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"{'run':<22} {'ack p50/p95 ms (webhooks of the burst)':>40} "
          f"{'text acks during drain p50/p95 ms':>36} {'worker s':>9} {'worker peak RSS MB':>19}"
          f"{' traced peak MB' if args.trace_memory else ''}")
    for photos in [0, *(int(p) for p in args.photos.split(","))]:
        f = run(photos, args.texts, tmp)
        label = f"{photos} photos x 1 MB" if photos else f"baseline: {args.texts} texts"
        print(f"{label:<22} {f['photo_ack_p50']:>31.1f} / {f['photo_ack_p95']:<6.1f} "
              f"{f['text_ack_p50']:>27.1f} / {f['text_ack_p95']:<6.1f} "
              f"{f['worker_seconds']:>9.1f} {f['worker_max_rss_mb']:>19.1f}"
              + (f" {f['worker_traced_peak_mb']:>14.1f}" if args.trace_memory else ""),
              flush=True)


if __name__ == "__main__":
    main()
