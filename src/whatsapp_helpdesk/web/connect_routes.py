"""The connection pop-up (R2–R5): GET/POST /connect.

HubSpot opens `channelAccountConnectionRedirectUrl` in a pop-up with its staging token and
(as the sandbox does; the reference marks every name but `accountToken`, `channelId` and
`redirectUrl` unknown, §10.1) `portalId` and `inboxId`. The page:

1. finds the installation: the one of `portalId` when HubSpot names it, else the signed-in
   one; a visitor not signed in is sent through the HubSpot sign-in and back; a session of
   another installation is refused (R10);
2. lists only the eligible numbers (R3), or says per number which conditions are missing;
3. on confirmation completes the staging token (connect/popup.py) and sends the user back to
   HubSpot's `redirectUrl` — only when it is a HubSpot address (no open redirect) — or says
   "connected, you can close this window";
4. shows R5's three errors in plain words; nothing is half-connected after any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.numbers_refresh import reading_status
from whatsapp_helpdesk.connect.popup import (
    Candidate,
    NotConnectable,
    candidates,
    connect_number,
    installation_for_portal,
)
from whatsapp_helpdesk.dashboard.reads import HUBSPOT_INSTALL_URL, installation_summary
from whatsapp_helpdesk.errors import AuthRevoked, DeliveryError
from whatsapp_helpdesk.hubspot import StagingTokenError
from whatsapp_helpdesk.input_limits import db_id, form_value
from whatsapp_helpdesk.web.auth import sign_in_url, signed_in
from whatsapp_helpdesk.web.csrf import CSRF_FIELD, csrf_valid
from whatsapp_helpdesk.web.pages import problem, render
from whatsapp_helpdesk.web.request_state import services_of

# R5, in the page's words: a title, then what happened and what to do (the client's
# messages, hubspot/client.py STAGING_TOKEN_MESSAGES, say the same for logs and tests).
STAGING_ERRORS: Final[dict[str, tuple[str, str, int]]] = {
    "token_not_found": (
        "Account token not found",
        "This window stayed open too long and HubSpot's connection request expired. Close "
        "this window, then in HubSpot choose Connect a channel › WhatsApp with Aircall again.",
        410,
    ),
    "number_exists": (
        "Number already exists",
        "This WhatsApp number is already connected to another HubSpot channel account. "
        "Disconnect it there first (or from the dashboard), or pick another number.",
        409,
    ),
    "token_used": (
        "Same token created by another user",
        "Someone else in your HubSpot account used this connection request first — two "
        "people were adding a channel at the same time. Close this window and start again "
        "from HubSpot.",
        409,
    ),
}


@dataclass(frozen=True)
class ConnectRequest:
    """What HubSpot put on the pop-up's URL (carried through the form as hidden fields)."""

    account_token: str
    channel_id: str
    portal_id: str
    inbox_id: str
    redirect_url: str

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> ConnectRequest:
        def text(key: str) -> str:
            # NUL, surrogates or a 10 MB value: InputRejected, a 400 page (web/app.py; R43).
            return form_value(values.get(key)).strip()

        return cls(text("accountToken"), text("channelId"), text("portalId"), text("inboxId"),
                   text("redirectUrl"))

    def query(self) -> dict[str, str]:
        pairs = {"accountToken": self.account_token, "channelId": self.channel_id,
                 "portalId": self.portal_id, "inboxId": self.inbox_id,
                 "redirectUrl": self.redirect_url}
        return {k: v for k, v in pairs.items() if v}

    def page_url(self) -> str:
        return "/connect?" + urlencode(self.query())


def hubspot_return_url(services: Services, url: str) -> str | None:
    """`redirectUrl` if it leads back to HubSpot, else None (no open redirect).

    HubSpot's own hosts are those of HUBSPOT_AUTH_BASE and HUBSPOT_API_BASE; with the real
    HubSpot (`app.hubspot.com`) a portal may live on a regional host (`app-eu1.hubspot.com`),
    so any https host under `.hubspot.com` is HubSpot too.
    """
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    settings = services.settings
    ours = {urlsplit(base).netloc for base in (settings.hubspot_auth_base,
                                               settings.hubspot_api_base)}
    if parts.netloc in ours:
        return url
    real_hubspot = any(urlsplit(base).hostname in ("hubspot.com", "app.hubspot.com",
                                                   "api.hubapi.com")
                       for base in (settings.hubspot_auth_base, settings.hubspot_api_base))
    if real_hubspot and parts.scheme == "https" and parts.hostname.endswith(".hubspot.com"):
        return url
    return None


