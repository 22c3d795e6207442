"""End-to-end harness: the bridge (web app over real HTTP + worker) against both sandboxes.

Everything talks over loopback HTTP exactly as in production; only the composition
(threads instead of processes) differs. Reused by every e2e test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import pytest
import uvicorn
from sqlalchemy.engine import make_url

from harness.pacing import FAST_AIRCALL_BUCKET
from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.cli import install_on_sandbox
from whatsapp_helpdesk.connect.popup import connect_number
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.sandbox.aircall import create_app as aircall_app
from whatsapp_helpdesk.sandbox.hubspot import create_app as hubspot_app
from whatsapp_helpdesk.settings import Settings
from whatsapp_helpdesk.web.app import create_app as bridge_app
from whatsapp_helpdesk.worker.runner import Worker

T = TypeVar("T")
PORTAL = 4242
SUPPORT_FR = 1001  # sandbox Aircall's WhatsApp number "+33 1 76 36 06 95"
CUSTOMER = "+33612345678"


def _bound_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Served:
    def __init__(self, sock: socket.socket, app: Any):
        self.socket = sock
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="critical", ws="none", access_log=False)
        )
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def start(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def stop_all(servers: list[Served]) -> None:
    """Stop the servers side by side: uvicorn looks at `should_exit` every tenth of a second,
    so one after the other costs that much per server."""
    for server in servers:
        server.server.should_exit = True
    for server in servers:
        server.stop()


@dataclass
class Stack:
    settings: Settings
    services: Services
    hubspot: httpx.Client  # the sandbox HubSpot (control + API)
    aircall: httpx.Client  # the sandbox Aircall (control + API)
    bridge: httpx.Client  # our web app
    installation_id: int
    web_app: Any = None  # the FastAPI app behind `bridge` (its spool, R53)

    def run(self, make: Callable[[Services], Coroutine[Any, Any, T]]) -> T:
        """Run a flow on a fresh Services (an httpx.AsyncClient is bound to one loop)."""
        services = build_services(self.settings)

        async def main() -> T:
            try:
                return await make(services)
            finally:
                await services.aclose()

        try:
            return asyncio.run(main())
        finally:
            services.engine.dispose()

    def drain(self, *, timeout: float = 30.0, concurrency: int = 4) -> None:
        """Run a worker until the outbox has nothing due."""
        self.run(lambda s: Worker(s, concurrency=concurrency).run_until_idle(timeout=timeout))

    def connect(self, number_id: int = SUPPORT_FR) -> None:
        channel_id = self.services.channel_id()
        token = self.hubspot.post(
            f"/_sandbox/portals/{PORTAL}/channel-connections",
            json={"channelId": channel_id, "userId": 1},
        ).json()["accountToken"]
        self.run(lambda s: connect_number(
            s, installation_id=self.installation_id, number_id=self._number_row(number_id),
            account_token=token,
        ))

    def _number_row(self, aircall_number_id: int) -> int:
        from sqlalchemy import select

        from whatsapp_helpdesk.db.models import Number

        with self.services.sessions() as session:
            return session.scalars(select(Number.id).where(
                Number.installation_id == self.installation_id,
                Number.aircall_number_id == str(aircall_number_id))).one()

    def customer_says(self, text: str, *, phone: str = CUSTOMER, number_id: int = SUPPORT_FR,
                      **extra: Any) -> dict[str, Any]:
        response = self.aircall.post("/_sandbox/customer/messages", json={
            "from": phone, "number_id": number_id, "text": text, **extra})
        assert response.status_code == 201, response.text
        return response.json()["message"]

    def tickets(self) -> list[dict[str, Any]]:
        return self.hubspot.get(f"/_sandbox/portals/{PORTAL}/tickets").json()["tickets"]

    def wait_deliveries(self, *, timeout: float = 10.0) -> None:
        """Until the sandbox Aircall has no webhook delivery in flight, and what the bridge
        acknowledged from its spool (INGEST_MODE=spool, decision 0011) is in the database,
        unless the database is down (R53: then it stays spooled)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.aircall.get("/_sandbox/deliveries").json()["pending"] == 0 and (
                    self.spool_drained()):
                return
            time.sleep(0.05)
        raise AssertionError("Aircall deliveries still pending")

    def spool_drained(self) -> bool:
        webhook_spool = self.web_app.state.webhook_spool if self.web_app is not None else None
        return webhook_spool is None or webhook_spool.spool.unreplayed() == 0 or (
            webhook_spool.database_down)


