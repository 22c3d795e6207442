"""The chaos suite (issue 11, R14-R16, R44, R45, R53): nothing lost, nothing duplicated,
nothing misordered, with the real service under faults.

    scripts/chaos.sh [--short|--full] [--set field=value ...] [--keep-logs]

One run:
  1. a private PostgreSQL cluster (initdb + pg_ctl, temp dir, own port); the sandbox
     process (both emulators); K `web` processes behind a round-robin TCP proxy (the one
     URL both providers call); M `worker` processes — all real OS processes;
  2. two installations of ONE Aircall company in TWO HubSpot portals: 4242 with number 1001,
     4343 with number 1003 (Aircall delivers every event of the company to both webhooks);
  3. customers write (bursts of 1..3 messages, some images with a caption) and agents reply
     on the tickets that exist, while: the sandbox HubSpot answers a share of API calls
     with 429, 500, 503, a 12 s stall (a timeout) or a dropped connection; the sandbox
     Aircall delivers each webhook after a random delay (late, out of order) and, part of
     the time, twice; web and worker processes are SIGKILLed at random and restarted; the
     PostgreSQL cluster is stopped (immediate mode) and started again mid-run;
  4. faults cleared, everything up, then a wait (on conditions, with a deadline) until
     no webhook delivery and no outbox entry is pending;
  5. message by message: each inbound message in the right portal exactly once, in its
     conversation's order, in its conversation's one ticket, with its words (a caption
     too); each reply on the customer's phone exactly once or FAILED with a reason.

The counts are what the run saw; nothing is tuned to pass. Exit status 1 when anything was
lost, duplicated, misordered or put in the wrong ticket.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import structlog
from harness.private_postgres import PrivatePostgres, free_port

from chaos.processes import Children, RoundRobinProxy, http_ok, wait_until
from chaos.scenario import Scenario

PORTAL_A, PORTAL_B = 4242, 4343
COMPANY = 1  # the sandbox Aircall's "Demo Company", connected to both portals
NUMBER_A, NUMBER_B = 1001, 1003  # WhatsApp ONLINE numbers of company 1
PORTAL_OF_NUMBER = {NUMBER_A: PORTAL_A, NUMBER_B: PORTAL_B}
AGENT_OF_PORTAL = {PORTAL_A: 1, PORTAL_B: 3}  # the sandbox HubSpot's seeded users
DATABASE = "chaos"


# --- what was sent ---------------------------------------------------------------------------


@dataclass
class Sent:
    token: str
    conversation: int
    seq: int
    phone: str
    number_id: int
    kind: str  # text | image
    text: str
    aircall_id: str = ""
    at: float = 0.0


@dataclass
class Reply:
    token: str
    conversation: int
    portal: int
    thread_id: str
    at: float = 0.0


@dataclass
class Report:
    scenario: str
    inbound_sent: int = 0
    inbound_ok: int = 0
    lost: int = 0
    duplicated: int = 0  # messages shown more than once
    extra_copies: int = 0  # the copies beyond the first
    misordered: int = 0  # as HubSpot shows the conversation
    published_out_of_order: int = 0  # as the worker published them (HubSpot sorts by time)
    wrong_ticket: int = 0
    wrong_portal: int = 0
    replies_sent: int = 0
    replies_on_phone: int = 0
    replies_failed: int = 0
    replies_lost: int = 0
    replies_duplicated: int = 0
    retried_jobs: int = 0  # outbox entries that needed more than one attempt
    failed_attempts: int = 0  # worker attempts not ok (delivery_attempts)
    webhook_retries: int = 0  # Aircall deliveries attempted more than once
    spooled: float = 0.0
    hubspot_faults: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    unexpected_exits: list[str] = field(default_factory=list)
    pg_outage_seconds: float = 0.0
    duplicate_deliveries: int = 0
    drained: bool = False
    drain_seconds: float = 0.0
    still_pending: str = ""  # what the drain still saw at its deadline (empty when drained)
    webhooks_auto_disabled: int = 0
    webhooks_disabled_spans: str = ""
    lost_reasons: dict[str, int] = field(default_factory=dict)
    lost_examples: list[str] = field(default_factory=list)
    reply_failure_reasons: dict[str, int] = field(default_factory=dict)
    misordered_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)
    log_dir: str = ""

    @property
    def passed(self) -> bool:
        return not (self.lost or self.duplicated or self.misordered or self.wrong_ticket
                    or self.wrong_portal or self.replies_lost or self.replies_duplicated)

    def summary(self) -> str:
        lines = [
            f"chaos run ({self.scenario}): {'PASS' if self.passed else 'FAIL'}",
            f"  inbound  sent {self.inbound_sent}  ok {self.inbound_ok}  lost {self.lost}  "
            f"duplicated {self.duplicated} (+{self.extra_copies} copies)  misordered "
            f"{self.misordered}  wrong ticket {self.wrong_ticket}  wrong portal "
            f"{self.wrong_portal}  (published out of order: {self.published_out_of_order})",
            f"  replies  sent {self.replies_sent}  on phone once {self.replies_on_phone}  "
            f"FAILED with reason {self.replies_failed}  lost {self.replies_lost}  "
            f"duplicated {self.replies_duplicated}",
            f"  retried  {self.retried_jobs} jobs ({self.failed_attempts} failed attempts), "
            f"{self.webhook_retries} webhook deliveries retried by Aircall;  spooled "
            f"{self.spooled:.0f}",
            f"  chaos    HubSpot faults {self.hubspot_faults}; {self.kills} SIGKILLs; "
            f"PostgreSQL down {self.pg_outage_seconds:.0f} s; "
            f"{self.duplicate_deliveries} duplicate webhook deliveries; exited by themselves "
            f"(restarted): {dict(Counter(self.unexpected_exits)) or 'none'}",
            f"  end      drained {self.drained} in {self.drain_seconds:.0f} s; Aircall "
            f"webhooks auto-disabled at the end: {self.webhooks_auto_disabled}, during the "
            f"run: {self.webhooks_disabled_spans}",
        ]
        if self.still_pending:
            lines.append(f"  pending at the drain's deadline: {self.still_pending}")
        if self.lost_reasons:
            lines.append("  lost, by cause: " + "; ".join(
                f"{n} x {reason}" for reason, n in sorted(
                    self.lost_reasons.items(), key=lambda item: -item[1])))
            lines += [f"    e.g. {example}" for example in self.lost_examples[:5]]
        if self.reply_failure_reasons:
            lines.append("  replies FAILED, by reason: " + "; ".join(
                f"{n} x {r}" for r, n in self.reply_failure_reasons.items()))
        lines += [f"  duplicated e.g. {e}" for e in self.duplicated_examples[:3]]
        lines += [f"  misordered e.g. {e}" for e in self.misordered_examples[:3]]
        if self.log_dir:
            lines.append(f"  logs: {self.log_dir}")
        return "\n".join(lines)


# --- the stack -------------------------------------------------------------------------------


class Stack:
    def __init__(self, scenario: Scenario, root: Path):
        self.scenario = scenario
        self.root = root
        self.pg = PrivatePostgres(root / "pg")
        self.children = Children(root)
        self.hubspot_port, self.aircall_port = free_port(), free_port()
        self.web_ports = [free_port() for _ in range(scenario.web_processes)]
        self.proxy = RoundRobinProxy(self.web_ports)
        self.hubspot = httpx.Client(base_url=f"http://127.0.0.1:{self.hubspot_port}",
                                    timeout=30)
        self.aircall = httpx.Client(base_url=f"http://127.0.0.1:{self.aircall_port}",
                                    timeout=30)
        self.web_names = [f"web{i + 1}" for i in range(scenario.web_processes)]
        self.worker_names = [f"worker{i + 1}" for i in range(scenario.worker_processes)]

    @property
    def database_url(self) -> str:
        return self.pg.sqlalchemy_url(DATABASE)

    def env(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               # Any real credential or API base would take the service out of sandbox mode.
               if not k.upper().startswith(("HUBSPOT_", "AIRCALL_", "CHAOS_"))}
        env.update(
            DATABASE_URL=self.database_url, PORT=str(port), PUBLIC_URL=self.proxy.url,
            SANDBOX_HUBSPOT_PORT=str(self.hubspot_port),
            SANDBOX_AIRCALL_PORT=str(self.aircall_port), LOG_LEVEL="WARNING",
            REORDER_GRACE_SECONDS=str(self.scenario.reorder_grace_seconds),
            WORKER_LEASE_SECONDS=str(self.scenario.worker_lease_seconds),
            AIRCALL_RATE_WINDOW_SECONDS=str(self.scenario.aircall_rate_window_seconds),
        )
        return env

    def start(self) -> None:
        # The sandbox process starts while the cluster is made: it needs no database.
        self.proxy.start()
        self.children.start("sandbox", ["sandbox"], self.env(free_port()))
        self.pg.init()
        self.pg.start()
        self.pg.create_database(DATABASE)
        for url in (self.hubspot.base_url, self.aircall.base_url):
            wait_until(lambda u=url: http_ok(f"{u}/_sandbox/clock"), timeout=60,
                       what="sandbox up")
        window = self.scenario.aircall_rate_window_seconds
        if window != 60.0:
            self.aircall.post("/_sandbox/config", json={
                "rate_limit_window_seconds": window}).raise_for_status()
        # The first web process migrates the fresh database before the others start.
        for index, (name, port) in enumerate(zip(self.web_names, self.web_ports, strict=True)):
            self.children.start(name, ["web"], self.env(port))
            if index == 0:
                wait_until(lambda p=port: http_ok(f"http://127.0.0.1:{p}/healthz"),
                           timeout=90, what="first web process up")
        for port in self.web_ports:
            wait_until(lambda p=port: http_ok(f"http://127.0.0.1:{p}/healthz"), timeout=90,
                       what="web processes up")

    def start_workers(self) -> None:
        for name in self.worker_names:
            self.children.start(name, ["worker"], self.env(free_port()))

    def close(self) -> None:
        self.children.stop_all()
        self.proxy.stop()
        self.hubspot.close()
        self.aircall.close()
        self.pg.destroy()

    def outbox_pending_entries(self) -> str:
        """What the outbox still holds pending, by kind (for a drain that did not end)."""
        try:
            with psycopg.connect(self.pg.libpq_url(DATABASE), connect_timeout=3) as conn:
                rows = conn.execute(
                    "SELECT kind, count(*), min(available_at), max(attempts), "
                    "bool_or(locked_until IS NOT NULL) FROM outbox WHERE state = 'pending' "
                    "GROUP BY kind ORDER BY kind").fetchall()
        except psycopg.Error as exc:
            return f"outbox unreadable ({exc})"
        return "; ".join(f"{kind} x{n} (due from {due}, attempts up to {attempts}, "
                         f"locked {locked})" for kind, n, due, attempts, locked in rows)

    def outbox_pending(self) -> int | None:
        try:
            with psycopg.connect(self.pg.libpq_url(DATABASE), connect_timeout=3) as conn:
                row = conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'")
                return int(row.fetchone()[0])  # type: ignore[index]
        except psycopg.Error:
            return None


def install(stack: Stack) -> dict[int, int]:
    """Installation A (portal 4242) as the demo installs itself, then installation B: the
    same Aircall company authorised again from portal 4343, as a second admin would.
    Returns the installation id by Aircall number connected."""
    from sqlalchemy import select

    from whatsapp_helpdesk.bootstrap import build_services
    from whatsapp_helpdesk.cli import install_on_sandbox
    from whatsapp_helpdesk.connect.install import complete_aircall_oauth, complete_hubspot_oauth
    from whatsapp_helpdesk.connect.numbers_refresh import read_numbers_here
    from whatsapp_helpdesk.connect.popup import connect_number
    from whatsapp_helpdesk.db.models import Installation, Number
    from whatsapp_helpdesk.settings import Settings

    settings = Settings(
        database_url=stack.database_url, public_url=stack.proxy.url,
        sandbox_hubspot_port=stack.hubspot_port, sandbox_aircall_port=stack.aircall_port,
        aircall_rate_window_seconds=stack.scenario.aircall_rate_window_seconds,
        _env_file=None,  # type: ignore[call-arg]
    )
    asyncio.run(install_on_sandbox(settings))
    connections = ((PORTAL_A, NUMBER_A), (PORTAL_B, NUMBER_B)) if (
        stack.scenario.two_portals) else ((PORTAL_A, NUMBER_A),)

    async def second_installation_and_connections() -> dict[int, int]:
        services = build_services(settings)
        try:
            async def code_from(authorize_url: str) -> str:
                response = await services.http.get(authorize_url, follow_redirects=False)
                query = parse_qs(urlparse(response.headers.get("location", "")).query)
                return query["code"][0]

            base = settings.public_url
            hubspot_cb, aircall_cb = (f"{base}/oauth/hubspot/callback",
                                      f"{base}/oauth/aircall/callback")
            if len(connections) > 1:
                # The sandbox consent pages take the account in `portal_id` / `company_id`.
                code = await code_from(
                    services.hubspot_oauth().authorize_url(hubspot_cb, "chaos")
                    + f"&portal_id={PORTAL_B}")
                installation_b = await complete_hubspot_oauth(services, code=code,
                                                              redirect_uri=hubspot_cb)
                code = await code_from(
                    services.aircall_oauth().authorize_url(aircall_cb, "chaos")
                    + f"&company_id={COMPANY}")
                await complete_aircall_oauth(services, code=code, redirect_uri=aircall_cb,
                                             installation_id=installation_b)
                await read_numbers_here(services, installation_b)
            by_number: dict[int, int] = {}
            for portal, aircall_number in connections:
                with services.sessions.begin() as session:
                    installation_id = session.scalars(select(Installation.id).where(
                        Installation.hubspot_portal_id == str(portal))).one()
                    number = session.scalars(select(Number).where(
                        Number.installation_id == installation_id,
                        Number.aircall_number_id == str(aircall_number))).one()
                    number.connected_to_hubspot = number.helpdesk_enabled = True
                    number.native_ticketing = False
                    number_id = number.id
                response = stack.hubspot.post(
                    f"/_sandbox/portals/{portal}/channel-connections",
                    json={"channelId": services.channel_id(),
                          "userId": AGENT_OF_PORTAL[portal]})
                if response.status_code != 201:
                    raise RuntimeError(f"connecting {aircall_number} in portal {portal}: "
                                       f"{response.status_code} {response.text}")
                token = response.json()["accountToken"]
                await connect_number(services, installation_id=installation_id,
                                     number_id=number_id, account_token=token)
                by_number[aircall_number] = installation_id
            return by_number
        finally:
            await services.aclose()
            services.engine.dispose()

    return asyncio.run(second_installation_and_connections())


# --- traffic ---------------------------------------------------------------------------------


class Traffic:
    """Customers writing and agents replying, each in its own thread, until stopped."""

    def __init__(self, stack: Stack, scenario: Scenario, run_id: str, rng: random.Random):
        self.stack, self.scenario, self.run_id, self.rng = stack, scenario, run_id, rng
        self.sent: list[Sent] = []
        self.replies: list[Reply] = []
        self.send_errors: list[str] = []
        self.stop = threading.Event()
        self.next_seq: Counter[int] = Counter()
        self.token_re = re.compile(rf"{run_id}-c(\d{{3}})-m(\d{{3}})")
        self.started = time.monotonic()

    def phone(self, conversation: int) -> str:
        return f"+3361300{conversation:04d}"

    def number(self, conversation: int) -> int:
        numbers = (NUMBER_A, NUMBER_B) if self.scenario.two_portals else (NUMBER_A,)
        return numbers[conversation % len(numbers)]

    def customers(self) -> None:
        client = httpx.Client(base_url=self.stack.aircall.base_url, timeout=30)
        interval = 1.0 / self.scenario.turns_per_second
        next_turn = time.monotonic()
        while not self.stop.is_set():
            conversation = self.rng.randrange(self.scenario.customers)
            for _ in range(self.rng.randint(1, self.scenario.max_burst)):
                self.customer_writes(client, conversation)
            next_turn += interval
            self.stop.wait(max(0.0, next_turn - time.monotonic()))
        client.close()

    def customer_writes(self, client: httpx.Client, conversation: int) -> None:
        seq = self.next_seq[conversation]
        self.next_seq[conversation] += 1
        token = f"{self.run_id}-c{conversation:03d}-m{seq:03d}"
        image = self.rng.random() < self.scenario.image_share
        kind, text = ("image", f"photo {token} of the parcel") if image else (
            "text", f"hello {token} where is my order?")
        record = Sent(token, conversation, seq, self.phone(conversation),
                      self.number(conversation), kind, text,
                      at=time.monotonic() - self.started)
        response = client.post("/_sandbox/customer/messages", json={
            "from": record.phone, "number_id": record.number_id, "text": text, "type": kind})
        if response.status_code != 201:
            self.send_errors.append(f"{token}: {response.status_code} {response.text[:200]}")
            return
        record.aircall_id = str(response.json()["message"]["id"])
        self.sent.append(record)

    def agents(self) -> None:
        client = httpx.Client(base_url=self.stack.hubspot.base_url, timeout=30)
        interval = 1.0 / self.scenario.replies_per_second
        while not self.stop.wait(interval):
            portal = self.rng.choice(
                (PORTAL_A, PORTAL_B) if self.scenario.two_portals else (PORTAL_A,))
            tickets = client.get(f"/_sandbox/portals/{portal}/tickets").json()["tickets"]
            ours = []
            for ticket in tickets:
                texts = " ".join(m.get("text") or "" for m in ticket["messages"])
                if ticket.get("threadId") and (match := self.token_re.search(texts)):
                    ours.append((ticket, match))
            if not ours:
                continue
            ticket, match = self.rng.choice(ours)
            token = f"{self.run_id}-r{len(self.replies):04d}"
            response = client.post(
                f"/_sandbox/portals/{portal}/threads/{ticket['threadId']}/replies",
                json={"text": f"agent answer {token}", "agentId": AGENT_OF_PORTAL[portal]})
            if response.status_code != 201:
                self.send_errors.append(f"{token}: {response.status_code} {response.text[:200]}")
                continue
            self.replies.append(Reply(token, int(match.group(1)), portal, ticket["threadId"],
                                      at=time.monotonic() - self.started))
        client.close()


# --- chaos -----------------------------------------------------------------------------------


HUBSPOT_FAULTS: list[dict[str, Any]] = [
    {"mode": "rate_limit"},
    {"mode": "status", "status": 500},
    {"mode": "status", "status": 503},
    {"mode": "slow", "delay_seconds": 12.0},  # beyond the service's 10 s read timeout
    {"mode": "drop"},
]


class Chaos:
    def __init__(self, stack: Stack, scenario: Scenario, rng: random.Random):
        self.stack, self.scenario, self.rng = stack, scenario, rng
        self.stop = threading.Event()
        self.kills = 0
        self.pg_down_seconds = 0.0
        self.dead: dict[str, float] = {}  # killed by us, restart due at
        self.log: list[str] = []

    def start_faults(self) -> None:
        share = self.scenario.hubspot_fault_share
        if share > 0:
            # Tried in turn, so each takes an equal part of the share.
            each = 1 - (1 - share) ** (1 / len(HUBSPOT_FAULTS))
            for fault in HUBSPOT_FAULTS:
                self.stack.hubspot.post("/_sandbox/faults", json={
                    "path_prefix": "/", "times": None, "probability": each, **fault,
                }).raise_for_status()
        if self.scenario.aircall_shuffle_ms:
            self.stack.aircall.post("/_sandbox/config", json={
                "shuffle_window_ms": self.scenario.aircall_shuffle_ms}).raise_for_status()

    def run(self, started: float) -> None:
        sc = self.scenario
        next_kill = started + self.rng.expovariate(1 / sc.kill_every_seconds)
        next_dup_switch = started
        outage_start = started + sc.pg_outage_at_seconds
        outage_end = outage_start + sc.pg_outage_seconds
        pg_down_at: float | None = None
        done_outage = sc.pg_outage_seconds <= 0
        while not self.stop.wait(0.25):
            now = time.monotonic()
            for name, due in list(self.dead.items()):
                if now >= due:
                    self.stack.children.restart(name)
                    del self.dead[name]
            for name in self.stack.children.reap(set(self.dead)):
                self.log.append(f"{now - started:6.1f}s {name} exited by itself, restarted")
            if now >= next_kill:
                candidates = [n for n in self.stack.web_names + self.stack.worker_names
                              if n not in self.dead]
                if candidates:
                    victim = self.rng.choice(candidates)
                    self.stack.children.kill(victim)
                    self.dead[victim] = now + sc.restart_after_seconds
                    self.kills += 1
                    self.log.append(f"{now - started:6.1f}s SIGKILL {victim}")
                next_kill = now + self.rng.expovariate(1 / sc.kill_every_seconds)
            if now >= next_dup_switch:
                on = self.rng.random() < sc.aircall_duplicate_share
                self.stack.aircall.post("/_sandbox/config",
                                        json={"duplicate_deliveries": int(on)})
                next_dup_switch = now + 5.0
            if not done_outage and pg_down_at is None and now >= outage_start:
                self.stack.pg.stop("immediate")
                pg_down_at = time.monotonic()
                self.log.append(f"{pg_down_at - started:6.1f}s PostgreSQL stopped")
            if pg_down_at is not None and not done_outage and now >= outage_end:
                self.stack.pg.start()
                self.pg_down_seconds = time.monotonic() - pg_down_at
                done_outage = True
                self.log.append(f"{time.monotonic() - started:6.1f}s PostgreSQL started "
                                f"after {self.pg_down_seconds:.1f} s")

    def calm(self) -> dict[str, int]:
        """Every fault off, every process and the database up; returns the faults' hits."""
        if not self.stack.pg.running():
            self.stack.pg.start()
        faults = self.stack.hubspot.get("/_sandbox/faults").json()["faults"]
        hits = Counter[str]()
        for fault in faults:
            label = "429" if fault["mode"] == "rate_limit" else (
                str(fault["status"]) if fault["mode"] == "status" else fault["mode"])
            label = "timeout" if label == "slow" else label
            hits[label] += fault["hits"]
        self.stack.hubspot.delete("/_sandbox/faults")
        self.stack.aircall.post("/_sandbox/config",
                                json={"duplicate_deliveries": 0, "shuffle_window_ms": 0})
        for name in list(self.dead):
            self.stack.children.restart(name)
            del self.dead[name]
        self.stack.children.reap(set())
        return dict(hits)


