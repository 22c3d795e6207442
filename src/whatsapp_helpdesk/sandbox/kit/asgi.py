"""Raw ASGI answers for the middlewares that reply before FastAPI routing."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from starlette.types import Receive, Send


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
    *, content_type: str = "application/json",
) -> None:
    raw = json.dumps(body).encode()
    header_list = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(raw)).encode()),
    ]
    header_list += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": raw})


class ConnectionDroppedByFault(Exception):
    """Raised only where the server gives no handle on the socket (e.g. httpx.ASGITransport)."""


# How a dropped connection ends: "close" drains the request body first so the kernel closes
# with a FIN; "abort" resets it at once. httpx reports both as
# `RemoteProtocolError: Server disconnected without sending a response`; each emulator keeps
# the way it has always used (Aircall: close, HubSpot: abort).
DropStyle = Literal["close", "abort"]


async def drop_connection(receive: Receive, send: Send, style: DropStyle) -> None:
    """End the client's TCP connection with no response at all.

    Returning without a response is not enough: uvicorn then answers 500 itself. Under
    uvicorn `receive` is a bound method of the request cycle, which holds the asyncio
    transport; closing it makes uvicorn flag the cycle disconnected and send nothing more.
    Servers without that handle get an exception (after, with "close", a started but
    unfinished response): a broken exchange too.
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(transport, style):
        if style == "close":
            start = {"type": "http.response.start", "status": 200,
                     "headers": [(b"content-length", b"9")]}
            await send(start)
        raise ConnectionDroppedByFault("sandbox fault: connection dropped")
    if style == "close":
        while True:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        transport.close()
    else:
        transport.abort()
    for _ in range(50):  # let connection_lost() run and flag the cycle as disconnected
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.001 if style == "close" else 0)