def switch_on_every_whatsapp_number(services: Services, installation_id: int) -> None:
    """The tests' starting layout (simpler than the demo's, operations/sandbox_demo.py): every
    WhatsApp number connected with the Help Desk setting on, every other number off."""
    from sqlalchemy import select

    from whatsapp_helpdesk.db.models import Number

    with services.sessions.begin() as session:
        for number in session.scalars(select(Number).where(
                Number.installation_id == installation_id)):
            number.connected_to_hubspot = number.helpdesk_enabled = number.whatsapp_enabled
            number.native_ticketing = False



def connect_demo_number(settings: Settings, account_token: str, *,
                        aircall_number_id: int = SUPPORT_FR, installation_id: int = 1) -> None:
    """Connect one of the demo's Aircall numbers with a HubSpot channel-account token,
    outside a Stack (the benchmarks build their stacks by hand)."""
    from sqlalchemy import select

    from whatsapp_helpdesk.db.models import Number

    async def main() -> None:
        services = build_services(settings)
        try:
            with services.sessions() as session:
                number_id = session.scalars(select(Number.id).where(
                    Number.installation_id == installation_id,
                    Number.aircall_number_id == str(aircall_number_id))).one()
            await connect_number(services, installation_id=installation_id,
                                 number_id=number_id, account_token=account_token)
        finally:
            await services.aclose()

    asyncio.run(main())