class WebhookWatch:
    """When the sandbox Aircall had a webhook of ours auto-disabled (polled twice a second):
    events emitted then are delivered to nobody (reference §A8.5)."""

    def __init__(self, stack: Stack, started: float):
        self.stack, self.started = stack, started
        self.stop = threading.Event()
        self.disabled: dict[str, list[list[float]]] = defaultdict(list)  # id → [from, to]

    def run(self) -> None:
        client = httpx.Client(base_url=self.stack.aircall.base_url, timeout=10)
        while not self.stop.wait(0.5):
            try:
                webhooks = client.get("/_sandbox/webhooks").json()["webhooks"]
            except httpx.HTTPError:
                continue
            now = time.monotonic() - self.started
            for webhook in webhooks:
                if not str(webhook.get("url", "")).startswith(self.stack.proxy.url):
                    continue
                spans = self.disabled[str(webhook["webhook_id"])]
                if webhook.get("auto_disabled") or not webhook.get("active", True):
                    if spans and spans[-1][1] < 0:
                        continue
                    spans.append([now, -1.0])
                elif spans and spans[-1][1] < 0:
                    spans[-1][1] = now
        client.close()

    def disabled_at(self, at: float) -> bool:
        return any(start - 0.5 <= at and (end < 0 or at <= end + 0.5)
                   for spans in self.disabled.values() for start, end in spans)

    def describe(self) -> str:
        return "; ".join(f"{wid[:8]}: " + ", ".join(
            f"{start:.0f}-{'end' if end < 0 else f'{end:.0f}'} s" for start, end in spans)
            for wid, spans in self.disabled.items() if spans) or "never"


