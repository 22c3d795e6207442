"""`create_app`: the sandbox HubSpot as one FastAPI application."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
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
from whatsapp_helpdesk.sandbox.kit.app import install_error_handlers, sandbox_app


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
    install_error_handlers(
        app,
        provider_error=HubSpotApiError,
        http_error_body=_http_error_body,
        validation_error_body=lambda error: error_body(
            f"Invalid input: {error.errors()}", "VALIDATION_ERROR"),
        api_prefixes=_API_PREFIXES,
        not_found_page=screens.not_found_page,
    )
    screens.install(app)
    # Added last = outermost: faults see the request first.
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(FaultInjectionMiddleware, sandbox=sandbox)
    return app


def _http_error_body(error: StarletteHTTPException) -> dict[str, Any]:
    if error.status_code == 404:
        return error_body("Not found", "OBJECT_NOT_FOUND")
    return error_body(str(error.detail), "VALIDATION_ERROR")


# HubSpot's API and OAuth token paths, and the sandbox's control routes: JSON, always;
# elsewhere HubSpot's app answers a browser with a page.
_API_PREFIXES = ("/conversations/", "/crm/", "/files/", "/oauth/v1/", "/oauth/v3/",
                 "/oauth/2026", "/_sandbox/")