def add_routes(routes: APIRouter) -> None:
    """The pop-up's page and form, on the process's shared routes (web/request_state.py)."""

    def resolve(request: Request, services: Services, asked: ConnectRequest, *,
                posting: bool) -> int | Response:
        """The installation this pop-up acts for, or the page that says why it can't."""
        if not asked.account_token:
            return problem(
                request, "Start from HubSpot",
                "This page is opened by HubSpot: in Settings › Help Desk › Channels, choose "
                "Connect a channel › WhatsApp with Aircall.", status_code=400, popup=True,
            )
        session_installation = signed_in(request)
        target = session_installation
        if asked.portal_id:
            target = installation_for_portal(services, asked.portal_id,
                                             prefer=session_installation)
            if target is None:
                return problem(
                    request, "WhatsApp with Aircall is not installed for this HubSpot account",
                    "Install it first (authorise HubSpot, then Aircall), then connect the "
                    "channel again from HubSpot.", status_code=404, popup=True,
                    action=(HUBSPOT_INSTALL_URL, "Install WhatsApp with Aircall"),
                )
        if session_installation is None:
            if posting:
                return problem(request, "Please sign in", "Your session has ended.",
                               status_code=403, popup=True,
                               action=(sign_in_url(asked.page_url()), "Sign in with HubSpot"))
            return RedirectResponse(sign_in_url(asked.page_url()), status_code=303)
        if target != session_installation:
            # R10: a session never acts for another installation, not even to list numbers.
            return problem(
                request, "You are signed in to another account",
                "This connection request comes from a HubSpot account other than the one "
                "you are signed in to here. Sign in with the HubSpot account that is adding "
                "the channel.", status_code=403, popup=True,
                action=(sign_in_url(asked.page_url()), "Sign in with HubSpot"),
            )
        return target

    def picker(
        request: Request, services: Services, installation_id: int, asked: ConnectRequest, *,
        error: tuple[str, str] | None = None, status_code: int = 200, chosen: int | None = None,
    ) -> Response:
        numbers: list[Candidate] = candidates(services, installation_id)
        # A connected number is not a choice: HubSpot would only refuse it (issue 15).
        eligible = [c for c in numbers if c.eligible and not c.connected]
        return render(
            request, "connect.html",
            {
                "asked": asked,
                "eligible": eligible,
                "connected": [c for c in numbers if c.connected],
                "ineligible": [c for c in numbers if not c.eligible and not c.connected],
                "error": error,
                "chosen": chosen if chosen is not None else (
                    eligible[0].number_id if len(eligible) == 1 else None),
                "channel_registered": bool(services.channel_id()),
                # Right after the install the numbers are still being read: an empty or
                # short list must say why (issue 17 item 7).
                "reading": reading_status(services, installation_id),
                "popup": True,
            },
            installation=installation_summary(services, installation_id),
            status_code=status_code,
        )

    @routes.get("/connect")
    async def connect_page(request: Request) -> Response:
        services = services_of(request)
        asked = ConnectRequest.of(request.query_params)
        resolved = await run_in_threadpool(resolve, request, services, asked, posting=False)
        if isinstance(resolved, Response):
            return resolved
        return await run_in_threadpool(picker, request, services, resolved, asked)

    @routes.post("/connect")
    async def connect_submit(request: Request) -> Response:
        form = await request.form()
        asked = ConnectRequest.of(form)
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return problem(request, "This page has expired",
                           "Reload it and pick the number again.", status_code=403, popup=True)
        services = services_of(request)
        resolved = await run_in_threadpool(resolve, request, services, asked, posting=True)
        if isinstance(resolved, Response):
            return resolved
        installation_id = resolved
        raw_number = form.get("number_id")
        number_id = db_id(raw_number) if isinstance(raw_number, str) else None
        if number_id is None:
            return await run_in_threadpool(
                picker, request, services, installation_id, asked,
                error=("Pick a number", "Choose the WhatsApp number to connect."),
                status_code=400,
            )
        try:
            await connect_number(services, installation_id=installation_id, number_id=number_id,
                                 account_token=asked.account_token)
        except StagingTokenError as exc:
            return await run_in_threadpool(
                staging_error, request, services, installation_id, asked, exc, number_id)
        except NotConnectable as exc:
            return await run_in_threadpool(
                picker, request, services, installation_id, asked,
                error=("This number can't be connected", exc.message), status_code=400,
            )
        except AuthRevoked as exc:
            summary = await run_in_threadpool(installation_summary, services, installation_id)
            return problem(request, "HubSpot needs to be authorised again", exc.message,
                           status_code=403, popup=True, installation=summary)
        except DeliveryError as exc:
            return await run_in_threadpool(
                picker, request, services, installation_id, asked, chosen=number_id,
                error=("HubSpot did not complete the connection",
                       f"{exc.message} Nothing was connected; try again."),
                status_code=502,
            )
        back = hubspot_return_url(services, asked.redirect_url)
        if back is not None:
            return RedirectResponse(back, status_code=303)
        return render(request, "connect_done.html", {"popup": True})

    def staging_error(
        request: Request, services: Services, installation_id: int, asked: ConnectRequest,
        exc: StagingTokenError, number_id: int,
    ) -> Response:
        title, detail, status_code = STAGING_ERRORS[exc.kind]
        if exc.kind == "number_exists":
            # The request is still good: another number may be picked.
            return picker(request, services, installation_id, asked, error=(title, detail),
                          status_code=status_code, chosen=number_id)
        return problem(request, title, detail, status_code=status_code, popup=True,
                       installation=installation_summary(services, installation_id))
