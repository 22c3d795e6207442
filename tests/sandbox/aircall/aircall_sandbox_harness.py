"""Real-HTTP harness for the Aircall sandbox tests: uvicorn on free loopback ports.

`aircall` is the sandbox (one server per test module, reset before each test); `receiver` is a
tiny webhook endpoint whose answers a test can script (status codes, delays).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from whatsapp_helpdesk.sandbox.aircall import create_app

BASIC_1 = ("sandbox-api-id", "sandbox-api-token")
BASIC_2 = ("sandbox-api-id-2", "sandbox-api-token-2")
CLIENT_ID = "sandbox-aircall-client-id"
CLIENT_SECRET = "sandbox-aircall-client-secret"
CUSTOMER = "+33612345678"


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class ServerThread:
    """Serve an ASGI app with uvicorn in a background thread on an already bound socket."""

    def __init__(self, app_factory: Callable[[str], Any], *, http: str = "auto") -> None:
        self.socket = free_socket()
        port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.app = app_factory(self.url)
        config = uvicorn.Config(
            self.app, log_level="critical", ws="none", lifespan="on", http=http,
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def wait_for(predicate: Callable[[], Any], *, timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `predicate()` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class Sandbox:
    """A running sandbox and clients for it."""

    url: str
    http: httpx.Client
    basic: httpx.Client
    basic2: httpx.Client

    def configure(self, **options: Any) -> dict[str, Any]:
        response = self.http.post("/_sandbox/config", json=options)
        assert response.status_code == 200, response.text
        return response.json()

    def customer_says(self, text: str = "Hello", **extra: Any) -> dict[str, Any]:
        body = {"from": CUSTOMER, "number_id": 1001, "text": text, **extra}
        response = self.http.post("/_sandbox/customer/messages", json=body)
        assert response.status_code == 201, response.text
        return response.json()["message"]

    def advance(self, seconds: float) -> None:
        response = self.http.post("/_sandbox/clock", json={"advance_seconds": seconds})
        assert response.status_code == 200, response.text

    def oauth_token(self, company_id: int = 1) -> str:
        redirect_uri = "https://bridge.example/oauth/aircall/callback"
        authorize = self.http.get(
            "/oauth/authorize",
            params={
                "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "response_type": "code",
                "scope": "public_api", "state": "xyz", "company_id": str(company_id),
            },
        )
        assert authorize.status_code == 302, authorize.text
        code = httpx.URL(authorize.headers["location"]).params["code"]
        exchanged = self.http.post(
            "/v1/oauth/token",
            json={
                "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            },
        )
        assert exchanged.status_code == 200, exchanged.text
        return str(exchanged.json()["access_token"])

    def bearer(self, token: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        params = {"include_payload": "true", **filters}
        return list(self.http.get("/_sandbox/deliveries", params=params).json()["deliveries"])


@pytest.fixture(scope="module")
def aircall_server() -> Iterator[ServerThread]:
    with ServerThread(lambda url: create_app(public_base_url=url)) as server:
        yield server


@pytest.fixture(scope="module")
def aircall_clients(aircall_server: ServerThread) -> Iterator[Sandbox]:
    url = aircall_server.url
    # Clients are module-wide: building an httpx client (its TLS context) costs ~30 ms.
    with (
        httpx.Client(base_url=url, timeout=10) as plain,
        httpx.Client(base_url=url, auth=BASIC_1, timeout=10) as basic,
        httpx.Client(base_url=url, auth=BASIC_2, timeout=10) as basic2,
    ):
        yield Sandbox(url, plain, basic, basic2)


@pytest.fixture
def aircall(aircall_clients: Sandbox) -> Iterator[Sandbox]:
    plain = aircall_clients.http
    assert plain.post("/_sandbox/reset").status_code == 200
    # Fast, deterministic defaults for tests; individual tests change them.
    plain.post("/_sandbox/config", json={
        "status_progression_delay_ms": 20, "retry_schedule": [0.05],
        "rate_limit_per_minute": 10_000,
    })
    yield aircall_clients
    plain.post("/_sandbox/reset")


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class Receiver:
    """Webhook endpoint under test control: scripted answers, recorded requests."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    plan: deque[tuple[int, float]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hook"

    def answer(self, status: int, *, times: int = 1, delay: float = 0.0) -> None:
        """The next `times` requests get `status` after `delay` seconds (then 200s again)."""
        with self.lock:
            self.plan.extend([(status, delay)] * times)

    def next_answer(self) -> tuple[int, float]:
        with self.lock:
            return self.plan.popleft() if self.plan else (200, 0.0)

    def bodies(self, event: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            found = [r.body for r in self.requests]
        return [b for b in found if event is None or b.get("event") == event]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.plan.clear()


def receiver_app(receiver: Receiver) -> Starlette:
    async def hook(request: Request) -> JSONResponse:
        body = await request.json()
        status, delay = receiver.next_answer()
        with receiver.lock:
            receiver.requests.append(Received(body, dict(request.headers), time.monotonic()))
        if delay:
            await asyncio.sleep(delay)
        return JSONResponse({"ok": status < 300}, status_code=status)

    async def clock(request: Request) -> JSONResponse:
        body = await request.json()
        with receiver.lock:
            receiver.requests.append(
                Received({"clock": body}, dict(request.headers), time.monotonic())
            )
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/hook", hook, methods=["POST"]),
        Route("/clock", clock, methods=["POST"]),
    ])


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[ServerThread, Receiver]]:
    receiver = Receiver()
    with ServerThread(lambda url: receiver_app(receiver)) as server:
        receiver.url = server.url
        yield server, receiver


@pytest.fixture
def receiver(receiver_server: tuple[ServerThread, Receiver]) -> Iterator[Receiver]:
    _, found = receiver_server
    found.clear()
    yield found
    found.clear()


def subscribe(client: httpx.Client, receiver: Receiver, events: list[str] | None = None) -> dict:
    body: dict[str, Any] = {"url": receiver.hook_url, "custom_name": "test receiver"}
    if events is not None:
        body["events"] = events
    response = client.post("/v1/webhooks", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json()["webhook"])
