"""Who is signed in, for the pages (R10); CSRF protection is web/csrf.py.

An admin signs in through the same HubSpot authorisation that installs the service: only a
user HubSpot lets authorise apps in a portal gets a code for it, and the access token the
code yields names the portal (`hub_id`). The session then holds the id of that portal's
installation; the install callbacks set the same key. Sessions are server-side
(web/sessions.py): the cookie is a random id, and sign-out, re-authorisation and "sign out
everywhere" delete the session. Every page and action reads the installation from the
session, and nothing else: an id in a URL or a form only ever names a thing *of that installation*.

Sign-in uses its own callback (`/signin/callback`), so that signing in does not re-run the
install (which would re-authorise Aircall and replace its webhook). A real HubSpot app must
list `PUBLIC_URL/signin/callback` among its redirect URLs, next to `/oauth/hubspot/callback`.
The tokens the sign-in code yields are not kept: signing in proves who you are; the
installation's own grant is renewed only through the install buttons (R8).
"""

from __future__ import annotations

import secrets
from typing import Final
from urllib.parse import urlencode, urlsplit

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.popup import installation_for_portal
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.input_limits import MAX_FORM_FIELD
from whatsapp_helpdesk.web.csrf import CSRF_FIELD, SESSION_CSRF, csrf_valid
from whatsapp_helpdesk.web.pages import problem
from whatsapp_helpdesk.web.request_state import services_of
from whatsapp_helpdesk.web.sessions import renew

log = structlog.get_logger(__name__)

SESSION_INSTALLATION: Final = "installation_id"  # also set by the install callbacks (app.py)
SESSION_SIGNIN_STATE: Final = "signin_state"
SESSION_SIGNIN_NEXT: Final = "signin_next"
SIGNIN_CALLBACK: Final = "/signin/callback"
DEFAULT_NEXT: Final = "/dashboard"


def signed_in(request: Request) -> int | None:
    """The installation the session is signed in to, or None."""
    value = request.session.get(SESSION_INSTALLATION)
    return value if isinstance(value, int) else None


def safe_next(value: str | None) -> str:
    """Only a path of this service: never another site (no open redirect)."""
    if not value or len(value) > MAX_FORM_FIELD or not value.isprintable():
        return DEFAULT_NEXT
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") \
            or "\\" in value:
        return DEFAULT_NEXT
    return value


def sign_in_url(next_path: str) -> str:
    return "/signin?" + urlencode({"next": safe_next(next_path)})


def current_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def start_session(request: Request, installation_id: int) -> None:
    """Signed in: a fresh CSRF token, so one minted before sign-in is worth nothing after."""
    request.session[SESSION_INSTALLATION] = installation_id
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)
    renew(request)  # a new session id at sign-in: no session fixation


def _callback_url(services: Services) -> str:
    return f"{services.settings.public_url}{SIGNIN_CALLBACK}"


def add_routes(routes: APIRouter) -> None:
    """Sign-in and sign-out, on the process's shared routes (web/request_state.py)."""

    @routes.get("/signin")
    async def signin(request: Request, next: str = DEFAULT_NEXT) -> Response:
        services = services_of(request)
        state = secrets.token_urlsafe(24)
        request.session[SESSION_SIGNIN_STATE] = state
        request.session[SESSION_SIGNIN_NEXT] = safe_next(next)
        return RedirectResponse(
            services.hubspot_oauth().authorize_url(_callback_url(services), state),
            status_code=303)

    @routes.get(SIGNIN_CALLBACK)
    async def signin_callback(request: Request, code: str = "", state: str = "") -> Response:
        expected = request.session.pop(SESSION_SIGNIN_STATE, None)
        next_path = safe_next(request.session.pop(SESSION_SIGNIN_NEXT, None))
        if not code or not isinstance(expected, str) or not secrets.compare_digest(
            state.encode(), expected.encode()
        ):
            return problem(request, "The sign-in could not be verified.",
                           "Start again from the dashboard.", status_code=400)
        services = services_of(request)
        try:
            oauth = services.hubspot_oauth()
            tokens = await oauth.exchange_code(code, _callback_url(services))
            info = await oauth.token_info(tokens.access_token)
        except DeliveryError as exc:
            return problem(request, "HubSpot did not confirm who you are.", exc.message,
                           status_code=400)
        # A query: off the event loop, which serves every other request meanwhile.
        installation_id = await run_in_threadpool(
            installation_for_portal, services, info.hub_id, prefer=signed_in(request))
        if installation_id is None:
            return problem(
                request, "This HubSpot account has not installed WhatsApp with Aircall.",
                "Install the service first: authorise HubSpot, then Aircall.",
                status_code=403, action=("/oauth/hubspot/install", "Install"),
            )
        start_session(request, installation_id)
        log.info("auth.signed_in", installation_id=installation_id, portal_id=info.hub_id)
        return RedirectResponse(next_path, status_code=303)

    @routes.post("/signout")
    async def signout(request: Request) -> Response:
        form = await request.form()
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return problem(request, "This form has expired.", "Reload the page and try again.",
                           status_code=403)
        request.session.clear()
        return RedirectResponse("/", status_code=303)

