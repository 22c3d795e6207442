"""Raw ASGI middlewares: injected faults (outermost) and rate-limit response headers.

Fault modes (`POST /_sandbox/faults`): `status` (a HubSpot error body with that status),
`rate_limit` (HubSpot's 429 with its headers), `slow` (wait, then serve normally), `drop`
(close the TCP connection without any response: an httpx client sees
`RemoteProtocolError: Server disconnected without sending a response`). Control paths are
never faulted, so a test can always clear what it set.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from whatsapp_helpdesk.sandbox.hubspot import constants, ratelimit
from whatsapp_helpdesk.sandbox.hubspot.auth import RATE_LIMIT_SCOPE_KEY
from whatsapp_helpdesk.sandbox.hubspot.errors import category_for_status, error_body
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.state import Fault

UNFAULTED_PREFIXES = (constants.CONTROL_PREFIX, "/help-desk", "/static")


class ConnectionDroppedByFault(Exception):
    """Raised only where the server exposes no socket to abort (e.g. httpx.ASGITransport)."""


def take_matching_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """First fault matching this request (a fault with `probability` < 1 matches only that
    share of requests); spends one of its `times` (removed at zero)."""
    for fault in faults:
        if not path.startswith(fault.path_prefix):
            continue
        if fault.method is not None and fault.method.upper() != method.upper():
            continue
        if fault.probability < 1.0 and random.random() >= fault.probability:
            continue
        fault.hits += 1
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        return fault
    return None


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    raw = json.dumps(body).encode()
    header_list = [
        (b"content-type", b"application/json;charset=utf-8"),
        (b"content-length", str(len(raw)).encode()),
    ]
    header_list += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": raw})


class FaultInjectionMiddleware:
    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path == "/" or path.startswith(UNFAULTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        fault = take_matching_fault(self.sandbox.state.faults, scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.mode == "slow":
            await asyncio.sleep(fault.delay_seconds)
            await self.app(scope, receive, send)
        elif fault.mode == "status":
            body = error_body(
                f"Sandbox fault: HTTP {fault.status}", category_for_status(fault.status)
            )
            await send_json(send, fault.status, body)
        elif fault.mode == "rate_limit":
            decision = ratelimit.RateDecision(
                allowed=False, limit=self.sandbox.config.rate_limit_max, remaining=0,
                interval_ms=self.sandbox.config.rate_limit_interval_ms,
            )
            await send_json(send, 429, ratelimit.rate_limited_body(None), decision.headers())
        else:
            await drop_connection(receive)


async def drop_connection(receive: Receive) -> None:
    """Abort the client's TCP connection so it gets no response at all.

    Returning without a response is not enough: uvicorn then answers 500 itself. Under
    uvicorn `receive` is a bound method of the request cycle, which holds the asyncio
    transport; aborting it makes uvicorn flag the cycle disconnected and send nothing.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, "abort"):
        raise ConnectionDroppedByFault("sandbox fault: connection dropped")
    transport.abort()
    for _ in range(50):  # let connection_lost() run and mark the cycle disconnected
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)


class RateLimitHeadersMiddleware:
    """Adds the X-HubSpot-RateLimit-* headers recorded by `auth.count_request`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            extra: dict[str, str] | None = scope.get(RATE_LIMIT_SCOPE_KEY)
            if message["type"] == "http.response.start" and extra:
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [
                    (k.lower().encode(), v.encode()) for k, v in extra.items()
                    if k.lower().encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
