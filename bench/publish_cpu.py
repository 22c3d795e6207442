"""Benchmark: the worker's own CPU per publication, in process, and what it is spent on.

    PYTHONPATH=tests .venv/bin/python bench/publish_cpu.py [--databases sqlite,postgresql]
        [--messages 200] [--conversations 20] [--rounds 3] [--profile DIR]

bench/end_to_end.py measures a worker process's CPU per publication under load, through the
noise of a shared machine. This one isolates it: the stack of the e2e tests (the sandboxes
and the web app in threads of this process) stores --messages customer messages, then one
worker slot publishes them all on this process's main thread, its thread hops done inline
(as `bench/end_to_end.py --profile` does), timed by that thread's CPU clock
(`time.thread_time`): the sandbox HubSpot answering it runs on a thread of its own, and
waiting for it or for the database is not CPU. Printed per publication: CPU ms, SQL
statements (an SQLAlchemy `before_cursor_execute` listener), transactions (`begin`),
HTTP requests; with --profile, a cProfile of the timed part (thread CPU clock).

The first --conversations messages are published before the timed part (caches warm,
every conversation with its ticket). Each round stores and publishes a new batch.
PostgreSQL must run at 127.0.0.1:5432 with trust auth for user postgres.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import structlog  # noqa: E402
from harness.stack import Stack, running_stack  # noqa: E402
from sqlalchemy import event, text  # noqa: E402
from worker_processes import drop_pg, fresh_pg  # noqa: E402

from whatsapp_helpdesk.bootstrap import build_services  # noqa: E402
from whatsapp_helpdesk.db import outbox  # noqa: E402
from whatsapp_helpdesk.worker.runner import Worker  # noqa: E402

DB_PREFIX = "whatsapp_helpdesk_bench_publish_cpu"


def _phone(i: int) -> str:
    return f"+336{10_000_000 + i:08d}"


def _pending(stack: Stack) -> int:
    with stack.services.engine.connect() as connection:
        return int(connection.execute(text(
            "SELECT count(*) FROM outbox WHERE state = 'pending'")).scalar_one())


def _store(stack: Stack, count: int, conversations: int, label: str) -> None:
    """`count` customer messages, stored with their publish entries."""
    for i in range(count):
        stack.customer_says(f"{label} #{i}", phone=_phone(i % conversations))
    stack.wait_deliveries(timeout=120)
    deadline = time.monotonic() + 60
    while _pending(stack) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_pending(stack)} of {count} entries stored")
        time.sleep(0.05)
    # Until every entry is due (the harness's reorder grace, R15): the timed slot must not
    # find one that is not yet.
    while True:
        with stack.services.engine.connect() as connection:
            if outbox.look(connection, stack.services.clock.now()).next_at is None:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("entries not due")
        time.sleep(0.05)


class Counts:
    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0

    def statement(self, *_args: Any) -> None:
        self.statements += 1

    def transaction(self, *_args: Any) -> None:
        self.transactions += 1


def _publish_all(stack: Stack, profile: cProfile.Profile | None) -> tuple[int, float, Counts,
                                                                           int]:
    """Every pending entry, by one worker slot on this thread: (jobs, CPU s, counts,
    HTTP requests)."""
    services = build_services(stack.settings, for_the_worker=True)
    counts = Counts()
    requests = 0

    async def inline(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    async def main() -> tuple[int, float]:
        nonlocal requests
        worker = Worker(services, concurrency=1)

        async def count_request(_request: Any) -> None:
            nonlocal requests
            requests += 1

        services.http.event_hooks["request"].append(count_request)
        # As the run loop's slots work (the next entry claimed in the completion's
        # transaction), where the tree has it.
        chain = ({"chain": True} if "chain" in inspect.signature(Worker.work_once).parameters
                 else {})
        jobs, started = 0, time.thread_time()
        if profile is not None:
            profile.enable()
        try:
            while await worker.work_once(after_idle=jobs == 0, **chain):
                jobs += 1
        finally:
            if profile is not None:
                profile.disable()
        return jobs, time.thread_time() - started

    to_thread = asyncio.to_thread
    asyncio.to_thread = inline  # type: ignore[assignment]
    event.listen(services.engine, "before_cursor_execute", counts.statement)
    event.listen(services.engine, "begin", counts.transaction)
    try:
        async def run() -> tuple[int, float]:
            try:
                return await main()
            finally:
                await services.aclose()
        jobs, cpu = asyncio.run(run())
    finally:
        asyncio.to_thread = to_thread  # type: ignore[assignment]
        event.remove(services.engine, "before_cursor_execute", counts.statement)
        event.remove(services.engine, "begin", counts.transaction)
        services.engine.dispose()
    return jobs, cpu, counts, requests


def run_database(name: str, url: str, args: argparse.Namespace, tmp: Path) -> list[str]:
    lines = []
    profile = cProfile.Profile(time.thread_time) if args.profile else None
    settings = {"log_level": "WARNING",
                "hubspot_rate_limit": 1_000_000, "aircall_rate_limit": 1_000_000}
    with running_stack(url, tmp, **settings) as stack:
        # The sandbox's own limits out of the way too (bench/pacing.py measures them).
        stack.hubspot.post("/_sandbox/config", json={"rate_limit_max": 1_000_000})
        stack.connect()
        _store(stack, args.conversations, args.conversations, f"{name} warm-up")
        _publish_all(stack, None)
        figures = []
        for round_ in range(args.rounds):
            _store(stack, args.messages, args.conversations, f"{name} round {round_}")
            jobs, cpu, counts, requests = _publish_all(stack, profile)
            if jobs != args.messages or _pending(stack):
                raise RuntimeError(f"{jobs} jobs for {args.messages} messages")
            figures.append(1000 * cpu / jobs)
            lines.append(f"{name:10s} round {round_ + 1}: {1000 * cpu / jobs:5.2f} CPU ms per "
                         f"publication, {counts.statements / jobs:4.1f} statements, "
                         f"{counts.transactions / jobs:3.1f} transactions, "
                         f"{requests / jobs:3.1f} HTTP requests")
        published = len([m for t in stack.tickets() for m in t["messages"]])
        if published != args.conversations + args.rounds * args.messages:
            raise RuntimeError(f"{published} messages in the help desk")
        lines.append(f"{name:10s} median {statistics.median(figures):5.2f} CPU ms per "
                     "publication")
    if profile is not None:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        profile.dump_stats(Path(args.profile) / f"publish-{name.lower()}.prof")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="directory for the timed part's cProfile output")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.upper().startswith(("HUBSPOT_", "AIRCALL_"))]:
        del os.environ[key]  # sandbox mode
    # As the benchmark's worker processes run (LOG_LEVEL=WARNING): nothing per success.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-publish-cpu-") as tmp:
        for database in args.databases.split(","):
            if database == "sqlite":
                lines += run_database("SQLite", f"sqlite:///{Path(tmp) / 'p.sqlite3'}", args,
                                      Path(tmp) / "sqlite")
            else:
                pg_name = f"{DB_PREFIX}_{os.getpid()}"
                try:
                    lines += run_database("PostgreSQL", fresh_pg(pg_name), args,
                                          Path(tmp) / "pg")
                finally:
                    drop_pg(pg_name)
    print(f"\npublish CPU, in process, one slot; {args.messages} publications per round, "
          f"{args.conversations} conversations")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
