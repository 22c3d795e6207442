"""The FastAPI shell both emulators are built in: lifespan, locally served API docs, and
the error handlers (each emulator passes its provider's bodies)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from whatsapp_helpdesk.sandbox.api_docs import serve_api_docs
from whatsapp_helpdesk.sandbox.kit.errors import SandboxApiError

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


def install_error_handlers(
    app: FastAPI,
    *,
    provider_error: type[SandboxApiError],
    http_error_body: Callable[[StarletteHTTPException], dict[str, Any]],
    validation_error_body: Callable[[RequestValidationError], dict[str, Any]],
    api_prefixes: tuple[str, ...],
    not_found_page: Callable[[Request, str], Response],
) -> None:
    """Errors as the provider writes them. `provider_error` answers its own body; a 404
    asked for by a browser outside `api_prefixes` (API and control paths: JSON, always) gets
    the emulator's page (issue 15); other HTTP errors and invalid input get the provider's
    JSON bodies."""

    @app.exception_handler(provider_error)
    async def api_error(_: Request, error: SandboxApiError) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and _browser_page(request, api_prefixes):
            return not_found_page(request, f"There is no page at {request.url.path}.")
        return JSONResponse(http_error_body(error), status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error_body(error), status_code=400)


def _browser_page(request: Request, api_prefixes: tuple[str, ...]) -> bool:
    """A browser asking for a screen, not a client of the API or of the control routes."""
    return ("text/html" in request.headers.get("accept", "")
            and not request.url.path.startswith(api_prefixes))