# --- the end: drain and check ----------------------------------------------------------------


def drain(stack: Stack, timeout: float) -> tuple[bool, float, str]:
    """Until no Aircall or HubSpot webhook delivery and no outbox entry is pending, twice in a
    row two seconds apart (a delivery makes outbox entries); False at the deadline, with
    what was still pending."""
    started = time.monotonic()
    calm_since: float | None = None
    aircall_pending = hubspot_pending = outbox_pending = None
    while time.monotonic() - started < timeout:
        stack.children.reap(set())
        try:
            aircall_pending = stack.aircall.get(
                "/_sandbox/deliveries", params={"event": "-"}).json()["pending"]
            hubspot_pending = len(stack.hubspot.get(
                "/_sandbox/webhook-deliveries", params={"state": "pending"}).json()["deliveries"])
        except httpx.HTTPError:
            aircall_pending = hubspot_pending = 1
        outbox_pending = stack.outbox_pending()
        quiet = aircall_pending == 0 and hubspot_pending == 0 and outbox_pending == 0
        if quiet:
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= 2.0:
                return True, time.monotonic() - started, ""
        else:
            calm_since = None
        time.sleep(0.5)
    pending = (f"Aircall webhook deliveries {aircall_pending}, HubSpot webhook deliveries "
               f"{hubspot_pending}, outbox entries {outbox_pending}")
    if outbox_pending:
        pending += f": {stack.outbox_pending_entries()}"
    return False, time.monotonic() - started, pending


