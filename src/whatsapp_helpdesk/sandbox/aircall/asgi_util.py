"""Tiny helpers for the raw ASGI middlewares (they answer before FastAPI routing)."""

from __future__ import annotations

from starlette.types import Message, Scope, Send

from whatsapp_helpdesk.sandbox.kit.asgi import send_json

__all__ = ["header", "send_json", "with_extra_headers"]


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
