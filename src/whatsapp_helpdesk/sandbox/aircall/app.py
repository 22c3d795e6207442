"""`create_app`: the Aircall sandbox as one FastAPI application."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

from fastapi import FastAPI

from whatsapp_helpdesk.sandbox.aircall import routes_api, routes_control, routes_oauth, screens
from whatsapp_helpdesk.sandbox.aircall.auth import AuthGateMiddleware
from whatsapp_helpdesk.sandbox.aircall.errors import ApiError
from whatsapp_helpdesk.sandbox.aircall.faults import FaultInjectionMiddleware
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.kit.app import install_error_handlers, sandbox_app


def create_app(*, public_base_url: str, clock_followers: Sequence[str] = (),
               demo_home_url: str | None = None) -> FastAPI:
    """A fresh, seeded Aircall sandbox reachable at `public_base_url`; its screens link back
    to `demo_home_url` when given.

    `clock_followers`: clock endpoints (`POST {"advance_seconds"}`) the customer phone's
    "jump the clock" always moves too, besides any the page's URL names (`also_notify`).

    Deliveries run as background tasks on the serving loop and need the lifespan to run
    (uvicorn does; with Starlette's TestClient use it as a context manager).
    """
    sandbox = Sandbox(public_base_url, clock_followers, demo_home_url)

    app = sandbox_app(
        title="Aircall sandbox",
        description="Local emulator of Aircall's Public API and WhatsApp rules.",
        sandbox=sandbox,
    )
    app.include_router(routes_oauth.router)
    app.include_router(routes_api.router)
    app.include_router(routes_control.router)
    app.include_router(screens.router)
    install_error_handlers(
        app,
        provider_error=ApiError,
        http_error_body=lambda error: {"message": HTTPStatus(error.status_code).phrase},
        validation_error_body=lambda error: {
            "error": "Bad Request", "troubleshoot": str(error.errors())},
        # Aircall's API and the sandbox's control routes: JSON, always; elsewhere Aircall's
        # dashboard answers a browser with a page.
        api_prefixes=("/v1/", "/_sandbox/"),
        not_found_page=lambda request, what: screens.templates.TemplateResponse(
            request, "not_found.html", {"what": what}, status_code=404),
    )
    # Added last = outermost: faults first, then the /v1 authentication and rate-limit gate.
    app.add_middleware(AuthGateMiddleware, sandbox=sandbox)
    app.add_middleware(FaultInjectionMiddleware, sandbox=sandbox)
    return app
