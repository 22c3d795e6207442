"""Sandbox mode only: the demo's home page, its reset, and the clock the phone moves.

`create_app` mounts this router only when the service runs on the built-in sandbox, so a
service configured for the real HubSpot and Aircall has no page that resets data and no
endpoint that moves its clock (issue 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.flows.sandbox_demo import reset_demo
from whatsapp_helpdesk.web import auth
from whatsapp_helpdesk.web.pages import flash, problem, render

log = structlog.get_logger(__name__)

# The sandbox HubSpot's demo portal, used only until the demo installation exists.
DEFAULT_DEMO_PORTAL = "4242"


@dataclass(frozen=True)
class SandboxScreens:
    """Where the demo's screens are (the emulators' pages and ours)."""

    hubspot: str
    aircall: str
    portal: str
    public_url: str

    @property
    def channels(self) -> str:
        return f"{self.hubspot}/help-desk/{self.portal}/settings/channels"

    @property
    def tickets(self) -> str:
        return f"{self.hubspot}/help-desk/{self.portal}/tickets"

    @property
    def contacts(self) -> str:
        return f"{self.hubspot}/help-desk/{self.portal}/contacts"

    @property
    def phone(self) -> str:
        # "Jump the clock" on the phone also moves the sandbox HubSpot and this service.
        notify = urlencode([("also_notify", f"{self.hubspot}/_sandbox/clock"),
                            ("also_notify", f"{self.public_url}/_sandbox/clock")])
        return f"{self.aircall}/phone?{notify}"


def screens(services: Services) -> SandboxScreens:
    settings = services.settings
    with services.sessions() as session:
        portal = session.scalar(select(Installation.hubspot_portal_id).where(
            Installation.hubspot_portal_id.is_not(None)).order_by(Installation.id))
    return SandboxScreens(
        hubspot=settings.hubspot_api_base, aircall=settings.aircall_api_base,
        portal=portal or DEFAULT_DEMO_PORTAL, public_url=settings.public_url,
    )


def router(services: Services) -> APIRouter:
    assert services.settings.sandbox_mode, "sandbox routes on a service with real credentials"
    routes = APIRouter()

    @routes.get("/")
    async def sandbox_home(request: Request) -> Response:
        where, service_now = await run_in_threadpool(
            lambda: (screens(services), services.clock.now()))
        ahead = service_now - datetime.now(UTC)
        return render(request, "sandbox_home.html", {
            "screens": where, "service_now": service_now,
            "hours_ahead": round(ahead.total_seconds() / 3600, 1),
            "database": services.engine.url.get_backend_name(),
        })

    @routes.post("/_sandbox/reset")
    async def sandbox_reset(request: Request) -> Response:
        form = await request.form()
        if not auth.csrf_valid(request, form.get(auth.CSRF_FIELD)):
            return problem(request, "This form has expired",
                           "Nothing was reset. Reload the page and try again.", status_code=403,
                           action=("/", "Back to the sandbox home"))
        try:
            await reset_demo(services)
        except (DeliveryError, httpx.HTTPError) as exc:
            log.warning("sandbox.reset_failed", error=str(exc))
            return problem(request, "The demo could not be reset",
                           f"A sandbox did not answer ({exc}). Is `whatsapp-helpdesk serve` "
                           "still running? Try again.", status_code=502,
                           action=("/", "Back to the sandbox home"))
        # The installation this browser was signed in to is gone.
        request.session.clear()
        flash(request, "The demo data is back to its starting point: both sandboxes, this "
                       "service's database and every clock.")
        log.info("sandbox.reset")
        return RedirectResponse("/", status_code=303)

    @routes.post("/_sandbox/clock")
    async def sandbox_clock(request: Request) -> dict[str, float]:
        """Called by the phone's "jump the clock" (its `also_notify`): same body as the
        emulators' own clock endpoints."""
        body = await request.json()
        offset = services.sandbox_clock_offset
        assert offset is not None  # sandbox mode
        if "offset_seconds" in body:
            moved = await run_in_threadpool(
                lambda: offset.move(offset_seconds=float(body["offset_seconds"])))
        else:
            moved = await run_in_threadpool(
                lambda: offset.move(advance_seconds=float(body.get("advance_seconds", 0))))
        return {"offset_seconds": moved}

    return routes
