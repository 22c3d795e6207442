"""Issue 17 item 1 (R40): a request that carries no session and starts none (every webhook)
costs the session middleware no thread hop and no save; one that starts a session is saved."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from whatsapp_helpdesk.web.sessions import ServerSessions


def _app(saves: list[dict[str, Any]]) -> ServerSessions:
    async def webhook(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def sign_in(request: Request) -> PlainTextResponse:
        request.session["state"] = "x"
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"]),
                            Route("/sign-in", sign_in)])
    middleware = ServerSessions(app, sessions=None, https_only=False)  # type: ignore[arg-type]

    def save(session_id: str | None, data: dict[str, Any], before: str) -> str | None:
        saves.append(dict(data))
        return None

    middleware._save = save  # type: ignore[method-assign]
    return middleware


def test_R40_sessionless_request_is_not_saved_but_a_new_session_is() -> None:
    saves: list[dict[str, Any]] = []

    async def run() -> None:
        transport = httpx.ASGITransport(app=_app(saves))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            assert (await c.post("/webhook", content=b"{}")).status_code == 200
            assert saves == []
            assert (await c.get("/sign-in")).status_code == 200
            assert saves == [{"state": "x"}]

    asyncio.run(run())