@pytest.fixture
def stack(database_url: str, migrated_templates: DatabaseCopies, tmp_path: Path,
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The whole stack on `database_url` (the same URL: a test may ask for both), installed:
    from this process's snapshot of an install with the same settings when there is a
    recent one (`running_stack`'s `database_copies`), else installed for real and
    snapshotted. A test marked `stack(**keywords)` gets them passed to `running_stack`
    (settings, or `private_sandboxes=True`); `stack(fresh_install=True)` installs for real
    with the bridge up, as a stack did before snapshots, for the tests of the install
    itself. Either way the database starts from a template (tests/conftest.py), never from
    the migrations.

    The workers' Aircall bucket is the fast one (tests/harness/pacing.py) unless the test
    sets `aircall_rate_limit` itself or is marked `paced_aircall` (a test of the pacing)."""
    keywords = stack_keywords(request.node)
    if keywords.pop("fresh_install", False):
        migrated_templates.fill(database_url)
        copies = None
    else:
        copies = migrated_templates
    with running_stack(database_url, tmp_path, database_copies=copies, **keywords) as running:
        yield running


def stack_keywords(item: pytest.Item) -> dict[str, Any]:
    """What the `stack` fixture passes on for `item`: its closest `stack` mark's keywords,
    and the fast Aircall bucket unless the mark sets `aircall_rate_limit` or the test is
    marked `paced_aircall`."""
    marker = item.get_closest_marker("stack")
    keywords = dict(marker.kwargs) if marker is not None else {}
    if item.get_closest_marker("paced_aircall") is None:
        for key, value in FAST_AIRCALL_BUCKET.items():
            keywords.setdefault(key, value)
    return keywords


class DatabaseCopies(Protocol):
    """Copies of whole databases (tests/conftest.py's `MigratedTemplates`): a file copy on
    SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL."""

    def fill(self, database_url: str, template: str | None = None) -> None:
        """Make the fresh database at `database_url` a copy of `template` (one `save`
        answered), or of the migrated template."""

    def save(self, database_url: str) -> str:
        """A template copied from the database at `database_url`, for `fill`."""

    def drop(self, template: str) -> None:
        """Forget a template `save` answered."""


# A stack starts from a snapshot of an install at most this old; an older one is installed
# again and snapshotted anew. It bounds what a snapshot's age changes (how much of the
# tokens' 30 minutes is left, whether the install's calls are still in Aircall's one-minute
# rate window) to what a slow test's own set-up shows.
SNAPSHOT_MAX_AGE_SECONDS = 60.0


@dataclass(frozen=True)
class InstallSnapshot:
    """An install, once per process and settings: the database after it (a template) and
    each sandbox's snapshot of it (`POST /_sandbox/snapshot`)."""

    database: str
    hubspot: str
    aircall: str
    taken_at: float  # time.monotonic()


class SandboxServers:
    """The sandbox HubSpot and Aircall served on loopback, with their apps.

    A stack used to build and start its own pair; now one pair per test process serves every
    stack (`shared_sandboxes`), put back to its seed between stacks: FastAPI builds an app's
    routes on its first requests (for the HubSpot's dated routes, most of a stack's CPU), which
    one pair per process pays once instead of once per test.

    The shared pair also keeps the snapshots of installs (`install_snapshots`) and the bridge
    address they point at (`bridge_port`): the install registers the bridge's URLs (the
    channel's webhook and connect page, the Aircall webhook), so a stack started from a
    snapshot serves its bridge at that same address. The port is held by a socket bound
    with SO_REUSEPORT that never listens (no other process takes it, and between stacks a
    connection to it is refused, not queued for the next test's bridge)."""

    def __init__(self, wrap_hubspot: Callable[[Any], Any] | None = None):
        hub_sock, air_sock = _bound_socket(), _bound_socket()
        self.hubspot_port: int = hub_sock.getsockname()[1]
        self.aircall_port: int = air_sock.getsockname()[1]
        self.hubspot_url = f"http://127.0.0.1:{self.hubspot_port}"
        self.aircall_url = f"http://127.0.0.1:{self.aircall_port}"
        self.hubspot_app = hubspot_app(public_base_url=self.hubspot_url)
        self.aircall_app = aircall_app(public_base_url=self.aircall_url)
        self.servers = [
            Served(hub_sock, (wrap_hubspot or (lambda app: app))(self.hubspot_app)).start(),
            Served(air_sock, self.aircall_app).start(),
        ]
        self._control = httpx.Client(timeout=10)
        self.install_snapshots: dict[tuple[str, ...], InstallSnapshot] = {}
        self._bridge_reservation: socket.socket | None = None

    def reset(self) -> None:
        """Back to the seed: records, configuration, faults, clocks, webhook deliveries
        (`POST /_sandbox/reset`, on each server's own loop, which cancels its background
        deliveries), and the HubSpot's webhook transport, which only Python sets."""
        self.hubspot_app.state.sandbox.webhook_transport = None
        for url in (self.hubspot_url, self.aircall_url):
            self._post_control(f"{url}/_sandbox/reset")

    def _post_control(self, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST to a control route, once more if the kept-alive connection was closed by
        the server as it was reused (uvicorn closes one idle for 5 s; a test lasts longer).
        Resets and restores are idempotent; a second snapshot costs a copy."""
        try:
            response = self._control.post(url, json=body)
        except httpx.TransportError:
            response = self._control.post(url, json=body)
        answer: dict[str, Any] = response.raise_for_status().json()
        return answer

    def snapshot(self) -> tuple[str, str]:
        """(HubSpot's, Aircall's) ids of a snapshot of each (`POST /_sandbox/snapshot`)."""
        hubspot, aircall = (self._post_control(f"{url}/_sandbox/snapshot")["snapshot"]
                            for url in (self.hubspot_url, self.aircall_url))
        return str(hubspot), str(aircall)

    def restore(self, snapshot: InstallSnapshot) -> None:
        """Back to an install's snapshot, as `reset` goes back to the seed."""
        self.hubspot_app.state.sandbox.webhook_transport = None
        for url, snapshot_id in ((self.hubspot_url, snapshot.hubspot),
                                 (self.aircall_url, snapshot.aircall)):
            self._post_control(f"{url}/_sandbox/restore", {"snapshot": snapshot_id})

    @property
    def bridge_port(self) -> int:
        if self._bridge_reservation is None:
            self._bridge_reservation = _reusable_socket(0)
        port: int = self._bridge_reservation.getsockname()[1]
        return port

    def stop(self) -> None:
        self._control.close()
        if self._bridge_reservation is not None:
            self._bridge_reservation.close()
        stop_all(self.servers)


def _reusable_socket(port: int) -> socket.socket:
    """Bound to `port` on loopback, sharing it with the reservation (`bridge_port`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


_shared: SandboxServers | None = None
# A stack is running on the shared pair: one opened meanwhile must not reset it.
_shared_in_use = False


def shared_sandboxes() -> SandboxServers:
    """This test process's sandbox pair, started at the first stack that asks for it."""
    global _shared
    if _shared is None:
        _shared = SandboxServers()
    return _shared


def stop_shared_sandboxes() -> None:
    """At the end of the session (tests/conftest.py)."""
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@contextmanager
def running_stack(
    database_url: str, tmp_path: Path, *, hubspot_api_version: str | None = None,
    wrap_hubspot: Callable[[Any], Any] | None = None, private_sandboxes: bool = False,
    database_copies: DatabaseCopies | None = None, **settings_overrides: Any,
) -> Iterator[Stack]:
    """The whole stack; `hubspot_api_version` as HUBSPOT_API_VERSION (default: the
    setting's), `wrap_hubspot` wraps the sandbox HubSpot's ASGI app (to record exchanges),
    other keywords are settings.

    The sandboxes are the test process's shared pair, reset to their seed before and after,
    unless `private_sandboxes` (or `wrap_hubspot`) asks for a pair of the stack's own, or
    another stack of the test is running on the shared pair (its reset would wipe that one's
    records). The bridge (web app and its server) is the stack's own: its settings are the
    test's.

    Without `database_copies`, `database_url` is migrated if it is not yet, and the demo is
    installed for real with the bridge up. With it (the `stack` fixture), `database_url` is
    a fresh, empty database, and a stack on the shared pair starts from a snapshot of an
    install with the same settings (database copied from a template, sandboxes restored:
    `_from_install_snapshot`), the bridge started on that install; on private sandboxes the
    database is a copy of the migrated template and the install a real one."""
    global _shared_in_use
    private = private_sandboxes or wrap_hubspot is not None or _shared_in_use
    sandboxes = SandboxServers(wrap_hubspot) if private else shared_sandboxes()
    if not private:
        _shared_in_use = True
    try:
        if database_copies is None or private:
            if database_copies is not None:
                database_copies.fill(database_url)
            if not private:
                sandboxes.reset()
            web_sock = _bound_socket()
            settings = _stack_settings(database_url, tmp_path, sandboxes, web_sock,
                                       hubspot_api_version, settings_overrides)
            with _running_bridge(settings, web_sock, install=True) as stack:
                yield stack
        else:
            web_sock = _reusable_socket(sandboxes.bridge_port)
            settings = _stack_settings(database_url, tmp_path, sandboxes, web_sock,
                                       hubspot_api_version, settings_overrides)
            try:
                _from_install_snapshot(settings, sandboxes, database_copies,
                                       (hubspot_api_version or "", repr(sorted(
                                           settings_overrides.items()))))
            except BaseException:
                web_sock.close()
                raise
            with _running_bridge(settings, web_sock, install=False) as stack:
                yield stack
    finally:
        if private:
            sandboxes.stop()
        else:
            # Now, with the bridge gone: the deliveries still retrying towards it end here
            # rather than run on into the next test.
            _shared_in_use = False
            sandboxes.reset()


def _stack_settings(database_url: str, tmp_path: Path, sandboxes: SandboxServers,
                    web_sock: socket.socket, hubspot_api_version: str | None,
                    settings_overrides: dict[str, Any]) -> Settings:
    return Settings(
        database_url=database_url,
        public_url=f"http://127.0.0.1:{web_sock.getsockname()[1]}",
        sandbox_hubspot_port=sandboxes.hubspot_port,
        sandbox_aircall_port=sandboxes.aircall_port,
        reorder_grace_seconds=0.3,
        spool_dir=str(tmp_path / "spool"),  # each test's own spool (R53)
        spool_replay_interval_seconds=0.2,
        _env_file=None,  # type: ignore[call-arg]
        **({"hubspot_api_version": hubspot_api_version} if hubspot_api_version else {}),
        **settings_overrides,
    )


def _from_install_snapshot(settings: Settings, sandboxes: SandboxServers,
                           copies: DatabaseCopies, key: tuple[str, ...]) -> None:
    """The database and the sandboxes as the install with these settings left them: from
    the snapshot of it when there is a recent one, else installed (the bridge is not needed:
    the install sends no webhook) and snapshotted. Its database keyed by the settings the
    test chose (and the database's kind), as a real install's result would depend on them;
    the bridge's address is the same for all (`bridge_port`)."""
    key = (make_url(settings.database_url).get_backend_name(), *key)
    snapshot = sandboxes.install_snapshots.get(key)
    if snapshot is not None and time.monotonic() - snapshot.taken_at < SNAPSHOT_MAX_AGE_SECONDS:
        copies.fill(settings.database_url, snapshot.database)
        sandboxes.restore(snapshot)
        return
    if snapshot is not None:
        copies.drop(snapshot.database)
        del sandboxes.install_snapshots[key]
    copies.fill(settings.database_url)
    sandboxes.reset()
    services = build_services(settings)
    try:
        _install(settings, services)
    finally:
        services.engine.dispose()
    taken_at = time.monotonic()
    database = copies.save(settings.database_url)
    sandboxes.install_snapshots[key] = InstallSnapshot(database, *sandboxes.snapshot(),
                                                       taken_at=taken_at)


def _install(settings: Settings, services: Services) -> None:
    """The demo installed (OAuth with both sandboxes, the channel, the numbers) and every
    WhatsApp number switched on."""
    # >>> the install itself, through the CLI's `install_on_sandbox` (issue 13: this call
    # site may change with the install; the snapshots take whatever it does).
    asyncio.run(install_on_sandbox(settings))
    # <<<
    from sqlalchemy import select

    from whatsapp_helpdesk.db.models import Installation

    with services.sessions() as session:
        installation_id = session.scalars(select(Installation.id)).one()
    switch_on_every_whatsapp_number(services, installation_id)


@contextmanager
def _running_bridge(settings: Settings, web_sock: socket.socket, *,
                    install: bool) -> Iterator[Stack]:
    """The bridge served on `web_sock`, installed (for real, with the bridge up) if
    `install`, else already."""
    services = build_services(settings)
    upgrade(services.engine)  # returns at once on a copy of the template (db/migrate.at_head)
    web_app = bridge_app(services)
    web_server = Served(web_sock, web_app).start()
    clients = [httpx.Client(base_url=u, timeout=10) for u in (
        f"http://127.0.0.1:{settings.sandbox_hubspot_port}",
        f"http://127.0.0.1:{settings.sandbox_aircall_port}", settings.public_url)]
    try:
        if install:
            _install(settings, services)
        from sqlalchemy import select

        from whatsapp_helpdesk.db.models import Installation

        with services.sessions() as session:
            installation_id = session.scalars(select(Installation.id)).one()
        yield Stack(settings, services, *clients, installation_id=installation_id,
                    web_app=web_app)
    finally:
        for client in clients:
            client.close()
        web_server.stop()
        services.engine.dispose()