def longest_increasing(seq: list[int]) -> int:
    """Length of the longest strictly increasing subsequence: the messages already in order;
    the others are the fewest that must move (the misordered count)."""
    tails: list[int] = []
    for value in seq:
        i = bisect.bisect_left(tails, value)
        tails[i:i + 1] = [value]
    return len(tails)


def check(stack: Stack, traffic: Traffic, installations: dict[int, int],
          watch: WebhookWatch, report: Report) -> None:
    run_re = traffic.token_re
    # token → where HubSpot shows it: (portal, ticket, position)
    found: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    shown_order: dict[int, list[tuple[int, int]]] = defaultdict(list)  # conversation → seqs
    reply_status: dict[str, list[dict[str, Any]]] = defaultdict(list)
    reply_re = re.compile(rf"{traffic.run_id}-r\d{{4}}")
    for portal in (PORTAL_A, PORTAL_B):
        tickets = stack.hubspot.get(f"/_sandbox/portals/{portal}/tickets").json()["tickets"]
        for ticket in tickets:
            for position, message in enumerate(ticket["messages"]):
                text = message.get("text") or ""
                if message["direction"] == "INCOMING":
                    for match in run_re.finditer(text):
                        found[match.group(0)].append((portal, ticket["id"], position))
                        shown_order[int(match.group(1))].append(
                            (int(ticket["id"]), int(match.group(2))))
                else:
                    for match in reply_re.finditer(text):
                        reply_status[match.group(0)].append(message)

    by_conversation: dict[int, list[Sent]] = defaultdict(list)
    for sent in traffic.sent:
        by_conversation[sent.conversation].append(sent)
    report.inbound_sent = len(traffic.sent)
    lost: list[Sent] = []
    for sent in traffic.sent:
        places = found.get(sent.token, [])
        if not places:
            lost.append(sent)
            continue
        if len(places) > 1:
            report.duplicated += 1
            report.extra_copies += len(places) - 1
            report.duplicated_examples.append(f"{sent.token} shown {len(places)} times")
        if places[0][0] != PORTAL_OF_NUMBER[sent.number_id]:
            report.wrong_portal += 1
        if len(places) == 1 and places[0][0] == PORTAL_OF_NUMBER[sent.number_id]:
            report.inbound_ok += 1
    report.lost = len(lost)

    for conversation, shown in shown_order.items():
        # One ticket per conversation (all within 24 h): a message elsewhere is misplaced.
        tickets = Counter(ticket for ticket, _ in shown)
        main_ticket = tickets.most_common(1)[0][0]
        report.wrong_ticket += sum(n for t, n in tickets.items() if t != main_ticket)
        seqs: list[int] = []
        for _ticket, seq in shown:  # tickets by id, each in the order HubSpot shows it
            if seq not in seqs:  # a duplicate is counted as such, not as misordered too
                seqs.append(seq)
        out_of_place = len(seqs) - longest_increasing(seqs)
        if out_of_place:
            report.misordered += out_of_place
            report.misordered_examples.append(
                f"conversation {conversation} shown as m{' m'.join(map(str, seqs))}")
    _explain_lost(stack, installations, watch, lost, report)

    # Replies: on the phone exactly once, or FAILED with a reason in HubSpot.
    report.replies_sent = len(traffic.replies)
    phone_counts: Counter[str] = Counter()
    for conversation in {r.conversation for r in traffic.replies}:
        messages = stack.aircall.get("/_sandbox/customer/conversation", params={
            "phone": traffic.phone(conversation),
            "number_id": traffic.number(conversation)}).json()["messages"]
        for message in messages:
            if message.get("direction") == "outbound":
                for match in reply_re.finditer(message.get("body") or ""):
                    phone_counts[match.group(0)] += 1
    gave_up = {match.group(0) for delivery in stack.hubspot.get(
        "/_sandbox/webhook-deliveries", params={"state": "failed"}).json()["deliveries"]
        for match in reply_re.finditer(json.dumps(delivery.get("payload")))}
    for reply in traffic.replies:
        on_phone = phone_counts[reply.token]
        statuses = reply_status.get(reply.token, [])
        failure = next((m.get("failureDetails") for m in statuses
                        if m.get("status") == "FAILED"), None)
        if on_phone > 1:
            report.replies_duplicated += 1
        elif on_phone == 1:
            report.replies_on_phone += 1
        elif failure and failure.get("errorMessage"):
            report.replies_failed += 1
            reason = re.sub(r"\d+", "N", str(failure["errorMessage"]))[:80]
            report.reply_failure_reasons[reason] = report.reply_failure_reasons.get(
                reason, 0) + 1
        else:
            report.replies_lost += 1
            cause = ("reply: HubSpot gave up delivering its webhook to the service"
                     if reply.token in gave_up else "reply: not on the phone, not FAILED")
            report.lost_reasons[cause] = report.lost_reasons.get(cause, 0) + 1
            report.lost_examples.append(
                f"{reply.token} (portal {reply.portal}, thread {reply.thread_id}) at "
                f"+{reply.at:.0f}s: {cause}; HubSpot status {[m.get('status') for m in statuses]}")


