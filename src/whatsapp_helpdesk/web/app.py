"""The thin web layer: webhooks, OAuth callbacks, health and metrics."""

from __future__ import annotations

import functools
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from html import escape
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.install import (
    CompanyChange,
    complete_aircall_oauth,
    complete_hubspot_oauth,
)
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.input_limits import InputRejected
from whatsapp_helpdesk.supervisor import read_state
from whatsapp_helpdesk.web import (
    connect_routes,
    dashboard_routes,
    hubspot_webhook_routes,
    reinstall_routes,
    sandbox_routes,
)
from whatsapp_helpdesk.web.error_pages import install_error_pages
from whatsapp_helpdesk.web.ingest_writer import (
    AircallFastPath,
    AircallIngestWriter,
    SpoolAppender,
)
from whatsapp_helpdesk.web.request_state import services_of
from whatsapp_helpdesk.web.security_headers import SecurityHeaders
from whatsapp_helpdesk.web.sessions import ServerSessions, renew, revoke_installation
from whatsapp_helpdesk.web.webhook_intake import WEBHOOKS, read_limited_body
from whatsapp_helpdesk.web.webhook_spool import DATABASE_DOWN, WebhookSpool

# Aircall's events are a few KB; anything far larger is not one of them (R43).
MAX_WEBHOOK_BODY = 256 * 1024


