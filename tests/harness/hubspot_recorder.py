"""Records every HTTP exchange the sandbox HubSpot serves, to check each one afterwards
against HubSpot's OpenAPI files (R50): what the bridge sent and what the sandbox answered."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx

Scope = dict[str, Any]


@dataclass(frozen=True)
class Exchange:
    request: httpx.Request
    response: httpx.Response


class RecordingApp:
    """An ASGI wrapper that keeps a copy of each HTTP request and its response."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()

        async def receive_recorded() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        started: dict[str, Any] = {}
        answer = bytearray()

        async def send_recorded(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                answer.extend(message.get("body", b""))
                if not message.get("more_body"):
                    self._keep(scope, bytes(body), started, bytes(answer))
            await send(message)

        await self.app(scope, receive_recorded, send_recorded)

    def _keep(self, scope: Scope, body: bytes, started: dict[str, Any], answer: bytes) -> None:
        query = scope.get("query_string", b"").decode()
        url = f"http://sandbox.hubspot{scope['path']}" + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        request = httpx.Request(scope["method"], url, headers=headers, content=body)
        response = httpx.Response(
            started["status"], content=answer, request=request,
            headers=[(k.decode(), v.decode()) for k, v in started.get("headers", [])],
        )
        with self._lock:
            self._exchanges.append(Exchange(request, response))
