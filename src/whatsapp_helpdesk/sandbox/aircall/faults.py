"""Injected failures (`POST /_sandbox/faults`), applied before anything else answers.

Modes: `status` (answer with that status), `rate_limit` (a 429 with the X-AircallApi-*
headers), `slow` (wait, then serve normally), `drop` (close the TCP connection without any
response, which an httpx client sees as `RemoteProtocolError`). Control paths (`/_sandbox`)
are never faulted so a test can always clear what it set.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from whatsapp_helpdesk.sandbox.aircall.asgi_util import send_json
from whatsapp_helpdesk.sandbox.aircall.ratelimit import exhausted, too_many_requests_body
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.state import Fault

CONTROL_PREFIX = "/_sandbox"
# The pre-signed media links stand for Aircall's file store, not for a control: a test can
# fault them (an expired link's 403, a slow download, R51).
MEDIA_PREFIX = "/_sandbox/media/"


def fault_json(fault: Fault) -> dict[str, Any]:
    return {
        "id": fault.id,
        "path_prefix": fault.path_prefix,
        "method": fault.method,
        "mode": fault.mode,
        "status": fault.status,
        "delay_seconds": fault.delay_seconds,
        "times": fault.times,
        "hits": fault.hits,
    }


def take_matching_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """First fault matching this request; spends one of its `times` (drops it at zero)."""
    for fault in faults:
        if not path.startswith(fault.path_prefix):
            continue
        if fault.method is not None and fault.method != method:
            continue
        fault.hits += 1
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        return fault
    return None


class FaultInjectionMiddleware:
    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        controls = path.startswith(CONTROL_PREFIX) and not path.startswith(MEDIA_PREFIX)
        if scope["type"] != "http" or controls:
            await self.app(scope, receive, send)
            return
        fault = take_matching_fault(self.sandbox.state.faults, scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.mode == "slow":
            await asyncio.sleep(fault.delay_seconds)
            await self.app(scope, receive, send)
        elif fault.mode == "status":
            await send_json(send, fault.status, {"message": _phrase(fault.status)})
        elif fault.mode == "rate_limit":
            limit = self.sandbox.config.rate_limit_per_minute
            decision = exhausted(limit, self.sandbox.clock.unix())
            await send_json(send, 429, too_many_requests_body(decision), decision.headers())
        else:
            await drop_connection(receive, send)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ConnectionDroppedByFault(Exception):
    """Raised only where the server gives no handle on the socket (see `drop_connection`)."""


async def drop_connection(receive: Receive, send: Send) -> None:
    """Close the client's TCP connection with no response at all.

    Under uvicorn, `receive` is a bound method of the request cycle that owns the asyncio
    transport; closing it is the only way to make the client see a dropped connection
    (returning without a response makes uvicorn answer 500 instead). The request body is
    drained first so the kernel closes with a FIN, not a reset: httpx then reports
    `RemoteProtocolError: Server disconnected without sending a response`. Once the
    transport is lost uvicorn marks the cycle disconnected and sends nothing more. Servers
    without that handle get a started-but-unfinished response, also a broken exchange.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "close"):
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        transport.close()
        for _ in range(50):  # let connection_lost() run and flag the cycle as disconnected
            if getattr(cycle, "disconnected", True):
                break
            await asyncio.sleep(0.001)
        return
    start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"9")]}
    await send(start)
    raise ConnectionDroppedByFault("sandbox fault: connection dropped")
