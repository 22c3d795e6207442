"""The integration dashboard (R6–R10, R35, R36): pages and actions, sign-in, static files.

Thin routes: each reads the signed-in installation from the session (web/auth.py), checks
the form's CSRF token, calls one function of dashboard/reads.py and redirects back to the
dashboard with a message (post/redirect/get), so every action works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated, Final

import structlog
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect import reconnect
from whatsapp_helpdesk.connect.numbers_refresh import refresh_status, request_refresh
from whatsapp_helpdesk.dashboard import actions as dashboard_actions
from whatsapp_helpdesk.dashboard import reads as dashboard
from whatsapp_helpdesk.errors import AuthRevoked
from whatsapp_helpdesk.input_limits import MAX_DB_ID
from whatsapp_helpdesk.replies.reengagement import choices_by_number
from whatsapp_helpdesk.web import auth, dashboard_templates
from whatsapp_helpdesk.web.csrf import CSRF_FIELD, csrf_valid
from whatsapp_helpdesk.web.pages import add_static_routes, flash, problem, render
from whatsapp_helpdesk.web.request_state import services_of
from whatsapp_helpdesk.web.sessions import revoke_installation

log = structlog.get_logger(__name__)

# What the dashboard page reads of the connect and replies slices, wired here at the edge.
DASHBOARD_READS = dashboard.OtherSlicesReads(refresh_status=refresh_status,
                                             templates=choices_by_number)

DASHBOARD: Final = "/dashboard"
# An id in a path is a primary key: beyond 32 bits it names nothing, and PostgreSQL would
# refuse the query (R43). FastAPI answers 422 before the route runs.
DbId = Annotated[int, Path(ge=1, le=MAX_DB_ID)]
# Issue 17 item 6: the numbers come a page at a time; past the last page is the last page.
PageNumber = Annotated[int, Query(ge=1, le=MAX_DB_ID)]
Search = Annotated[str, Query(max_length=dashboard.MAX_SEARCH)]
COMPANY_WHATSAPP_CHOICES: Final[dict[str, bool | None]] = {"auto": None, "yes": True, "no": False}


def add_routes(routes: APIRouter) -> None:
    """The dashboard, sign-in and static files, on the process's shared routes
    (web/request_state.py)."""
    auth.add_routes(routes)
    add_static_routes(routes)

    @routes.get(DASHBOARD)
    async def dashboard_page(request: Request, page: PageNumber = 1, q: Search = "") -> Response:
        services = services_of(request)
        installation_id = auth.signed_in(request)
        if installation_id is None:
            return RedirectResponse(auth.sign_in_url(auth.current_path(request)), status_code=303)
        try:
            view = await run_in_threadpool(
                partial(dashboard.dashboard_view, services, DASHBOARD_READS, installation_id,
                        page=page, search=q))
        except dashboard.NotFound:
            request.session.clear()  # the installation was removed since the sign-in
            return RedirectResponse(auth.sign_in_url(DASHBOARD), status_code=303)
        return render(request, "dashboard.html", {"view": view},
                      installation=view.installation)

    async def act(
        request: Request, action: Callable[[int, dict[str, str]], Awaitable[str]]
    ) -> Response:
        """The common frame of every dashboard action: session, CSRF, outcome message."""
        services = services_of(request)
        installation_id = auth.signed_in(request)
        if installation_id is None:
            return problem(request, "Please sign in", "Your session has ended.",
                           status_code=403, action=(auth.sign_in_url(DASHBOARD), "Sign in"))
        form = await request.form()
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return problem(request, "This form has expired",
                           "Nothing was changed. Reload the dashboard and try again.",
                           status_code=403, action=(DASHBOARD, "Back to the dashboard"),
                           installation=await summary(services, installation_id))
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        try:
            message = await action(installation_id, fields)
        except dashboard.NotFound:
            # Another installation's id, or one that no longer exists: the same answer (R10).
            return problem(request, "Not found", "There is no such item in your installation.",
                           status_code=404, action=(DASHBOARD, "Back to the dashboard"),
                           installation=await summary(services, installation_id))
        except dashboard_actions.ActionRefused as exc:
            flash(request, exc.message, kind="error")
        else:
            flash(request, message)
        return RedirectResponse(DASHBOARD, status_code=303)

    async def summary(services: Services,
                      installation_id: int) -> dashboard.InstallationSummary | None:
        """The signed-in installation's header and banner (R8: on every page)."""
        try:
            return await run_in_threadpool(dashboard.installation_summary, services,
                                           installation_id)
        except dashboard.NotFound:
            return None

    async def act_awaiting(request: Request, work: Callable[..., Awaitable[str]],
                           *args: object) -> Response:
        """`act` for an action that is `work(services, installation_id, *args)`."""
        services = services_of(request)

        async def run(installation_id: int, fields: dict[str, str]) -> str:
            return await work(services, installation_id, *args)

        return await act(request, run)

    async def act_blocking(request: Request, work: Callable[..., str], *args: object) -> Response:
        """The same for a blocking `work`, run off the event loop."""
        return await act_awaiting(
            request, lambda *call: run_in_threadpool(work, *call), *args)

    @routes.post("/dashboard/numbers/{number_id}/settings")
    async def change_setting(request: Request, number_id: DbId) -> Response:
        services = services_of(request)

        async def run(installation_id: int, fields: dict[str, str]) -> str:
            setting = fields.get("setting", "")
            value = fields.get("value")
            if value not in ("on", "off"):
                raise dashboard_actions.ActionRefused("Choose on or off.")
            return await run_in_threadpool(dashboard_actions.set_setting, services, installation_id,
                                           number_id, setting, value == "on")

        return await act(request, run)

    @routes.get("/dashboard/numbers/{number_id}/disconnect")
    async def disconnect_confirmation(request: Request, number_id: DbId) -> Response:
        return await confirmation(request, number_id, "disconnect")

    @routes.get("/dashboard/numbers/{number_id}/reconnect")
    async def reconnect_confirmation(request: Request, number_id: DbId) -> Response:
        return await confirmation(request, number_id, "reconnect")

    @routes.post("/dashboard/numbers/{number_id}/reconnect")
    async def reconnect_submit(request: Request, number_id: DbId) -> Response:
        services = services_of(request)

        async def run(installation_id: int, fields: dict[str, str]) -> str:
            try:
                return await reconnect.reconnect_number(services, installation_id, number_id)
            except reconnect.NotReconnectable as exc:
                raise dashboard_actions.ActionRefused(exc.message) from exc
            except LookupError as exc:
                raise dashboard.NotFound("number") from exc

        return await act(request, run)

    async def confirmation(request: Request, number_id: int, action: str) -> Response:
        """Issue 15: disconnecting and reconnecting are confirmed on a page that says first
        what will happen to the customers' tickets."""
        installation_id = auth.signed_in(request)
        if installation_id is None:
            return RedirectResponse(auth.sign_in_url(auth.current_path(request)), status_code=303)
        services = services_of(request)
        installation = await summary(services, installation_id)
        back = (DASHBOARD, "Back to the dashboard")
        try:
            view = await run_in_threadpool(
                partial(dashboard.dashboard_view, services, DASHBOARD_READS, installation_id,
                        number_id=number_id))
            number = next((n for n in view.numbers if n.id == number_id), None)
            if number is None:
                raise dashboard.NotFound("number")
            plan = (await reconnect.plan_reconnect(services, installation_id, number_id)
                    if action == "reconnect" else None)
        except (dashboard.NotFound, LookupError):
            return problem(request, "Not found", "There is no such item in your installation.",
                           status_code=404, action=back, installation=installation)
        except reconnect.NotReconnectable as exc:
            return problem(request, "This number can't be reconnected", exc.message,
                           status_code=409, action=back, installation=installation)
        except AuthRevoked as exc:
            return problem(request, "HubSpot needs to be authorised again", exc.message,
                           status_code=403, action=back, installation=installation)
        return render(request, "confirm_channel.html",
                      {"action": action, "number": number, "plan": plan},
                      installation=installation)

    @routes.post("/dashboard/numbers/{number_id}/disconnect")
    async def disconnect(request: Request, number_id: DbId) -> Response:
        return await act_awaiting(request, dashboard_actions.disconnect_number, number_id)

    @routes.post("/dashboard/numbers/refresh")
    async def refresh(request: Request) -> Response:
        # The dashboard's button, wired here to the connect slice that owns the refresh
        # (the dashboard slice does not import connect).
        return await act_blocking(request, request_refresh)

    @routes.post("/dashboard/numbers/{number_id}/templates/refresh")
    async def refresh_templates(request: Request, number_id: DbId) -> Response:
        return await act_awaiting(request, dashboard_templates.refresh, number_id)

    @routes.post("/dashboard/numbers/{number_id}/templates")
    async def choose_template(request: Request, number_id: DbId) -> Response:
        services = services_of(request)

        async def run(installation_id: int, fields: dict[str, str]) -> str:
            return await run_in_threadpool(dashboard_templates.choose, services,
                                           installation_id, number_id, fields)

        return await act(request, run)

    @routes.post("/dashboard/deliveries/{outbox_id}/retry")
    async def retry(request: Request, outbox_id: DbId) -> Response:
        return await act_blocking(request, dashboard_actions.retry_delivery, outbox_id)

    @routes.post("/dashboard/sessions/revoke")
    async def sign_out_everywhere(request: Request) -> Response:
        """Every session of this installation ends, this one too (R10; issue 12, item 4)."""
        installation_id = auth.signed_in(request)
        form = await request.form()
        if installation_id is None or not csrf_valid(request, form.get(CSRF_FIELD)):
            return problem(request, "This form has expired",
                           "Nothing was changed. Reload the dashboard and try again.",
                           status_code=403, action=(DASHBOARD, "Back to the dashboard"))
        count = await run_in_threadpool(revoke_installation, services_of(request).sessions,
                                        installation_id)
        request.session.clear()
        log.info("auth.signed_out_everywhere", installation_id=installation_id, sessions=count)
        return RedirectResponse("/", status_code=303)

    @routes.post("/dashboard/company-whatsapp")
    async def company_whatsapp(request: Request) -> Response:
        services = services_of(request)

        async def run(installation_id: int, fields: dict[str, str]) -> str:
            choice = fields.get("choice", "")
            if choice not in COMPANY_WHATSAPP_CHOICES:
                raise dashboard_actions.ActionRefused("Choose automatic, yes or no.")
            return await run_in_threadpool(dashboard_actions.set_company_whatsapp, services,
                                           installation_id, COMPANY_WHATSAPP_CHOICES[choice])

        return await act(request, run)
