"""Benchmark: publishing at HubSpot's rate limit with client-side pacing (R44).

    .venv/bin/python bench/pacing.py [--messages 300] [--portals 5] [--workers 2]

Everything runs as separate OS processes on loopback, configured by environment variables
only, on PostgreSQL (the helpers of bench/worker_processes.py): `sandbox` (both emulators
with their REAL limits: HubSpot 110 requests / 10 s rolling per portal), `web`, and K x
`worker`. Two scenarios, each run with pacing on and, in the same run, with pacing off
(`CLIENT_PACING=false`: no shared buckets, each worker calls as fast as it can and waits
after a 429 as before; the claim order stays round-robin, there is no switch for it):

  one portal   a burst of N customer messages to one portal;
  P portals    N messages to each of P portals at once (portal 4242 with Aircall company 1,
               portal 4343 with company 2, then portals and companies added through the
               sandboxes' control extensions).

Each round: a fresh database and web process, both sandboxes reset, the installations made
through both sandboxes' OAuth and one WhatsApp number each connected from HubSpot; the
messages sent through the sandbox Aircall's customer endpoint (its webhooks fill the outbox
while no worker runs); the worker processes started behind a gate (a table lock) and timed
from the gate's opening until the outbox is drained. Per portal it prints:

  delivered   messages in the sandbox HubSpot / messages sent;
  429 share   HubSpot 429 answers / HubSpot calls (our delivery log: ok + rate_limited);
  rate        publications per second from the gate's opening to the portal's last one,
              over the limit (110 / 10 s = 11 per second, or --limit): the share of the
              ceiling reached.

Targets (issue 11 and 17): every message delivered, 429s < 1 % of calls, rate >= 0.95 of
the limit for one portal and for each of the P portals.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import structlog
from sqlalchemy import select
from worker_processes import (
    Children,
    Ports,
    _raise_on_sigterm,
    child_env,
    close_gate,
    cpu_seconds,
    drop_pg,
    free_port,
    fresh_pg,
    libpq_url,
    sandbox_process,
    wait_http,
    wait_workers_at_gate,
)

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.cli import install_on_sandbox
from whatsapp_helpdesk.connect.install import complete_aircall_oauth, complete_hubspot_oauth
from whatsapp_helpdesk.connect.numbers_refresh import read_numbers_here
from whatsapp_helpdesk.connect.popup import connect_number
from whatsapp_helpdesk.db.models import Installation, Number
from whatsapp_helpdesk.settings import Settings

DB_PREFIX = "whatsapp_helpdesk_bench_pacing"
REAL_LIMIT = 110  # the sandbox HubSpot's real per-portal limit per 10 s (reference §7)
WINDOW_SECONDS = 10


@dataclass(frozen=True)
class Account:
    """One installation: a HubSpot portal joined to an Aircall company, one number."""

    portal: int
    company: int
    number: int


SEEDED = [Account(4242, 1, 1001), Account(4343, 2, 2001)]


def accounts(count: int) -> list[Account]:
    added = [Account(5100 + i, 30 + i, (30 + i) * 1000 + 1) for i in range(max(0, count - 2))]
    return (SEEDED + added)[:count]


@dataclass
class PortalFigures:
    portal: int
    sent: int
    delivered: int = 0
    ok_calls: int = 0
    limited_calls: int = 0
    paced: int = 0
    last_done_after: float = 0.0  # seconds from the gate's opening
    limit: int = REAL_LIMIT  # requests per 10 s, in the sandbox and in our settings

    @property
    def share_429(self) -> float:
        calls = self.ok_calls + self.limited_calls
        return self.limited_calls / calls if calls else 0.0

    @property
    def rate_ratio(self) -> float:
        if not self.last_done_after:
            return 0.0
        return self.delivered / self.last_done_after / (self.limit / WINDOW_SECONDS)


@dataclass
class Round:
    scenario: str
    pacing: bool
    portals: list[PortalFigures] = field(default_factory=list)
    seconds: float = 0.0
    worker_cpu: float = 0.0
    sandbox_cpu: float = 0.0
    problems: list[str] = field(default_factory=list)


# --- installing P accounts ------------------------------------------------------------------


async def _code(services: Services, authorize_url: str) -> str:
    # The sandbox consent pages approve at once and redirect with the code.
    response = await services.http.get(authorize_url, follow_redirects=False)
    return parse_qs(urlparse(response.headers["location"]).query)["code"][0]


async def install_account(services: Services, account: Account) -> int:
    """What an admin does for one more portal and company (as operations/sandbox_demo.py does for
    the demo's), through both sandboxes' OAuth pages."""
    base = services.settings.public_url
    hubspot_cb, aircall_cb = f"{base}/oauth/hubspot/callback", f"{base}/oauth/aircall/callback"
    url = services.hubspot_oauth().authorize_url(hubspot_cb, "bench")
    code = await _code(services, f"{url}&portal_id={account.portal}")
    installation_id = await complete_hubspot_oauth(services, code=code, redirect_uri=hubspot_cb)
    url = services.aircall_oauth().authorize_url(aircall_cb, "bench")
    code = await _code(services, f"{url}&company_id={account.company}")
    await complete_aircall_oauth(services, code=code, redirect_uri=aircall_cb,
                                 installation_id=installation_id)
    await read_numbers_here(services, installation_id)  # queued by the authorisation
    return installation_id


def install(settings: Settings, ports: Ports, wanted: list[Account]) -> None:
    with httpx.Client(timeout=10) as http:
        for account in wanted[len(SEEDED):]:
            http.post(f"{ports.hubspot_url}/_sandbox/portals", json={
                "id": account.portal, "name": f"Bench {account.portal}"}).raise_for_status()
            http.post(f"{ports.aircall_url}/_sandbox/companies", json={
                "id": account.company, "name": f"Bench {account.company}"}).raise_for_status()
    asyncio.run(install_on_sandbox(settings))  # the demo: portal 4242, company 1
    services = build_services(settings)

    async def rest() -> None:
        try:
            for account in wanted[1:]:
                await install_account(services, account)
            channel_id = services.channel_id()
            agents = {p["id"]: p["agents"][0]["id"] for p in (await services.http.get(
                f"{ports.hubspot_url}/_sandbox/portals")).json()["portals"]}
            for account in wanted:
                with services.sessions.begin() as session:
                    installation_id = session.scalars(select(Installation.id).where(
                        Installation.hubspot_portal_id == str(account.portal))).one()
                    number = session.scalars(select(Number).where(
                        Number.installation_id == installation_id,
                        Number.aircall_number_id == str(account.number))).one()
                    number.connected_to_hubspot = number.helpdesk_enabled = True
                    number.native_ticketing = False
                    number_id = number.id
                token = (await services.http.post(
                    f"{ports.hubspot_url}/_sandbox/portals/{account.portal}/channel-connections",
                    json={"channelId": channel_id, "userId": agents[account.portal]},
                )).json()["accountToken"]
                await connect_number(services, installation_id=installation_id,
                                     number_id=number_id, account_token=token)
        finally:
            await services.aclose()

    try:
        asyncio.run(rest())
    finally:
        services.engine.dispose()


# --- one round ------------------------------------------------------------------------------


def text_of(portal: int, index: int) -> str:
    return f"pacing {portal} #{index}"


def load(ports: Ports, wanted: list[Account], messages: int, conversations: int) -> None:
    """Customers of every portal write, interleaved, while no worker runs."""
    with httpx.Client(base_url=ports.aircall_url, timeout=30) as aircall:
        for index in range(messages):
            for account in wanted:
                phone = f"+3361{account.company:03d}{index % conversations:04d}"
                aircall.post("/_sandbox/customer/messages", json={
                    "from": phone, "number_id": account.number,
                    "text": text_of(account.portal, index)}).raise_for_status()
        deadline = time.monotonic() + 120
        while aircall.get("/_sandbox/deliveries").json()["pending"]:
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox Aircall deliveries still pending after 120 s")
            time.sleep(0.1)


def run_round(scenario: str, wanted: list[Account], pacing: bool, args: argparse.Namespace,
              ports: Ports, children: Children) -> Round:
    result = Round(scenario=scenario, pacing=pacing)
    # The pid: two runs of this benchmark at once (two sessions on one machine) must not
    # drop each other's database, which ends the other run's connections, its gate with them.
    database = f"{DB_PREFIX}_{os.getpid()}_{len(wanted)}_{'on' if pacing else 'off'}"
    database_url = fresh_pg(database)
    web_port = free_port()
    env = child_env(database_url, ports, web_port) | {
        "CLIENT_PACING": "true" if pacing else "false", "WORKER_CONCURRENCY": str(args.slots),
        "HUBSPOT_RATE_LIMIT": str(args.limit)}
    try:
        children.start("web", "web", env)
        wait_http(f"http://127.0.0.1:{web_port}/healthz", children)
        for url in (ports.hubspot_url, ports.aircall_url):
            httpx.post(f"{url}/_sandbox/reset", timeout=10).raise_for_status()
        # The sandboxes' real limits stay on: they are what this benchmark measures
        # (--limit lowers HubSpot's, in the sandbox and in our settings alike).
        if args.limit != REAL_LIMIT:
            httpx.post(f"{ports.hubspot_url}/_sandbox/config",
                       json={"rate_limit_max": args.limit}, timeout=10).raise_for_status()
        settings = Settings(database_url=database_url, public_url=env["PUBLIC_URL"],
                            port=web_port, sandbox_hubspot_port=ports.hubspot,
                            sandbox_aircall_port=ports.aircall, reorder_grace_seconds=0,
                            log_level="WARNING", _env_file=None)  # type: ignore[call-arg]
        install(settings, ports, wanted)
        load(ports, wanted, args.messages, args.conversations)

        with psycopg.connect(libpq_url(database)) as conn, \
                psycopg.connect(libpq_url(database)) as gate:
            close_gate(gate)
            names = [f"pacing-worker-{i}" for i in range(args.workers)]
            for name in names:
                children.start(name, "worker", env | {
                    "DATABASE_URL": f"{database_url}?application_name={name}"})
            # Claims run in asyncio's default thread pool: at most cores + 4 at once.
            at_gate = min(args.slots, (os.cpu_count() or 1) + 4)
            wait_workers_at_gate(conn, gate, names, at_gate, children)
            pids = [children.procs[name].pid for name in names]
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            sandbox_before = cpu_seconds(children.procs["sandbox"].pid)
            gate.commit()  # open the gate
            opened_at = time.time()
            started = time.perf_counter()
            deadline = started + args.timeout
            while conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'"
                               ).fetchone()[0]:
                conn.commit()
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"outbox not drained after {args.timeout:.0f} s")
                children.check_alive()
                time.sleep(0.05)
            result.seconds = time.perf_counter() - started
            conn.commit()
            result.worker_cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
            result.sandbox_cpu = cpu_seconds(children.procs["sandbox"].pid) - sandbox_before
            children.stop(*names)
            result.portals = figures(conn, ports, wanted, args.messages, opened_at, args.limit)
        for portal in result.portals:
            if portal.delivered != portal.sent:
                result.problems.append(
                    f"portal {portal.portal}: {portal.delivered} of {portal.sent} delivered")
    finally:
        # Every process of the round stops before its database is dropped: DROP … WITH
        # (FORCE) would otherwise end their connections, and their logs would fill with
        # AdminShutdown crashes that hide what went wrong first.
        children.stop(*[name for name in children.procs if name != "sandbox"])
        drop_pg(database)
    return result


def figures(conn: psycopg.Connection[Any], ports: Ports, wanted: list[Account], sent: int,
            opened_at: float, limit: int) -> list[PortalFigures]:
    out = []
    for account in wanted:
        portal = PortalFigures(portal=account.portal, sent=sent, limit=limit)
        rows = conn.execute("""
            SELECT a.outcome, count(*) FROM delivery_attempts a
            JOIN outbox o ON o.id = a.outbox_id JOIN installations i ON i.id = o.installation_id
            WHERE i.hubspot_portal_id = %s GROUP BY a.outcome""", (str(account.portal),))
        outcomes = dict(rows.fetchall())
        portal.ok_calls = outcomes.get("ok", 0)
        portal.limited_calls = outcomes.get("rate_limited", 0)
        portal.paced = outcomes.get("paced", 0)
        last = conn.execute("""
            SELECT extract(epoch FROM max(o.finished_at)) FROM outbox o
            JOIN installations i ON i.id = o.installation_id
            WHERE i.hubspot_portal_id = %s AND o.state = 'done'""",
                            (str(account.portal),)).fetchone()[0]
        conn.commit()
        portal.last_done_after = float(last) - opened_at if last is not None else 0.0
        tickets = httpx.get(f"{ports.hubspot_url}/_sandbox/portals/{account.portal}/tickets",
                            timeout=30).json()["tickets"]
        texts = {m["text"] for t in tickets for m in t["messages"]
                 if str(m.get("direction", "")).upper().startswith("INCOMING")}
        portal.delivered = len(texts & {text_of(account.portal, i) for i in range(sent)})
        out.append(portal)
    return out


def print_rounds(rounds: list[Round]) -> None:
    print(f"\n{'scenario':<12} {'pacing':<7} {'portal':>6} {'delivered':>11} {'calls':>6} "
          f"{'429':>5} {'429 share':>9} {'paced':>6} {'rate / limit':>12}")
    for r in rounds:
        for p in r.portals:
            print(f"{r.scenario:<12} {'on' if r.pacing else 'off':<7} {p.portal:>6} "
                  f"{p.delivered:>5}/{p.sent:<5} {p.ok_calls + p.limited_calls:>6} "
                  f"{p.limited_calls:>5} {p.share_429:>9.2%} {p.paced:>6} {p.rate_ratio:>12.3f}")
        print(f"{'':<12} {'':<7} drained in {r.seconds:.1f} s, CPU: workers {r.worker_cpu:.1f} s, "
              f"sandboxes {r.sandbox_cpu:.1f} s"
              + (f"; PROBLEMS: {r.problems}" if r.problems else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300, help="per portal")
    parser.add_argument("--portals", type=int, default=5)
    parser.add_argument("--conversations", type=int, default=40, help="per portal")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--slots", type=int, default=4,
                        help="WORKER_CONCURRENCY of each worker process (default 4)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per drain, seconds")
    parser.add_argument("--limit", type=int, default=REAL_LIMIT,
                        help="HubSpot requests per portal per 10 s (default: the real 110); "
                        "lower, the workers' CPU is out of the way on a busy machine")
    parser.add_argument("--only", choices=["one", "many"], help="run one scenario only")
    parser.add_argument("--skip-unpaced", action="store_true",
                        help="do not run the comparison with pacing off")
    args = parser.parse_args()
    for key in [k for k in os.environ if k.upper().startswith(("HUBSPOT_", "AIRCALL_"))]:
        del os.environ[key]
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    print(f"machine: {os.cpu_count()} cores, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f} GiB; "
          f"{args.workers} worker processes x {args.slots} slots; {args.messages} messages per "
          f"portal over {args.conversations} conversations", file=sys.stderr)

    scenarios = [("one portal", accounts(1)), (f"{args.portals} portals", accounts(args.portals))]
    if args.only:
        scenarios = scenarios[:1] if args.only == "one" else scenarios[1:]
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="bench-pacing-") as log_dir:
        children = Children(Path(log_dir))
        try:
            with sandbox_process(children) as ports:
                for name, wanted in scenarios:
                    for pacing in ([True] if args.skip_unpaced else [True, False]):
                        rounds.append(run_round(name, wanted, pacing, args, ports, children))
                        worst = min(p.rate_ratio for p in rounds[-1].portals)
                        print(f"  {name}, pacing {'on' if pacing else 'off'}: drained in "
                              f"{rounds[-1].seconds:.1f} s, lowest rate / limit {worst:.3f}",
                              file=sys.stderr)
        except BaseException:
            children.print_logs()
            raise
        finally:
            children.stop_all()
    print_rounds(rounds)
    if any(r.problems for r in rounds):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
