"""The thin web layer: webhooks, OAuth callbacks, health and metrics."""

from __future__ import annotations

import secrets
from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.flows.ingest import handle_aircall_delivery
from whatsapp_helpdesk.flows.install import complete_aircall_oauth, complete_hubspot_oauth
from whatsapp_helpdesk.web import (
    connect_routes,
    dashboard_routes,
    hubspot_webhook_routes,
    sandbox_routes,
)
from whatsapp_helpdesk.web.error_pages import install_error_pages

# Aircall's events are a few KB; anything far larger is not one of them (R43).
MAX_WEBHOOK_BODY = 256 * 1024

WEBHOOKS = Counter(
    "whatsapp_helpdesk_webhooks_total", "Webhook deliveries by source and result",
    ["source", "result"],
)


async def read_limited_body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_WEBHOOK_BODY:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_WEBHOOK_BODY:
            return None
    return bytes(body)


def create_app(services: Services) -> FastAPI:
    settings = services.settings
    app = FastAPI(title="whatsapp-helpdesk", docs_url=None, redoc_url=None)
    app.state.services = services
    install_error_pages(app)
    app.add_middleware(
        SessionMiddleware, secret_key=settings.secret_key.get_secret_value(),
        session_cookie="wh_session", same_site="lax",
        https_only=settings.public_url.startswith("https://"),
    )

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        def check() -> None:
            with services.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        await run_in_threadpool(check)
        return {"status": "ok", "sandbox_mode": settings.sandbox_mode}

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/webhooks/aircall")
    async def aircall_webhook(request: Request) -> JSONResponse:
        body = await read_limited_body(request)
        if body is None:
            WEBHOOKS.labels("aircall", "too_large").inc()
            return JSONResponse({"result": "too_large"}, status_code=413)
        outcome = await run_in_threadpool(handle_aircall_delivery, services, body)
        WEBHOOKS.labels("aircall", outcome.result).inc()
        return JSONResponse(outcome.body(), status_code=outcome.status_code)

    # --- OAuth: HubSpot first (it names the portal), then Aircall ------------------------------

    @app.get("/oauth/hubspot/install")
    async def hubspot_install(request: Request) -> RedirectResponse:
        state = secrets.token_urlsafe(24)
        request.session["hubspot_state"] = state
        url = services.hubspot_oauth().authorize_url(
            f"{settings.public_url}/oauth/hubspot/callback", state
        )
        return RedirectResponse(url, status_code=303)

    @app.get("/oauth/hubspot/callback")
    async def hubspot_callback(request: Request, code: str = "", state: str = "") -> Any:
        expected = request.session.pop("hubspot_state", None)
        if not code or not expected or not secrets.compare_digest(state, expected):
            return _problem("The HubSpot authorisation could not be verified. Start again.")
        try:
            installation_id = await complete_hubspot_oauth(
                services, code=code, redirect_uri=f"{settings.public_url}/oauth/hubspot/callback",
                installation_id=request.session.get("installation_id"),
            )
        except DeliveryError as exc:
            return _problem(f"HubSpot refused the authorisation: {exc.message}")
        request.session["installation_id"] = installation_id
        return RedirectResponse("/oauth/aircall/install", status_code=303)

    @app.get("/oauth/aircall/install")
    async def aircall_install(request: Request) -> Any:
        if not request.session.get("installation_id"):
            return RedirectResponse("/oauth/hubspot/install", status_code=303)
        state = secrets.token_urlsafe(24)
        request.session["aircall_state"] = state
        url = services.aircall_oauth().authorize_url(
            f"{settings.public_url}/oauth/aircall/callback", state
        )
        return RedirectResponse(url, status_code=303)

    @app.get("/oauth/aircall/callback")
    async def aircall_callback(request: Request, code: str = "", state: str = "") -> Any:
        expected = request.session.pop("aircall_state", None)
        installation_id = request.session.get("installation_id")
        if not code or not expected or not installation_id or not secrets.compare_digest(
            state, expected
        ):
            return _problem("The Aircall authorisation could not be verified. Start again.")
        try:
            await complete_aircall_oauth(
                services, code=code, redirect_uri=f"{settings.public_url}/oauth/aircall/callback",
                installation_id=installation_id,
            )
        except DeliveryError as exc:
            return _problem(f"Aircall refused the authorisation: {exc.message}")
        return RedirectResponse("/", status_code=303)

    if settings.sandbox_mode:
        # The demo's home, reset and clock: mounted only on the sandbox (issue 6).
        app.include_router(sandbox_routes.router(services))
    else:
        @app.get("/", response_class=HTMLResponse)
        async def home() -> str:
            return (
                "<!doctype html><html lang=en><meta charset=utf-8><title>whatsapp-helpdesk"
                "</title><body style='font-family:system-ui;max-width:40rem;margin:3rem auto'>"
                "<h1>whatsapp-helpdesk</h1>"
                "<ul><li><a href='/dashboard'>Open the integration dashboard</a> (sign in with "
                "HubSpot)</li>"
                "<li><a href='/oauth/hubspot/install'>Install: authorise HubSpot, then "
                "Aircall</a></li><li><a href='/healthz'>Health</a></li>"
                "<li><a href='/metrics'>Metrics</a></li></ul></body></html>"
            )

    app.include_router(connect_routes.router(services))
    app.include_router(dashboard_routes.router(services))
    app.include_router(hubspot_webhook_routes.router(services))

    return app


def _problem(message: str, status_code: int = 400) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Problem</title>"
        f"<body style='font-family:system-ui;max-width:40rem;margin:3rem auto'><h1>Problem</h1>"
        f"<p role=alert>{escape(message)}</p><p><a href='/'>Back</a></p></body></html>",
        status_code=status_code,
    )
