"""Sandbox mode only: the demo's home page, its reset, and the clock the phone moves.

`create_app` mounts this router only when the service runs on the built-in sandbox, so a
service configured for the real HubSpot and Aircall has no page that resets data and no
endpoint that moves its clock (issue 6).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.operations.sandbox_demo import reset_demo
from whatsapp_helpdesk.web.csrf import CSRF_FIELD, csrf_valid
from whatsapp_helpdesk.web.pages import flash, problem, render
from whatsapp_helpdesk.web.request_state import services_of

log = structlog.get_logger(__name__)

# The sandbox HubSpot's demo portal, used only until the demo installation exists.
DEFAULT_DEMO_PORTAL = "4242"


@dataclass(frozen=True)
class SandboxScreens:
    """Where the demo's screens are (the emulators' pages and ours)."""

    hubspot: str
    aircall: str
    portal: str
    clocks: tuple[str, ...]  # moved together with the phone's (Settings.sandbox_clocks)

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
        # Named in the link too, so the jump moves them even on a sandbox Aircall started
        # without followers (the tests' in-process stack).
        notify = urlencode([("also_notify", url) for url in self.clocks])
        return f"{self.aircall}/phone?{notify}"


def screens(services: Services) -> SandboxScreens:
    settings = services.settings
    with services.sessions() as session:
        portal = session.scalar(select(Installation.hubspot_portal_id).where(
            Installation.hubspot_portal_id.is_not(None)).order_by(Installation.id))
    return SandboxScreens(
        hubspot=settings.hubspot_api_base, aircall=settings.aircall_api_base,
        portal=portal or DEFAULT_DEMO_PORTAL, clocks=tuple(settings.sandbox_clocks),
    )


# Ten years either way: far enough for any demo, near enough that dates stay dates.
CLOCK_LIMIT_SECONDS = 10 * 365 * 24 * 3600.0


class ClockMove(BaseModel):
    """Exactly one of the two, finite and within CLOCK_LIMIT_SECONDS."""

    model_config = ConfigDict(extra="forbid")

    advance_seconds: float | None = Field(
        None, allow_inf_nan=False, ge=-CLOCK_LIMIT_SECONDS, le=CLOCK_LIMIT_SECONDS)
    offset_seconds: float | None = Field(
        None, allow_inf_nan=False, ge=-CLOCK_LIMIT_SECONDS, le=CLOCK_LIMIT_SECONDS)

    @model_validator(mode="after")
    def _one_of_the_two(self) -> ClockMove:
        if (self.advance_seconds is None) == (self.offset_seconds is None):
            raise ValueError("give exactly one of advance_seconds and offset_seconds")
        return self


def serve_on(app: FastAPI, services: Services) -> None:
    """What an app that serves these routes keeps of its own (the routes are the process's,
    web/request_state.py)."""
    assert services.settings.sandbox_mode, "sandbox routes on a service with real credentials"
    # One reset at a time: a double click must not interleave two wipes and two installs.
    app.state.sandbox_resetting = asyncio.Lock()


def add_routes(routes: APIRouter) -> None:
    @routes.get("/")
    async def sandbox_home(request: Request) -> Response:
        services = services_of(request)
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
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return problem(request, "This form has expired",
                           "Nothing was reset. Reload the page and try again.", status_code=403,
                           action=("/", "Back to the sandbox home"))
        services = services_of(request)
        resetting: asyncio.Lock = request.app.state.sandbox_resetting
        steps: list[str] = []

        def progress(step: str) -> None:
            steps.append(step)
            log.info("sandbox.reset_step", step=step)  # serve's console follows along

        started = time.monotonic()
        try:
            async with resetting:
                await reset_demo(services, progress)
        except (DeliveryError, httpx.HTTPError) as exc:
            log.warning("sandbox.reset_failed", error=str(exc))
            return problem(request, "The demo could not be reset",
                           f"A sandbox did not answer ({exc}). Is `whatsapp-helpdesk serve` "
                           "still running? Try again.", status_code=502,
                           action=("/", "Back to the sandbox home"))
        # The installation this browser was signed in to is gone.
        request.session.clear()
        flash(request, "The demo data is back to its starting point: both sandboxes, this "
                       "service's database and every clock. Reset in "
                       f"{time.monotonic() - started:.1f} s ({'; '.join(steps)}).")
        log.info("sandbox.reset")
        return RedirectResponse("/", status_code=303)

    @routes.post("/_sandbox/clock")
    async def sandbox_clock(request: Request) -> Response:
        """Called by the phone's "jump the clock" (its followers): the emulators' own body,
        `{"advance_seconds": n}` or `{"offset_seconds": n}`. JSON only, so that another
        site's page cannot move the clock with a simple form or text POST."""
        offset = services_of(request).sandbox_clock_offset
        if offset is None:
            return JSONResponse({"detail": "This service runs on a clock given to it; the "
                                 "sandbox clock does not drive it."}, status_code=409)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"detail": "Send JSON (Content-Type: application/json)."},
                                status_code=415)
        try:
            move = ClockMove.model_validate_json(await request.body())
        except ValidationError as exc:
            return JSONResponse({"detail": exc.errors(include_url=False, include_input=False,
                                                        include_context=False)},
                                status_code=422)
        moved = await run_in_threadpool(
            offset.move, advance_seconds=move.advance_seconds or 0.0,
            offset_seconds=move.offset_seconds)
        return JSONResponse({"offset_seconds": moved})
