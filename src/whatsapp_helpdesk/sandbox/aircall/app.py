"""`create_app`: the Aircall sandbox as one FastAPI application."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from whatsapp_helpdesk.sandbox.aircall import routes_api, routes_control, routes_oauth, screens
from whatsapp_helpdesk.sandbox.aircall.auth import AuthGateMiddleware
from whatsapp_helpdesk.sandbox.aircall.errors import ApiError
from whatsapp_helpdesk.sandbox.aircall.faults import FaultInjectionMiddleware
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.kit.app import sandbox_app


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
    _install_error_handlers(app)
    # Added last = outermost: faults first, then the /v1 authentication and rate-limit gate.
    app.add_middleware(AuthGateMiddleware, sandbox=sandbox)
    app.add_middleware(FaultInjectionMiddleware, sandbox=sandbox)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(error.body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 404 and _browser_page(request):
            # Aircall's dashboard answers a browser with a page; its API, JSON (issue 15).
            return screens.templates.TemplateResponse(
                request, "not_found.html",
                {"what": f"There is no page at {request.url.path}."}, status_code=404)
        phrase = HTTPStatus(error.status_code).phrase
        return JSONResponse({"message": phrase}, status_code=error.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": "Bad Request", "troubleshoot": str(error.errors())}, status_code=400
        )


def _browser_page(request: Request) -> bool:
    """A browser asking for a screen, not a client of the API or of the control routes."""
    return "text/html" in request.headers.get("accept", "") and not request.url.path.startswith(
        ("/v1/", "/_sandbox/"))
