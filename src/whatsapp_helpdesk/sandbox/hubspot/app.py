"""`create_app`: the sandbox HubSpot as one FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from whatsapp_helpdesk.sandbox.hubspot import (
    routes_channels,
    routes_control,
    routes_conversations,
    routes_crm,
    routes_files,
    routes_oauth,
    screens,
)
from whatsapp_helpdesk.sandbox.hubspot.errors import HubSpotApiError, error_body
from whatsapp_helpdesk.sandbox.hubspot.middleware import (
    FaultInjectionMiddleware,
    RateLimitHeadersMiddleware,
)
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.versions import with_dated_routes
from whatsapp_helpdesk.sandbox.kit.app import sandbox_app


def create_app(*, public_base_url: str, demo_home_url: str | None = None) -> FastAPI:
    """A fresh, seeded sandbox HubSpot reachable at `public_base_url`; its screens link back
    to `demo_home_url` when given.

    Webhooks are delivered by background tasks on the serving event loop. Set
    `app.state.sandbox.webhook_transport` to deliver through another httpx transport.
    """
    sandbox = Sandbox(public_base_url, demo_home_url)

    app = sandbox_app(
        title="Sandbox HubSpot",
        description="Local emulator of HubSpot's Custom Channels, Conversations, CRM and OAuth.",
        sandbox=sandbox,
    )
    for module in (
        routes_oauth, routes_channels, routes_conversations, routes_crm, routes_files,
        routes_control, screens,
    ):
        app.include_router(with_dated_routes(module.router))  # v3 and 2026-03 paths (R50)
    _install_error_handlers(app)
    screens.install(app)
    # Added last = outermost: faults see the request first.
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(FaultInjectionMiddleware, sandbox=sandbox)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubSpotApiError)
    async def hubspot_error(_: Request, error: HubSpotApiError) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and _browser_page(request):
            # HubSpot's app answers a browser with a page; its API, JSON (issue 15).
            return screens.not_found_page(request, f"There is no page at {request.url.path}.")
        category = "OBJECT_NOT_FOUND" if error.status_code == 404 else "VALIDATION_ERROR"
        message = "Not found" if error.status_code == 404 else str(error.detail)
        return JSONResponse(error_body(message, category), status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        body = error_body(f"Invalid input: {error.errors()}", "VALIDATION_ERROR")
        return JSONResponse(body, status_code=400)


# HubSpot's API and OAuth token paths, and the sandbox's control routes: JSON, always.
_API_PREFIXES = ("/conversations/", "/crm/", "/files/", "/oauth/v1/", "/oauth/v3/",
                 "/oauth/2026", "/_sandbox/")


def _browser_page(request: Request) -> bool:
    """A browser asking for a screen, not a client of the API or of the control routes."""
    return ("text/html" in request.headers.get("accept", "")
            and not request.url.path.startswith(_API_PREFIXES))
