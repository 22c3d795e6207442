"""End-to-end harness: the bridge (web app over real HTTP + worker) against both sandboxes.

Everything talks over loopback HTTP exactly as in production; only the composition
(threads instead of processes) differs. Reused by every e2e test.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.cli import install_on_sandbox
from whatsapp_helpdesk.connect.popup import connect_number
from whatsapp_helpdesk.db.migrate import alembic_config, upgrade
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
def stack(migrated_database_url: str, tmp_path: Path) -> Iterator[Stack]:
    """The whole stack on `database_url` (the same URL: a test may ask for both), which
    starts from a copy of the migrated template (tests/conftest.py) rather than migrating."""
    with running_stack(migrated_database_url, tmp_path) as running:
        yield running


@functools.cache
def _head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _at_head(engine: Engine) -> bool:
    """Whether the database is already at the newest migration (a copy of the template):
    then `upgrade`, which loads Alembic's environment and every script, would only say so."""
    try:
        with engine.connect() as connection:
            current = connection.execute(text("SELECT version_num FROM alembic_version"))
            return current.scalar() == _head_revision()
    except DBAPIError:  # no such table: a fresh, empty database
        return False


@contextmanager
def running_stack(
    database_url: str, tmp_path: Path, *, hubspot_api_version: str | None = None,
    wrap_hubspot: Callable[[Any], Any] | None = None, **settings_overrides: Any,
) -> Iterator[Stack]:
    """The whole stack; `hubspot_api_version` as HUBSPOT_API_VERSION (default: the
    setting's), `wrap_hubspot` wraps the sandbox HubSpot's ASGI app (to record exchanges),
    other keywords are settings."""
    hub_sock, air_sock, web_sock = _bound_socket(), _bound_socket(), _bound_socket()
    hub_url = f"http://127.0.0.1:{hub_sock.getsockname()[1]}"
    air_url = f"http://127.0.0.1:{air_sock.getsockname()[1]}"
    web_url = f"http://127.0.0.1:{web_sock.getsockname()[1]}"
    settings = Settings(
        database_url=database_url,
        public_url=web_url,
        sandbox_hubspot_port=hub_sock.getsockname()[1],
        sandbox_aircall_port=air_sock.getsockname()[1],
        reorder_grace_seconds=0.3,
        spool_dir=str(tmp_path / "spool"),  # each test's own spool (R53)
        spool_replay_interval_seconds=0.2,
        _env_file=None,  # type: ignore[call-arg]
        **({"hubspot_api_version": hubspot_api_version} if hubspot_api_version else {}),
        **settings_overrides,
    )
    services = build_services(settings)
    if not _at_head(services.engine):
        upgrade(services.engine)
    web_app = bridge_app(services)
    servers = [
        Served(hub_sock, (wrap_hubspot or (lambda app: app))(
            hubspot_app(public_base_url=hub_url))).start(),
        Served(air_sock, aircall_app(public_base_url=air_url)).start(),
        Served(web_sock, web_app).start(),
    ]
    clients = [httpx.Client(base_url=u, timeout=10) for u in (hub_url, air_url, web_url)]
    try:
        asyncio.run(install_on_sandbox(settings))
        from sqlalchemy import select

        from whatsapp_helpdesk.db.models import Installation

        with services.sessions() as session:
            installation_id = session.scalars(select(Installation.id)).one()
        switch_on_every_whatsapp_number(services, installation_id)
        yield Stack(settings, services, *clients, installation_id=installation_id,
                    web_app=web_app)
    finally:
        for client in clients:
            client.close()
        stop_all(list(reversed(servers)))
        services.engine.dispose()