def _explain_lost(stack: Stack, installations: dict[int, int], watch: WebhookWatch,
                  lost: list[Sent], report: Report) -> None:
    """Why each lost message was lost, from our database and the sandbox's delivery log."""
    if not lost:
        return
    deliveries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in stack.aircall.get("/_sandbox/deliveries",
                                   params={"include_payload": "true"}).json()["deliveries"]:
        message_id = str(((entry.get("payload") or {}).get("data") or {}).get("id", ""))
        if message_id:
            deliveries[message_id].append(entry)
    with psycopg.connect(stack.pg.libpq_url(DATABASE)) as conn:
        for sent in lost:
            expected = installations[sent.number_id]
            rows = conn.execute(
                "SELECT installation_id, status, coalesce(failure_reason, ''), text "
                "FROM messages WHERE direction = 'inbound' AND provider_message_id = %s",
                (sent.aircall_id,)).fetchall()
            events = conn.execute(
                "SELECT installation_id, outcome, coalesce(detail, '') FROM webhook_events "
                "WHERE source = 'aircall' AND payload LIKE %s", (f"%{sent.aircall_id}%",)
            ).fetchall()
            mine = [r for r in rows if r[0] == expected]
            attempts = deliveries.get(sent.aircall_id, [])
            outcomes = Counter(str(a.get("outcome")) for a in attempts)
            if mine:
                status, failure, text = mine[0][1], mine[0][2], mine[0][3]
                if status == "published":
                    cause = (f"published without its words ({sent.kind})"
                             if sent.token not in text else
                             f"published ({sent.kind}) but not in HubSpot")
                else:
                    cause = f"stored, status {status} {failure[:60]}".strip()
            elif rows:
                cause = "stored for the other installation only"
            elif events:
                cause = "webhook recorded as " + ", ".join(
                    sorted({f"{o}" + ("" if i == expected else " (other installation)")
                            for i, o, _ in events})) + ", message not stored"
            elif outcomes.get("success"):
                cause = "webhook answered 2xx but nothing stored"
            elif attempts:
                cause = "webhook never accepted: " + ", ".join(
                    f"{n} {o}" for o, n in outcomes.items())
            elif watch.disabled_at(sent.at):
                cause = "sent while Aircall had auto-disabled our webhook: never delivered"
            else:
                cause = "never delivered by Aircall (no attempt logged)"
            report.lost_reasons[cause] = report.lost_reasons.get(cause, 0) + 1
            report.lost_examples.append(
                f"{sent.token} to {sent.number_id} at +{sent.at:.0f}s: {cause}; webhook "
                f"events {[(i, o) for i, o, _ in events]}; deliveries {dict(outcomes)}")


