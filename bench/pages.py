"""Benchmark: every dashboard page at scale, and the bytes each message costs (issue 17,
items 6 and 8), on SQLite and PostgreSQL side by side in one run.

    .venv/bin/python bench/pages.py [--numbers 5000] [--messages 1000000] [--pending 10000]
                                    [--databases sqlite,postgresql] [--repeat 5]

For each database: a fresh, migrated database is seeded with SQLAlchemy Core bulk inserts
(one installation, --numbers numbers, 4 conversations per number, --messages messages
spread over those conversations and over a year, each inbound message with its raw Aircall
webhook event (a real-sized payload) and its done outbox entry, plus --pending pending
outbox entries). Then:

  1. pages: the web app (web/app.py, in this process, through ASGI: server-side time, no
     network) serves each page --repeat times to a signed-in admin; the median time and
     the size of each are printed. The dashboard of the previous commit's
     dashboard/reads.py (`--before REV`, default the parent of the change) is timed the same
     way for its data and rendering, for the before/after table;
  2. storage: bytes per message (whole database / messages) with every payload kept, then
     after the retention job (operations/payload_retention.py, 30 days) pruned the older ones
     (payloads emptied, done outbox entries deleted),
     measured as live bytes (SQLite VACUUM, PostgreSQL VACUUM FULL: the space a steady state
     re-uses is not counted as used);
  3. the peak resident memory of this process (the web app serving the pages).

PostgreSQL must run at 127.0.0.1:5432 with trust auth for user postgres; the benchmark's
database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.util
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, insert, select, text

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import (
    AdminSession,
    Conversation,
    Installation,
    Message,
    Number,
    OutboxEntry,
    WebhookEvent,
)
from whatsapp_helpdesk.domain.clock import ManualClock
from whatsapp_helpdesk.operations import payload_retention
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
CHUNK = 20_000
TOKEN = "bench-session-token"
CONVERSATIONS_PER_NUMBER = 4


def _payload(i: int) -> str:
    """An Aircall `message.received` delivery of the documented shape (about 1.2 KB)."""
    return json.dumps({
        "resource": "message", "event": "message.received", "timestamp": 1764547200 + i,
        "token": "a" * 32,
        "data": {
            "id": f"wamid.HBgLMzM2MTIzNDU2NzgVAgASGBQzQTg{i:012d}", "direction": "inbound",
            "external_id": f"ext-{i}", "status": "received", "raw_digits": "+33 6 12 34 56 78",
            "body": "Bonjour, ma commande n'est toujours pas arrivée, pouvez-vous vérifier ?",
            "media_details": [], "created_at": "2026-12-01T10:00:00.000Z",
            "updated_at": "2026-12-01T10:00:00.000Z", "sent_at": "2026-12-01T10:00:00.000Z",
            "channel": "whatsapp",
            "number": {"id": 1001, "direct_link": "https://api.aircall.io/v1/numbers/1001",
                       "name": "Support France", "digits": "+33 1 76 36 06 95",
                       "country": "FR", "time_zone": "Europe/Paris", "open": True},
            "contact": {"id": 778899, "direct_link": "https://api.aircall.io/v1/contacts/778899",
                        "first_name": "Camille", "last_name": "Durand",
                        "company_name": "Durand & Fils",
                        "phone_numbers": [{"id": 1, "label": "Mobile",
                                           "value": "+33612345678"}],
                        "emails": [{"id": 2, "label": "Work", "value": "camille@example.fr"}]},
        },
    })


def seed(services: Services, numbers: int, messages: int, pending: int) -> int:
    started = time.monotonic()
    with services.engine.begin() as db:
        installation_id = db.execute(insert(Installation).values(
            hubspot_portal_id="4242", aircall_company_id="1", aircall_company_name="Bench",
            hubspot_scopes="", aircall_scopes="", created_at=NOW, updated_at=NOW,
        ).returning(Installation.id)).scalar_one()
        db.execute(insert(Number), [
            {"installation_id": installation_id, "aircall_number_id": str(10_000 + i),
             "name": f"Line {i:05d}", "digits": f"+1 555 {i:07d}", "e164": f"+1555{i:07d}",
             "country": "US", "calls_enabled": True, "sms_enabled": i % 3 == 0,
             "whatsapp_enabled": i % 2 == 0, "whatsapp_status": "ACTIVE" if i % 2 == 0 else None,
             "connected_to_hubspot": i % 4 == 0, "helpdesk_enabled": i % 4 == 0,
             "native_ticketing": i % 8 == 4}
            for i in range(numbers)
        ])
        number_ids = list(db.scalars(select(Number.id).order_by(Number.id)))
        db.execute(insert(Conversation), [
            {"installation_id": installation_id, "number_id": n,
             "customer_e164": f"+3361{k:02d}{n:06d}", "customer_name": f"Customer {k}",
             "created_at": NOW - timedelta(days=365)}
            for n in number_ids for k in range(CONVERSATIONS_PER_NUMBER)
        ])
        conversation_ids = list(db.scalars(select(Conversation.id).order_by(Conversation.id)))
    rng = random.Random(17)
    year = 365 * 24 * 3600
    for start in range(0, messages, CHUNK):
        rows, events = [], []
        for i in range(start, min(start + CHUNK, messages)):
            # In arrival order over the year before NOW, as ids and receipt times go.
            at = NOW - timedelta(seconds=year * (messages - i) / messages + rng.random())
            inbound = i % 2 == 0
            rows.append({
                "installation_id": installation_id,
                "conversation_id": conversation_ids[i % len(conversation_ids)],
                "direction": "inbound" if inbound else "outbound",
                "provider_message_id": f"wamid.{i:012d}", "hubspot_message_id": f"hs-{i}",
                "kind": "text", "text": "Bonjour, ma commande n'est toujours pas arrivée.",
                "sent_at": at, "stored_at": at, "status": "published" if inbound else "read",
                "sender_name": "Camille Durand" if inbound else "Agent",
            })
            events.append({
                "source": "aircall", "installation_id": installation_id,
                "event_type": "message.received" if inbound else "message.status_updated",
                "scope": "webhook:" + "d" * 64, "dedupe_key": f"aircall:{i}",
                "outcome": "stored", "payload": _payload(i), "received_at": at,
            })
        with services.engine.begin() as db:
            ids = list(db.scalars(
                insert(Message).returning(Message.id, sort_by_parameter_order=True), rows))
            db.execute(insert(WebhookEvent), events)
            db.execute(insert(OutboxEntry), [
                {"installation_id": installation_id, "kind": "publish_inbound",
                 "message_id": message_id, "payload": "{}",
                 "ordering_key": f"c:{row['conversation_id']}",
                 "ordering_at": row["sent_at"], "state": "done", "attempts": 1,
                 "available_at": row["sent_at"], "created_at": row["sent_at"],
                 "finished_at": row["sent_at"]}
                for message_id, row in zip(ids, rows, strict=True)
            ])
            if start + CHUNK >= messages:  # the newest entries, as in a live outbox
                db.execute(insert(OutboxEntry), [
                    {"installation_id": installation_id, "kind": "publish_inbound",
                     "message_id": ids[k % len(ids)], "payload": "{}",
                     "ordering_key": f"p:{k % 50}", "ordering_at": NOW, "state": "pending",
                     "attempts": 0, "available_at": NOW + timedelta(days=1), "created_at": NOW}
                    for k in range(pending)
                ])
    print(f"  seeded {numbers} numbers, {messages} messages, {pending} pending in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    return installation_id


def sign_in(services: Services, installation_id: int) -> None:
    with services.sessions.begin() as session:
        session.add(AdminSession(
            token_hash=hashlib.sha256(TOKEN.encode()).hexdigest(), installation_id=installation_id,
            data=json.dumps({"installation_id": installation_id, "csrf_token": "x"}),
            created_at=datetime.now(UTC), expires_at=datetime.now(UTC) + timedelta(days=1)))


async def time_pages(services: Services, paths: list[str], repeat: int
                     ) -> dict[str, tuple[float, int, int]]:
    app = create_app(services)
    transport = httpx.ASGITransport(app=app)
    results: dict[str, tuple[float, int, int]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8700",
                                 cookies={"wh_session": TOKEN}) as client:
        for path in paths:
            times, size, status = [], 0, 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                answer = await client.get(path)
                times.append(time.perf_counter() - t0)
                size, status = len(answer.content), answer.status_code
            results[path] = (statistics.median(times) * 1000, size, status)
    return results


def time_before(services: Services, installation_id: int, revision: str, repeat: int
                ) -> float | None:
    """The previous dashboard_view (its data; the old page also rendered every number)."""
    source = None
    # Where the dashboard's reads lived at that revision (dashboard/reads.py before the move
    # to use-case packages).
    for path in ("dashboard/reads.py", "dashboard/reads.py"):
        try:
            source = subprocess.run(
                ["git", "show", f"{revision}:src/whatsapp_helpdesk/{path}"],
                cwd=ROOT, check=True, capture_output=True, text=True).stdout
            break
        except subprocess.CalledProcessError:
            continue
    if source is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("dashboard_before", handle.name)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["dashboard_before"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            module.dashboard_view(services, installation_id)
            times.append(time.perf_counter() - t0)
    except Exception as exc:  # an old module that no longer fits today's code
        print(f"  (before: {exc!r})")
        return None
    finally:
        os.unlink(handle.name)
    return statistics.median(times) * 1000


def live_bytes(services: Services) -> int:
    engine = services.engine
    if engine.dialect.name == "sqlite":
        engine.dispose()  # VACUUM needs the file to itself, outside any transaction
        db = sqlite3.connect(str(engine.url.database), isolation_level=None)
        try:
            db.execute("VACUUM")
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            size = db.execute("PRAGMA page_size").fetchone()[0]
        finally:
            db.close()
        return int(pages * size)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
        db.exec_driver_sql("VACUUM FULL")
        return int(db.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind}", flush=True)
    admin, folder = None, None
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="bench-pages-")
        url = f"sqlite:///{folder}/bench.db"
    else:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        name = f"bench_pages_{os.getpid()}"
        with admin.connect() as db:
            db.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            db.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    # The retention job's clock is the seeding's "now": payloads older than 30 days go.
    services = build_services(Settings(database_url=url, webhook_payload_retention_days=30,
                                       _env_file=None),  # type: ignore[call-arg]
                              clock=ManualClock(NOW))
    try:
        upgrade(services.engine)
        installation_id = seed(services, args.numbers, args.messages, args.pending)
        if kind == "postgresql":
            with services.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                db.exec_driver_sql("ANALYZE")
        sign_in(services, installation_id)
        with services.sessions() as session:
            far = session.scalar(select(func.max(Number.id)))
        paths = ["/dashboard", f"/dashboard?page={args.numbers // 50}",
                 "/dashboard?q=Line%200420", "/dashboard?q=555%2000049",
                 f"/dashboard/numbers/{far}/disconnect", "/"]
        pages = asyncio.run(time_pages(services, paths, args.repeat))
        before = time_before(services, installation_id, args.before, max(1, args.repeat // 2))
        kept = live_bytes(services)
        t0 = time.monotonic()
        pruned = payload_retention.prune_webhook_payloads(services)
        pruned_done = payload_retention.prune_done_entries(services)
        prune_s = time.monotonic() - t0
        after = live_bytes(services)
        return {"pages": pages, "before_ms": before, "kept": kept, "after": after,
                "pruned": pruned, "pruned_done": pruned_done, "prune_s": prune_s}
    finally:
        services.engine.dispose()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if admin is not None:
            with admin.connect() as db:
                db.execute(text(
                    f'DROP DATABASE IF EXISTS "bench_pages_{os.getpid()}" WITH (FORCE)'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=5000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default="39c60b5",
                        help="git revision whose dashboard reads are the 'before'")
    args = parser.parse_args()
    print(f"cores {os.cpu_count()}, {args.numbers} numbers, {args.messages} messages, "
          f"{args.pending} pending; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", flush=True)
    results = {kind: run_one(kind, args) for kind in args.databases.split(",")}
    print("\npage (median ms / KB / status)")
    kinds = list(results)
    for path in next(iter(results.values()))["pages"]:
        cells = []
        for k in kinds:
            ms, size, status = results[k]["pages"][path]
            cells.append(f"{k} {ms:7.1f} ms {size / 1024:7.1f} KB {status}")
        print(f"  {path:42s} " + " | ".join(cells))
    for k in kinds:
        r = results[k]
        before = f"{r['before_ms']:.0f} ms" if r["before_ms"] is not None else "n/a"
        print(f"  {k}: dashboard data before the change ({args.before}): {before}")
        print(f"  {k}: bytes per message, payloads kept {r['kept'] / args.messages:,.0f}; "
              f"after pruning {r['pruned']:,} payloads and {r['pruned_done']:,} done entries "
              f"older than 30 days ({r['prune_s']:.1f} s): {r['after'] / args.messages:,.0f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak RSS of this process (web app serving the pages): {peak:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
