"""Helpers for the page tests: an admin's browser session over HTTP (sign-in through the
sandbox HubSpot), a second installation, HubSpot's connection pop-up, and form tokens.

Shared by tests/web and tests/browser; built on the end-to-end `stack` (harness/stack.py).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import select

from harness.stack import PORTAL

OTHER_PORTAL = 4343  # sandbox HubSpot "Other Company"
OTHER_COMPANY = 2  # sandbox Aircall "Other Company"

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


def admin(stack: Any) -> httpx.Client:
    """A fresh browser-like client of our web app (its own cookie jar)."""
    return httpx.Client(base_url=str(stack.bridge.base_url), timeout=10)


def sign_in(client: httpx.Client, *, portal: int = PORTAL, next_path: str = "/dashboard") -> str:
    """Sign in through the sandbox HubSpot as a user of `portal`; returns the page HTML."""
    to_hubspot = client.get("/signin", params={"next": next_path})
    assert to_hubspot.status_code == 303, to_hubspot.text
    return finish_sign_in(client, to_hubspot.headers["location"], portal=portal)


def finish_sign_in(client: httpx.Client, authorize_url: str, *, portal: int = PORTAL) -> str:
    # The sandbox's consent page picks the portal from `portal_id` (the user's choice of
    # account in HubSpot's account picker).
    consent = httpx.get(f"{authorize_url}&portal_id={portal}", follow_redirects=False)
    assert consent.status_code == 302, consent.text
    back = client.get(consent.headers["location"])
    assert back.status_code == 303, back.text
    page = client.get(back.headers["location"])
    assert page.status_code == 200, page.text
    return page.text


def installation_of(stack: Any, portal: int) -> int:
    from whatsapp_helpdesk.db.models import Installation

    with stack.services.sessions() as session:
        return session.scalars(select(Installation.id).where(
            Installation.hubspot_portal_id == str(portal))).one()


def install_other_company(stack: Any, *, company: int = OTHER_COMPANY) -> int:
    """A second installation: sandbox HubSpot portal 4343 joined to Aircall company 2 (or
    `company`: 1 is the first installation's, one company in two portals), with its
    WhatsApp numbers switched on (as the demo does for the first)."""
    from whatsapp_helpdesk.connect.install import complete_aircall_oauth, complete_hubspot_oauth
    from whatsapp_helpdesk.connect.numbers_refresh import read_numbers_here
    from whatsapp_helpdesk.db.models import Number

    base = stack.settings.public_url
    hubspot_cb, aircall_cb = f"{base}/oauth/hubspot/callback", f"{base}/oauth/aircall/callback"

    async def install(services: Any) -> int:
        async def code_from(authorize_url: str) -> str:
            response = await services.http.get(authorize_url, follow_redirects=False)
            return parse_qs(urlparse(response.headers["location"]).query)["code"][0]

        code = await code_from(services.hubspot_oauth().authorize_url(hubspot_cb, "x")
                               + f"&portal_id={OTHER_PORTAL}")
        installation_id = await complete_hubspot_oauth(services, code=code,
                                                       redirect_uri=hubspot_cb)
        code = await code_from(services.aircall_oauth().authorize_url(aircall_cb, "x")
                               + f"&company_id={company}")
        await complete_aircall_oauth(services, code=code, redirect_uri=aircall_cb,
                                     installation_id=installation_id)
        # The authorisation queued the read of the numbers (no worker runs here).
        await read_numbers_here(services, installation_id)
        return installation_id

    installation_id = stack.run(install)
    with stack.services.sessions.begin() as session:
        for number in session.scalars(select(Number).where(
                Number.installation_id == installation_id, Number.whatsapp_enabled)):
            number.connected_to_hubspot = True
            number.helpdesk_enabled = True
    return installation_id


def open_popup(stack: Any, *, portal: int = PORTAL, user_id: int | None = None) -> dict[str, Any]:
    """What HubSpot does on Connect a channel › WhatsApp with Aircall (R2): a staging token
    and the pop-up URL (our /connect with accountToken, channelId, portalId, inboxId,
    redirectUrl)."""
    users = {PORTAL: 1, OTHER_PORTAL: 3}
    response = stack.hubspot.post(
        f"/_sandbox/portals/{portal}/channel-connections",
        json={"channelId": stack.services.channel_id(), "userId": user_id or users[portal]},
    )
    assert response.status_code == 201, response.text
    return response.json()


def popup_form(popup: dict[str, Any]) -> dict[str, str]:
    """The hidden fields the pop-up's form carries back."""
    query = parse_qs(urlparse(popup["popupUrl"]).query)
    return {key: values[0] for key, values in query.items()}


def number_row(stack: Any, aircall_number_id: int, installation_id: int | None = None) -> int:
    from whatsapp_helpdesk.db.models import Number

    with stack.services.sessions() as session:
        return session.scalars(select(Number.id).where(
            Number.installation_id == (installation_id or stack.installation_id),
            Number.aircall_number_id == str(aircall_number_id))).one()


def live_accounts(stack: Any) -> list[tuple[int, str | None]]:
    """Our live channel-account rows: (number row id, HubSpot account id)."""
    from whatsapp_helpdesk.db.models import ChannelAccount

    with stack.services.sessions() as session:
        return [(row.number_id, row.hubspot_channel_account_id) for row in session.scalars(
            select(ChannelAccount).where(ChannelAccount.disconnected_at.is_(None))
            .order_by(ChannelAccount.id))]


def hubspot_accounts(stack: Any, portal: int = PORTAL) -> list[dict[str, Any]]:
    return stack.hubspot.get(f"/_sandbox/portals/{portal}/channel-accounts").json()[
        "channelAccounts"]


def wait_for(condition: Any, *, timeout: float = 10.0, what: str = "") -> Any:
    """Poll `condition` until it gives something true, and return that (no fixed sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")



class _TextOf(HTMLParser):
    """Collects the text inside the element with a given id (the pages' landmarks)."""

    VOID = frozenset({"input", "img", "br", "meta", "link", "hr"})

    def __init__(self, element_id: str):
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.parts: list[str] = []
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def text_of(html: str, element_id: str) -> str:
    """The visible text of one element of a page, whitespace collapsed."""
    parser = _TextOf(element_id)
    parser.feed(html)
    assert parser.found, f"no element with id {element_id!r}"
    return " ".join(" ".join(parser.parts).split())


def signed_in(stack: Any) -> tuple[httpx.Client, str]:
    """A new admin of the first installation, signed in; and their dashboard's HTML."""
    client = admin(stack)
    return client, sign_in(client)


def signed_in_popup(stack: Any, client: httpx.Client | None = None) -> tuple[
        httpx.Client, dict[str, Any], httpx.Response]:
    """A signed-in admin who clicked Connect a channel in HubSpot: (client, popup, page)."""
    client = client or signed_in(stack)[0]
    popup = open_popup(stack)
    page = client.get(popup["popupUrl"])
    assert page.status_code == 200, page.text
    return client, popup, page


def confirm(client: httpx.Client, popup: dict[str, Any], page_html: str, number_id: int,
            **override: str) -> httpx.Response:
    """Submit the pop-up's form with one number picked."""
    form = {**popup_form(popup), "csrf_token": csrf_of(page_html), "number_id": str(number_id),
            **override}
    return client.post("/connect", data=form)


def post_form(client: httpx.Client, path: str, **fields: str) -> httpx.Response:
    """A dashboard form submitted with the page's CSRF token."""
    page = client.get("/dashboard")
    return client.post(path, data={"csrf_token": csrf_of(page.text), **fields})


def number_settings(stack: Any, aircall_number_id: int) -> Any:
    """The number's row (detached), to read its switches."""
    from whatsapp_helpdesk.db.models import Number

    with stack.services.sessions() as session:
        number = session.get(Number, number_row(stack, aircall_number_id))
        assert number is not None
        session.expunge(number)
        return number


def radios(html: str) -> set[str]:
    """The number ids the pop-up offers."""
    return set(re.findall(r'type="radio" name="number_id" id="number-(\d+)"', html))