def metrics_total(stack: Stack, needle: str) -> float:
    total = 0.0
    for port in stack.web_ports:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        for line in text.splitlines():
            name = line.split("{", 1)[0].split(" ", 1)[0]
            if not line.startswith("#") and needle in name and name.endswith("_total"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def publication_order(stack: Stack, traffic: Traffic, report: Report) -> None:
    """Messages the worker published after a later message of the same conversation (when
    its publish job finished), whatever order HubSpot then shows them in."""
    by_id = {sent.aircall_id: sent for sent in traffic.sent}
    with psycopg.connect(stack.pg.libpq_url(DATABASE)) as conn:
        rows = conn.execute(
            "SELECT m.provider_message_id, o.finished_at FROM messages m JOIN outbox o "
            "ON o.message_id = m.id AND o.kind = 'publish_inbound' AND o.state = 'done' "
            "WHERE m.direction = 'inbound'").fetchall()
    published: dict[int, list[tuple[Any, int]]] = defaultdict(list)
    for provider_id, finished_at in rows:
        sent = by_id.get(str(provider_id))
        if sent is not None and finished_at is not None:
            published[sent.conversation].append((finished_at, sent.seq))
    for entries in published.values():
        seqs = [seq for _, seq in sorted(entries)]
        report.published_out_of_order += len(seqs) - longest_increasing(seqs)


def counters_from_database(stack: Stack, report: Report) -> None:
    with psycopg.connect(stack.pg.libpq_url(DATABASE)) as conn:
        report.retried_jobs = int(conn.execute(
            "SELECT count(*) FROM outbox WHERE attempts > 1").fetchone()[0])  # type: ignore[index]
        report.failed_attempts = int(conn.execute(
            "SELECT count(*) FROM delivery_attempts WHERE outcome <> 'ok'"
        ).fetchone()[0])  # type: ignore[index]


def counters_from_sandboxes(stack: Stack, report: Report) -> None:
    log = stack.aircall.get("/_sandbox/deliveries").json()["deliveries"]
    attempts_by_delivery: Counter[int] = Counter(e["delivery_id"] for e in log
                                                 if e.get("attempt"))
    report.webhook_retries = sum(1 for n in attempts_by_delivery.values() if n > 1)
    report.duplicate_deliveries = len({e["delivery_id"] for e in log if e.get("copy")})
    webhooks = stack.aircall.get("/_sandbox/webhooks").json()["webhooks"]
    report.webhooks_auto_disabled = sum(1 for w in webhooks if w.get("auto_disabled"))


# --- one run ---------------------------------------------------------------------------------


def run(scenario: Scenario, *, keep_logs: bool = False, out: Any = sys.stdout) -> Report:
    for key in [k for k in os.environ if k.upper().startswith(("HUBSPOT_", "AIRCALL_"))]:
        del os.environ[key]  # this process installs on the sandbox itself
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    run_id = "cx" + secrets.token_hex(3)
    rng = random.Random(scenario.seed)
    root = Path(tempfile.mkdtemp(prefix=f"chaos-{run_id}-"))
    report = Report(scenario=scenario.name)
    stack = Stack(scenario, root)
    failed = True
    print(f"chaos {run_id}: {scenario.describe()}", file=out, flush=True)
    began = time.monotonic()

    def phase(what: str) -> None:
        print(f"+{time.monotonic() - began:5.1f} s {what}", file=out, flush=True)

    try:
        stack.start()
        phase("stack up (PostgreSQL, sandbox, web processes)")
        if scenario.hubspot_rate_limit is not None:
            stack.hubspot.post("/_sandbox/config",
                               json={"rate_limit_max": scenario.hubspot_rate_limit})
        installations = install(stack)
        phase("installed")
        stack.start_workers()
        traffic = Traffic(stack, scenario, run_id, rng)
        chaos = Chaos(stack, scenario, random.Random(scenario.seed + 1))
        chaos.start_faults()
        started = traffic.started = time.monotonic()
        watch = WebhookWatch(stack, started)
        threading.Thread(target=watch.run, daemon=True).start()
        threads = [threading.Thread(target=traffic.customers, daemon=True),
                   threading.Thread(target=traffic.agents, daemon=True),
                   threading.Thread(target=chaos.run, args=(started,), daemon=True)]
        for thread in threads:
            thread.start()
        traffic.stop.wait(scenario.traffic_seconds)
        traffic.stop.set()
        for thread in threads[:2]:
            thread.join(timeout=60)
        phase("traffic stopped")
        chaos.stop.set()
        threads[2].join(timeout=120)
        report.hubspot_faults = chaos.calm()
        report.kills, report.pg_outage_seconds = chaos.kills, chaos.pg_down_seconds
        phase(f"traffic done: {len(traffic.sent)} messages, {len(traffic.replies)} replies, "
              f"{len(traffic.send_errors)} refused by the sandbox; faults off; draining")
        report.drained, report.drain_seconds, report.still_pending = drain(
            stack, scenario.drain_timeout_seconds)
        phase("drained" if report.drained else "not drained")
        watch.stop.set()
        report.webhooks_disabled_spans = watch.describe()
        check(stack, traffic, installations, watch, report)
        counters_from_database(stack, report)
        publication_order(stack, traffic, report)
        counters_from_sandboxes(stack, report)
        # Deliveries appended to the spool (the other spool counters, and the drain's CPU seconds,
        # were summed in before: "spooled 766.833").
        report.spooled = metrics_total(stack, "spool_appended")
        report.unexpected_exits = [f"{n} rc={rc}" for n, rc in stack.children.unexpected_exits]
        (root / "chaos-events.log").write_text("\n".join(chaos.log + traffic.send_errors))
        phase("checked")
        failed = not report.passed
    finally:
        if failed:
            for name in ("sandbox", *stack.web_names, *stack.worker_names):
                tail = stack.children.tail(name, 8)
                if tail:
                    print(f"--- {name} (log tail)\n{tail}", file=out)
        stack.close()
        if keep_logs or failed:
            report.log_dir = str(root)
            (root / "report.json").write_text(json.dumps(asdict(report), indent=2))
        else:
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    print(report.summary(), file=out, flush=True)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--short", dest="preset", action="store_const", const="short")
    preset.add_argument("--full", dest="preset", action="store_const", const="full")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a scenario field (see tests/chaos/scenario.py)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    scenario = Scenario.preset(args.preset or "short").with_overrides(
        dict(item.split("=", 1) for item in args.set))

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(143)  # so that the finally blocks stop every child

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        report = run(scenario, keep_logs=args.keep_logs)
        return 0 if report.passed else 1
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
