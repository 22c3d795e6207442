"""R2 in a real browser: Settings > Help Desk > Channels > Connect a channel opens the
integration's page in a pop-up with the staging token; when the integration sends the user
back, the pop-up closes and the settings page shows the new channel."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import httpx
import pytest
from harness.browser import (
    chromium_context,
    shared_chromium,  # noqa: F401  (fixture, by name)
)
from hubspot_sandbox_harness import (
    ALL_SCOPES,
    CAPABILITIES,
    CLIENT_ID,
    CLIENT_SECRET,
    DEVELOPER_KEY,
    REDIRECT_URI,
)
from hubspot_sandbox_live import ServerThread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from whatsapp_helpdesk.sandbox.hubspot import create_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("shared_chromium")]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NUMBER = "+33123456789"


class FakeIntegration:
    """The integration's connection page, reduced to "connect this number and go back"."""

    def __init__(self) -> None:
        self.hubspot_url = ""
        self.token = ""

    def app(self, _: str) -> Starlette:
        async def connect(request: Request) -> Response:
            params = request.query_params
            async with httpx.AsyncClient(base_url=self.hubspot_url) as client:
                await client.patch(
                    f"/conversations/v3/custom-channels/{params['channelId']}/"
                    f"channel-account-staging-tokens/{params['accountToken']}",
                    headers={"Authorization": f"Bearer {self.token}"},
                    json={"accountName": f"WhatsApp {NUMBER}",
                          "deliveryIdentifier": {"type": "HS_PHONE_NUMBER", "value": NUMBER}},
                )
            return RedirectResponse(params["redirectUrl"], status_code=302)

        return Starlette(routes=[Route("/connect", connect)])


@pytest.fixture
def servers() -> Iterator[tuple[ServerThread, ServerThread, FakeIntegration]]:
    integration = FakeIntegration()
    with (
        ServerThread(integration.app) as bridge,
        ServerThread(lambda url: create_app(public_base_url=url)) as hubspot,
    ):
        integration.hubspot_url = hubspot.url
        yield hubspot, bridge, integration


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_r2_connect_a_channel_in_a_popup(
    servers: tuple[ServerThread, ServerThread, FakeIntegration],
) -> None:
    from playwright.sync_api import expect

    hubspot, bridge, integration = servers
    with httpx.Client(base_url=hubspot.url) as client:
        location = client.get("/oauth/authorize", params={
            "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": ALL_SCOPES,
        }).headers["location"]
        integration.token = client.post("/oauth/v1/token", data={
            "grant_type": "authorization_code", "code": httpx.URL(location).params["code"],
            "redirect_uri": REDIRECT_URI, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        }).json()["access_token"]
        client.post("/conversations/v3/custom-channels", params=DEVELOPER_KEY, json={
            "name": "WhatsApp with Aircall", "capabilities": CAPABILITIES,
            "channelAccountConnectionRedirectUrl": f"{bridge.url}/connect"})

    with chromium_context() as context:  # the process's one Chromium (harness/browser.py)
        page = context.new_page()
        page.goto(f"{hubspot.url}/help-desk/4242/settings/channels")
        expect(page.get_by_text("No channel is connected")).to_be_visible()
        page.get_by_text("Connect a channel", exact=True).last.click()
        with page.expect_popup() as popup_info:
            page.get_by_role("button", name="Connect WhatsApp with Aircall").click()
        popup = popup_info.value
        popup.wait_for_event("close", timeout=10_000)
        expect(page.locator("[data-live]")).to_contain_text(NUMBER, timeout=10_000)