class WebApp(FastAPI):
    """The FastAPI app, with an optional `front`: an ASGI app that sees every request first
    and hands on what it does not answer to FastAPI (its middleware stack and routes).
    The Aircall webhook's fast path is that front in spool mode (decision 0011): a webhook
    needs none of FastAPI's per-request layers (telemetry, body limits, error pages,
    sessions, routing), and they cost more than the acknowledgement itself."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is not None:
            await self.front(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def behind_the_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(services: Services) -> WebApp:
    settings = services.settings
    webhook_spool = WebhookSpool(services)
    ingest_writer = AircallIngestWriter(webhook_spool)
    spool_appender = SpoolAppender(webhook_spool)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The spool's replay thread lives as long as the web process serves (R53). Its start
        # reads the webhook tokens: in a thread, like every query of the web app (issue 13).
        await run_in_threadpool(webhook_spool.start)
        try:
            yield
        finally:
            await run_in_threadpool(spool_appender.stop)
            await run_in_threadpool(ingest_writer.stop)
            await run_in_threadpool(webhook_spool.stop)

    app = WebApp(title="whatsapp-helpdesk", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.services = services
    install_error_pages(app)
    app.state.webhook_spool = webhook_spool
    app.state.ingest_writer = ingest_writer
    # Server-side sessions: the cookie is a random id (issue 12, item 4).
    app.add_middleware(ServerSessions, sessions=services.sessions,
                       https_only=settings.public_url.startswith("https://"))
    if settings.ingest_mode == "spool":
        # Ahead of everything: Aircall's inbound messages are spooled and answered before
        # any middleware, session or routing work, with the security headers every answer
        # carries (decision 0011).
        headers = SecurityHeaders(app.behind_the_front, settings).headers_for(
            "/webhooks/aircall")
        app.front = AircallFastPath(
            app.behind_the_front, webhook_spool=webhook_spool, appender=spool_appender,
            max_body=MAX_WEBHOOK_BODY, headers=headers)
    app.add_middleware(SecurityHeaders, settings=settings)  # issue 12, item 5

    @app.exception_handler(InputRejected)
    async def input_rejected(request: Request, exc: InputRejected) -> HTMLResponse:
        # Input beyond input_limits.py, found by a page: a clear 400, never a 500 (R43).
        return _problem(f"This request cannot be accepted: {exc}")

    if settings.sandbox_mode:
        sandbox_routes.serve_on(app, services)
    # The routes are the process's, built once; each reads this app's services from the
    # request (web/request_state.py).
    app.router.routes.extend(shared_routes(sandbox_mode=settings.sandbox_mode))
    return app


def _problem(message: str, status_code: int = 400) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Problem</title>"
        "<link rel=stylesheet href='/static/style.css'><body class=plain><h1>Problem</h1>"
        f"<p role=alert>{escape(message)}</p><p><a href='/'>Back</a></p></body></html>",
        status_code=status_code,
    )


@functools.cache
def shared_routes(*, sandbox_mode: bool) -> tuple[BaseRoute, ...]:
    """Every route of the bridge, built once per process and mode, and shared by the apps
    the process builds (a test process builds hundreds): FastAPI's analysis of each route's
    signature and schemas was ~28 ms of CPU per app. Nothing here holds an app's services:
    each handler reads them from the app that received the request."""
    routes = APIRouter()
    _add_routes(routes, sandbox_mode=sandbox_mode)
    return tuple(routes.routes)


def _callback_url(services: Services, provider: str) -> str:
    return f"{services.settings.public_url}/oauth/{provider}/callback"


def _to_consent_page(request: Request, provider: str,
                     authorize_url: Callable[[str, str], str]) -> RedirectResponse:
    # The state comes back with the callback, which checks it against the session.
    state = secrets.token_urlsafe(24)
    request.session[f"{provider}_state"] = state
    return RedirectResponse(authorize_url(_callback_url(services_of(request), provider), state),
                            status_code=303)


def _state_is_ours(request: Request, provider: str, state: str) -> bool:
    """Whether the callback's `state` is the one `_to_consent_page` kept in this session. It is
    used once: taken out of the session whatever the answer (a replayed callback fails)."""
    expected = request.session.pop(f"{provider}_state", None)
    return bool(expected) and secrets.compare_digest(state, expected)


def _add_routes(routes: APIRouter, *, sandbox_mode: bool) -> None:
    @routes.get("/healthz")
    async def healthz(request: Request) -> JSONResponse:
        services = services_of(request)
        webhook_spool: WebhookSpool = request.app.state.webhook_spool

        def check() -> bool:
            try:
                with services.engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
            except DATABASE_DOWN:
                return False
            return True

        database_up = await run_in_threadpool(check)
        # Webhooks still kept while the database is down, in the spool (R53).
        spool = await run_in_threadpool(webhook_spool.health)
        settings = services.settings
        health: dict[str, Any] = {
            "status": "ok" if database_up else "degraded",
            "database": "ok" if database_up else "unreachable",
            "spool": spool, "sandbox_mode": settings.sandbox_mode,
        }
        # Under `serve`: its children (name, pid, restarts, last exit), issue 11 item 1.
        supervised = read_state(settings.supervisor_state_file)
        if supervised is not None:
            health["children"] = supervised["children"]
        return JSONResponse(health, status_code=200 if database_up else 503)

    @routes.get("/metrics")
    async def metrics(request: Request) -> PlainTextResponse:
        webhook_spool: WebhookSpool = request.app.state.webhook_spool
        await run_in_threadpool(webhook_spool.health)  # refreshes the spool's gauges
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    @routes.post("/webhooks/aircall")
    async def aircall_webhook(request: Request) -> JSONResponse:
        body = await read_limited_body(request, MAX_WEBHOOK_BODY)
        if body is None:
            WEBHOOKS.labels("aircall", "too_large").inc()
            return JSONResponse({"result": "too_large"}, status_code=413)
        # Group commit: answered after the commit of the batch holding it (R11).
        ingest_writer: AircallIngestWriter = request.app.state.ingest_writer
        outcome = await ingest_writer.submit(body)
        WEBHOOKS.labels("aircall", outcome.result).inc()
        return JSONResponse(outcome.body(), status_code=outcome.status_code)

    # --- OAuth: HubSpot first (it names the portal), then Aircall ------------------------------

    @routes.get("/oauth/hubspot/install")
    async def hubspot_install(request: Request) -> RedirectResponse:
        return _to_consent_page(request, "hubspot",
                                services_of(request).hubspot_oauth().authorize_url)

    @routes.get("/oauth/hubspot/callback")
    async def hubspot_callback(request: Request, code: str = "", state: str = "") -> Any:
        services = services_of(request)
        if not _state_is_ours(request, "hubspot", state) or not code:
            return _problem("The HubSpot authorisation could not be verified. Start again.")
        try:
            installation_id = await complete_hubspot_oauth(
                services, code=code, redirect_uri=_callback_url(services, "hubspot"),
                installation_id=request.session.get("installation_id"),
            )
        except DeliveryError as exc:
            return _problem(f"HubSpot refused the authorisation: {exc.message}")
        # Re-authorisation ends every other session of the installation (issue 12, item 4).
        await run_in_threadpool(revoke_installation, services.sessions, installation_id)
        request.session["installation_id"] = installation_id
        renew(request)
        return RedirectResponse("/oauth/aircall/install", status_code=303)

    @routes.get("/oauth/aircall/install")
    async def aircall_install(request: Request) -> Any:
        if not request.session.get("installation_id"):
            return RedirectResponse("/oauth/hubspot/install", status_code=303)
        return _to_consent_page(request, "aircall",
                                services_of(request).aircall_oauth().authorize_url)

    @routes.get("/oauth/aircall/callback")
    async def aircall_callback(request: Request, code: str = "", state: str = "") -> Any:
        services = services_of(request)
        installation_id = request.session.get("installation_id")
        if not _state_is_ours(request, "aircall", state) or not code or not installation_id:
            return _problem("The Aircall authorisation could not be verified. Start again.")
        try:
            await complete_aircall_oauth(
                services, code=code, redirect_uri=_callback_url(services, "aircall"),
                installation_id=installation_id,
            )
        except CompanyChange as change:
            # Another Aircall company: only with the admin's confirmation (issue 12, item 7).
            return reinstall_routes.ask_to_confirm(request, services, change, installation_id)
        except DeliveryError as exc:
            return _problem(f"Aircall refused the authorisation: {exc.message}")
        await run_in_threadpool(revoke_installation, services.sessions, installation_id)
        renew(request)
        # The dashboard: it says how far the read of the numbers queued just now is, and
        # lists them as they arrive.
        return RedirectResponse("/dashboard", status_code=303)

    if sandbox_mode:
        # The demo's home, reset and clock: mounted only on the sandbox (issue 6).
        sandbox_routes.add_routes(routes)
    else:
        @routes.get("/", response_class=HTMLResponse)
        async def home() -> str:
            return (
                "<!doctype html><html lang=en><meta charset=utf-8><title>whatsapp-helpdesk"
                "</title><link rel=stylesheet href='/static/style.css'><body class=plain>"
                "<h1>whatsapp-helpdesk</h1>"
                "<ul><li><a href='/dashboard'>Open the integration dashboard</a> (sign in with "
                "HubSpot)</li>"
                "<li><a href='/oauth/hubspot/install'>Install: authorise HubSpot, then "
                "Aircall</a></li><li><a href='/healthz'>Health</a></li>"
                "<li><a href='/metrics'>Metrics</a></li></ul></body></html>"
            )

    connect_routes.add_routes(routes)
    dashboard_routes.add_routes(routes)
    hubspot_webhook_routes.add_routes(routes)
    reinstall_routes.add_routes(routes)
