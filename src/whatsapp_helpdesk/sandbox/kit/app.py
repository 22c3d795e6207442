"""The FastAPI shell both emulators are built in: lifespan, locally served API docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI

from whatsapp_helpdesk.sandbox.api_docs import serve_api_docs

OPENAPI_URL = "/_sandbox/openapi.json"
DOCS_URL = "/_sandbox/docs"


class Closable(Protocol):
    async def aclose(self) -> None: ...


def sandbox_app(*, title: str, description: str, sandbox: Closable) -> FastAPI:
    """An app holding `sandbox` on `app.state.sandbox`, closed when the lifespan ends; the
    caller adds its routers, error handlers and middlewares."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sandbox.aclose()

    app = FastAPI(
        title=title,
        description=description,
        lifespan=lifespan,
        docs_url=None,  # served below, with its assets from a package rather than a CDN
        redoc_url=None,
        openapi_url=OPENAPI_URL,
    )
    app.state.sandbox = sandbox
    serve_api_docs(app, docs_url=DOCS_URL, openapi_url=OPENAPI_URL, title=app.title)
    return app
