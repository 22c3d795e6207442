"""Tiny helpers for the raw ASGI middlewares (they answer before FastAPI routing)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Message, Scope, Send


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    raw = json.dumps(body).encode()
    header_list = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(raw)).encode()),
    ]
    header_list += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": header_list})
    await send({"type": "http.response.body", "body": raw})


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def with_extra_headers(send: Send, extra: dict[str, str]) -> Send:
    """Wrap `send` so the response start carries `extra` headers."""

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            existing = list(message.get("headers", []))
            existing += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
            message = {**message, "headers": existing}
        await send(message)

    return wrapped
